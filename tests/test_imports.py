"""The shape of the code: every module of services/ and shared/ imports on its own, and no two
modules import each other, directly or round a loop (imports inside functions count too).

Each module is imported in a child forked from a bare interpreter that has loaded only third-party
packages (numpy, aiohttp, ...), never a module of this repository: whether a module imports cannot
depend on what was imported before it, and forking keeps the whole check to seconds.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("services", "shared")

# Run in a fresh interpreter: preload the third-party packages, then fork once per module.
IMPORT_EACH = r"""
import importlib, json, os, sys, traceback
modules, preload = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in preload:
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a module that needs it reports the failure itself
assert not any(m.split(".")[0] in ("services", "shared") for m in sys.modules)
failures, running = {}, {}

def reap():
    pid, status = os.wait()
    name, r = running.pop(pid)
    out = os.read(r, 1 << 16).decode(errors="replace")
    os.close(r)
    if status:
        failures[name] = out or f"exit status {status}"

for name in modules:
    if len(running) >= 4:
        reap()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(name)
        except BaseException:
            os.write(w, traceback.format_exc()[-4000:].encode())
            os._exit(1)
        os._exit(0)
    os.close(w)
    running[pid] = (name, r)
while running:
    reap()
print(json.dumps(failures))
"""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def imported(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(modules of this repository, top-level third-party names) that `name` imports at run time."""
    ours, others = set(), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def add(target: str) -> None:
        if target.split(".")[0] not in PACKAGES:
            others.add(target.split(".")[0])
            return
        while target and target not in known:  # `from pkg import name`: the name is an attribute
            target = target.rpartition(".")[0]
        if target and target != name:
            ours.add(target)

    def visit(node: ast.AST) -> None:
        if type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                add(f"{base}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return ours, others


def graph() -> tuple[dict[str, set[str]], set[str]]:
    src = sources()
    known = set(src)
    edges: dict[str, set[str]] = {}
    third_party: set[str] = set()
    for name, path in src.items():
        ours, others = imported(name, path, known)
        edges[name] = ours
        third_party |= others
    return edges, third_party - set(sys.stdlib_module_names) - {"__future__"}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import loop (as a path that comes back to its start), or None."""
    colour: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        colour[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if colour.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in colour and (found := walk(nxt)):
                return found
        path.pop()
        colour[node] = 2
        return None

    for start in sorted(edges):
        if start not in colour and (found := walk(start)):
            return found
    return None


def test_find_cycle_sees_a_loop() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_has_no_cycle() -> None:
    edges, _ = graph()
    assert "services.gateway.app" in edges and "services.transcriber.backends" in edges
    assert "services.gateway.app" in edges["services.gateway.__main__"]  # the graph sees imports
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_every_module_imports_on_its_own() -> None:
    edges, third_party = graph()
    modules = sorted(edges)
    assert len(modules) > 50
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(modules), json.dumps(sorted(third_party))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    failures = json.loads(out.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n\n".join(f"{m}:\n{tb}" for m, tb in failures.items())
