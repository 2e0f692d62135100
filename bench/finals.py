"""How finals are decoded: accuracy and cost of each strategy, on the utterances the service cuts.

    python -m bench.finals PREFIX [PREFIX ...] [--tails 0,10,5,2] [--threads N] [--json OUT]

Each file is cut into utterances offline by the service's own VAD and segmenter (default
settings), then every utterance is decoded by the service's own LocalBackend and guards, once per
strategy:
  tail=0   the encoder sees a whole padded 30 s window (faster-whisper's default);
  tail=T   the encoder sees the utterance plus T seconds of padding (FINAL_WINDOW_TAIL_S=T).
Printed per strategy: WER pooled over the files (and per file), words placed in noise-only
stretches, decode wall time per utterance (p50/p95) and CPU seconds per audio second of speech
decoded. All strategies run in one process on the same utterances, one after the other, so their
ratios are comparable even on a noisy machine; repeat the run and quote medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import (
    HypSegment,
    Lecture,
    WerResult,
    fmt,
    load_lecture,
    noise_words,
    percentile,
    pooled_wer,
    word_errors,
)
from services.transcriber.backends import LocalBackend, Request
from services.transcriber.guards import keep_pieces
from services.transcriber.worker import build_prompt
from services.vad.segmenter import Segmenter, SegmenterConfig, Utterance
from services.vad.silero import StreamingVad, load_model
from shared.messages import SAMPLE_RATE
from shared.settings import TranscriberSettings, VadSettings

FRAME = 1600  # the 100 ms frames a client sends


def cut(lecture: Lecture) -> list[Utterance]:
    """The utterances the VAD worker would send as finals for this file, fed in 100 ms frames."""
    v = VadSettings()
    cfg = SegmenterConfig(v.vad_threshold, v.vad_neg_threshold, v.vad_min_silence_s, v.vad_pad_s,
                          v.vad_min_speech_s, v.vad_max_utterance_s)
    vad, seg = StreamingVad(load_model(v.vad_model_path)), Segmenter(cfg)
    out: list[Utterance] = []
    for i in range(0, len(lecture.pcm), FRAME):
        pcm = lecture.pcm[i : i + FRAME]
        out += seg.push(pcm, vad.push(pcm.astype(np.float32) / 32768.0))
    return out + seg.flush()


@dataclass
class Run:
    tail: float
    hyps: dict[str, list[HypSegment]] = field(default_factory=dict)
    took: list[float] = field(default_factory=list)
    cpu: float = 0.0
    speech_s: float = 0.0


def decode_all(backend: LocalBackend, s: TranscriberSettings, utts: list[Utterance]) -> tuple[list, list, float]:
    prompt = build_prompt(s.lecture_prompt, "", [])
    hyps, took, cpu0 = [], [], time.process_time()
    for u in utts:
        audio = u.audio.astype(np.float32) / 32768.0
        t0 = time.perf_counter()
        result = asyncio.run(backend.transcribe(Request(audio, "en", prompt, s.hotwords)))
        took.append(time.perf_counter() - t0)
        pieces = keep_pieces(result.pieces, s.no_speech_threshold, s.logprob_threshold,
                             s.compression_ratio_threshold)
        words = [w for p in pieces for w in p.words]
        t = u.start / SAMPLE_RATE
        start = t + (words[0][0] if words else 0.0)
        end = t + (words[-1][1] if words else len(audio) / SAMPLE_RATE)
        hyps.append(HypSegment(round(start, 3), round(end, 3), " ".join(p.text.strip() for p in pieces)))
    return hyps, took, time.process_time() - cpu0


def run(prefixes: list[str], tails: list[float], threads: int) -> tuple[list[Lecture], list[Run]]:
    lectures = [load_lecture(p) for p in prefixes]
    cuts = {lec.name: cut(lec) for lec in lectures}
    runs = []
    for tail in tails:
        s = TranscriberSettings(final_window_tail_s=tail, whisper_cpu_threads=threads)
        backend, r = LocalBackend(s), Run(tail)
        backend.model.transcribe(np.zeros(SAMPLE_RATE, np.float32), language="en")  # warm-up
        for lec in lectures:
            hyps, took, cpu = decode_all(backend, s, cuts[lec.name])
            r.hyps[lec.name], r.took, r.cpu = hyps, r.took + took, r.cpu + cpu
            r.speech_s += sum(len(u.audio) for u in cuts[lec.name]) / SAMPLE_RATE
        runs.append(r)
        print(f"tail={tail:g}: {len(r.took)} utterances decoded", file=sys.stderr)
    return lectures, runs


def scores(lectures: list[Lecture], r: Run) -> tuple[dict[str, WerResult], int]:
    wers, noise = {}, 0
    for lec in lectures:
        wers[lec.name] = word_errors(lec.speech_text, " ".join(h.text for h in r.hyps[lec.name] if h.text))
        noise += noise_words(r.hyps[lec.name], lec.spans).total
    return wers, noise


def report(lectures: list[Lecture], runs: list[Run]) -> list[dict]:
    rows = []
    print(f"{'strategy':<12}{'WER':>8}{'noise w':>9}{'p50 s':>8}{'p95 s':>8}{'CPU/speech s':>14}  per file")
    for r in runs:
        wers, noise = scores(lectures, r)
        row = {
            "strategy": "whole window" if r.tail == 0 else f"tail {r.tail:g} s",
            "wer": pooled_wer(wers.values()),
            "noise_words": noise,
            "p50": percentile(r.took, 50),
            "p95": percentile(r.took, 95),
            "cpu_per_speech_s": r.cpu / r.speech_s if r.speech_s else None,
            "per_file": {k: w.wer for k, w in wers.items()},
        }
        rows.append(row)
        per = " ".join(f"{k}={fmt(v, '.3f')}" for k, v in row["per_file"].items())
        print(f"{row['strategy']:<12}{fmt(row['wer'], '.4f'):>8}{noise:>9}{fmt(row['p50']):>8}"
              f"{fmt(row['p95']):>8}{fmt(row['cpu_per_speech_s']):>14}  {per}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="+", type=Path)
    ap.add_argument("--tails", default="0,10,5,2", help="comma-separated FINAL_WINDOW_TAIL_S values")
    ap.add_argument("--threads", type=int, default=0, help="WHISPER_CPU_THREADS (0: CTranslate2 decides)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    lectures, runs = run([str(p) for p in args.prefixes], [float(t) for t in args.tails.split(",")], args.threads)
    rows = report(lectures, runs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
