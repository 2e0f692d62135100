"""Build the extra benchmark recordings of issue 4 (run once; the results are committed in tests/data).

    python -m bench.make_fixtures [--real-dir ../shared/devdata/real] [--out tests/data]

noise90     90 s with no speech at all: silence, mains hum, pink noise, chair scrapes and mixes, at
            levels 0.02 to 0.2. Every word transcribed in it is a hallucination.
real_joined the real LJSpeech clips joined with 1-3 s pauses. Their reference text is the same model's
            offline transcript of each clip on its own (tiny.en, beam 5, the service's lecture
            prompt), so the streaming WER against it is the gap to the offline limit.
Both are written as PREFIX.wav + PREFIX.json in the format of make_dev_lecture.py.
"""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path

import numpy as np

SR = 16_000


def pink(n: int, rng: np.random.Generator, level: float) -> np.ndarray:
    f = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(len(f))
    k[0] = 1
    x = np.fft.irfft(f / np.sqrt(k), n)
    return x / np.abs(x).max() * level


def hum(n: int, rng: np.random.Generator, level: float) -> np.ndarray:
    t = np.arange(n) / SR
    x = np.sin(2 * np.pi * 50 * t) + 0.4 * np.sin(2 * np.pi * 100 * t) + 0.3 * rng.standard_normal(n)
    return x / np.abs(x).max() * level


def scrapes(n: int, rng: np.random.Generator, level: float) -> np.ndarray:
    x = np.zeros(n)
    for _ in range(max(1, n // SR)):
        length = int(rng.integers(SR // 10, SR // 3))
        s = int(rng.integers(0, n - length))
        b = np.diff(np.concatenate([[0], rng.standard_normal(length) * np.hanning(length)]))
        x[s : s + length] += b / np.abs(b).max() * level
    return x


def write(prefix: Path, audio: np.ndarray, segments: list[dict], note: str) -> None:
    with wave.open(str(prefix.with_suffix(".wav")), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    meta = {"duration": len(audio) / SR, "note": note, "segments": segments, "alerts": []}
    prefix.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(f"{prefix}.wav {len(audio) / SR:.1f}s, {len(segments)} stretches")


def make_noise(out: Path) -> None:
    rng = np.random.default_rng(90)
    plan = [
        ("silence", None, 0.0),
        ("hum", hum, 0.02),
        ("pink", pink, 0.05),
        ("scrapes", scrapes, 0.1),
        ("pink", pink, 0.2),
        ("hum", hum, 0.2),
        ("scrapes", scrapes, 0.2),
        ("pink+scrapes", None, 0.1),
    ]
    parts, segs, t = [], [], 0.0
    for name, fn, level in plan:
        n = int(SR * 90 / len(plan))
        if name == "pink+scrapes":
            x = pink(n, rng, level) + scrapes(n, rng, level)
        else:
            x = fn(n, rng, level) if fn else np.zeros(n)
        parts.append(x)
        segs.append(
            {
                "kind": "noise",
                "start": round(t, 3),
                "end": round(t + n / SR, 3),
                "text": "",
                "noise": name,
                "level": level,
            }
        )
        t += n / SR
    write(
        out / "noise90", np.concatenate(parts), segs, "noise only: every transcribed word is a hallucination"
    )


def read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def make_real(real_dir: Path, out: Path) -> None:
    from faster_whisper import WhisperModel

    from services.transcriber.backends import default_model_path
    from shared.settings import DEFAULT_LECTURE_PROMPT

    model = WhisperModel(default_model_path(), device="cpu", compute_type="int8")
    rng = np.random.default_rng(7)
    parts, segs, t = [np.zeros(SR)], [], 1.0
    for clip in sorted(real_dir.glob("*.wav")):
        x = read(clip)
        pieces, _ = model.transcribe(x, language="en", beam_size=5, initial_prompt=DEFAULT_LECTURE_PROMPT)
        text = " ".join(p.text.strip() for p in pieces)
        segs.append(
            {
                "kind": "speech",
                "start": round(t, 3),
                "end": round(t + len(x) / SR, 3),
                "text": text,
                "clip": clip.name,
            }
        )
        gap = np.zeros(int(SR * rng.uniform(1.0, 3.0)))
        parts += [x, gap]
        t += (len(x) + len(gap)) / SR
    write(
        out / "real_joined",
        np.concatenate(parts),
        segs,
        "LJSpeech clips joined with 1-3 s pauses; text = tiny.en offline transcript of each clip alone",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--real-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/devdata/real"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data")
    args = ap.parse_args()
    make_noise(args.out)
    make_real(args.real_dir, args.out)


if __name__ == "__main__":
    main()
