"""The shape of the repository beside the import graph (tests/test_imports.py): tests and benchmarks
never import each other (what both need is in testkit/, which imports neither), no test module
imports another test module or conftest (helpers are plain modules), comments point at README
sections rather than at a DESIGN.md outside the repository, and no source file is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
TEXT_SUFFIXES = {".py", ".js", ".css", ".html", ".sh", ".yml", ".yaml", ".toml", ".md", ".sql"}


def python_files(*folders: str) -> list[Path]:
    return [p for f in folders for p in sorted((ROOT / f).rglob("*.py")) if "data" not in p.parts]


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports (inside functions too), and files it loads by path."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("spec_from_file_location"):
            names.update(f"file:{ast.unparse(arg)}" for arg in node.args)
    return names


def reaching(folder: str, others: tuple[str, ...]) -> dict[str, list[str]]:
    """The files of `folder` that import (or load by path) a module of one of `others`."""
    found = {}
    for path in python_files(folder):
        hits = sorted(
            n
            for n in imports_of(path)
            if n.split(".")[0] in others or (n.startswith("file:") and any(o in n for o in others))
        )
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    return found


def test_tests_and_bench_never_import_each_other() -> None:
    assert reaching("tests", ("bench",)) == {}
    assert reaching("bench", ("tests",)) == {}
    assert reaching("testkit", ("tests", "bench")) == {}


def test_no_test_module_imports_another_or_conftest() -> None:
    found = {}
    for path in python_files("tests", "bench", "testkit"):
        hits = [n for n in imports_of(path) if n.startswith(("tests.test_", "tests.conftest", "conftest"))]
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert found == {}


def test_comments_point_at_the_readme_not_at_a_file_outside_the_repository() -> None:
    mentions = [
        str(p.relative_to(ROOT))
        for folder in ("services", "shared", "tests", "bench", "testkit", "deploy")
        for p in sorted((ROOT / folder).rglob("*"))
        if p.is_file() and p.suffix in TEXT_SUFFIXES and p != Path(__file__) and "DESIGN.md" in p.read_text()
    ]
    assert mentions == []


def test_no_source_file_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files("services", "shared", "tests", "bench", "testkit")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
