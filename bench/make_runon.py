"""Build a "run-on" lecture from a dev lecture: the sentences of each paragraph run together.

    python -m bench.make_runon tests/data/lecture1 tests/data/runon1 [--gap 0.10 0.15] [--seed 1]

A paragraph is a run of speech spans of the truth with no noise stretch between them. Inside a
paragraph every pause between two sentences is shortened to a random 0.10-0.15 s (the start of the
original pause is kept, so the room tone goes on without a click), shorter than the VAD's 0.4 s
pause: the whole paragraph is one utterance. Pauses before a paragraph, noise stretches and the
audio around them are kept as they are. espeak-ng ends each sentence with ~0.35 s of silence: every
sentence's `end` in the new truth is where its voice ends (the last 10 ms frame above 3x the room
tone), so that latency against it is measured from the last word; `start`s, noise spans and the
alerts' `start`s move with the audio. Same texts, same format (OUT.wav, OUT.json).
"""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path

import numpy as np

SR = 16_000
FRAME = SR // 100  # 10 ms


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SR, 1, 2):
            raise SystemExit(f"{path}: not 16 kHz mono PCM16")
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.astype(np.int16).tobytes())


def voice_end(x: np.ndarray, start: int, end: int, floor: float) -> int:
    """The sample after the last 10 ms frame of x[start:end] louder than 3x the room tone."""
    a = x[start:end].astype(np.float64)
    n = len(a) // FRAME
    rms = np.sqrt(np.mean(a[: n * FRAME].reshape(n, FRAME) ** 2, axis=1))
    loud = np.nonzero(rms > 3 * floor)[0]
    if len(loud) == 0:
        return end
    return min(end, start + (int(loud[-1]) + 1) * FRAME + 2 * FRAME)  # +20 ms: the decay of the last frame


def paragraphs(segments: list[dict]) -> list[list[int]]:
    """Indexes of consecutive speech spans with no noise span between them."""
    out: list[list[int]] = []
    current: list[int] = []
    for i, s in enumerate(segments):
        if s["kind"] == "speech":
            current.append(i)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def make(x: np.ndarray, truth: dict, gap: tuple[float, float], seed: int) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    segs = truth["segments"]
    first = min(int(s["start"] * SR) for s in segs)
    floor = float(np.sqrt(np.mean(x[: max(FRAME, first - FRAME)].astype(np.float64) ** 2)))
    # Which stretches of the original to keep: everything, except that inside a paragraph the pause
    # after a sentence's voice is cut to `gap` and the audio jumps to the next sentence's start.
    skips: list[tuple[int, int]] = []  # [from, to) of the original left out
    ends: dict[int, int] = {}  # speech span index -> its voice end in the original
    for para in paragraphs(segs):
        for i in para:
            s = segs[i]
            ends[i] = voice_end(x, int(s["start"] * SR), int(s["end"] * SR), floor)
        for i, j in zip(para, para[1:], strict=False):
            cut_from = ends[i] + int(rng.uniform(*gap) * SR)
            skips.append((cut_from, int(segs[j]["start"] * SR)))
    pieces, pos = [], 0
    for a, b in skips:
        pieces.append(x[pos:a])
        pos = b
    pieces.append(x[pos:])
    y = np.concatenate(pieces)

    def moved(sample: int) -> int:
        return sample - sum(b - a for a, b in skips if b <= sample)

    new_segs = []
    for i, s in enumerate(segs):
        start = moved(int(round(s["start"] * SR)))
        end = moved(ends[i]) if i in ends else moved(int(round(s["end"] * SR)))
        new_segs.append({**s, "start": round(start / SR, 3), "end": round(end / SR, 3)})
    starts = {s["text"]: n["start"] for s, n in zip(segs, new_segs, strict=True) if s["kind"] == "speech"}
    alerts = [{**a, "start": starts[a["text"]]} for a in truth["alerts"]]
    return y, {**truth, "duration": len(y) / SR, "segments": new_segs, "alerts": alerts}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.make_runon", description=__doc__.splitlines()[0])
    ap.add_argument("src", help="input PREFIX (.wav, .json)")
    ap.add_argument("out", help="output PREFIX")
    ap.add_argument("--gap", type=float, nargs=2, default=(0.10, 0.15), metavar=("MIN", "MAX"))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    truth = json.loads(Path(a.src + ".json").read_text())
    y, new = make(read_wav(Path(a.src + ".wav")), truth, tuple(a.gap), a.seed)
    write_wav(Path(a.out + ".wav"), y)
    Path(a.out + ".json").write_text(json.dumps(new, indent=1) + "\n")
    paras = paragraphs(new["segments"])
    print(
        f"{a.out}.wav {len(y) / SR:.1f} s (was {truth['duration']:.1f} s), "
        f"{sum(len(p) for p in paras)} sentences in {len(paras)} paragraphs, {len(new['alerts'])} alerts"
    )


if __name__ == "__main__":
    main()
