"""How finals are decoded: accuracy and cost of each strategy, on the utterances the service cuts.

    python -m bench.finals PREFIX [PREFIX ...] [--strategies 0,5,5x4] [--threads N] [--json OUT]

Each file is cut into utterances offline by the service's own VAD and segmenter (default
settings), then every utterance is decoded by the service's own LocalBackend and guards, once per
strategy:
  tail=0   the encoder sees a whole padded 30 s window (faster-whisper's default);
  tail=T   the encoder sees the utterance plus T seconds of padding (FINAL_WINDOW_TAIL_S=T);
  TxB      tail T, utterances decoded B at a time in one batch (LocalBackend.transcribe_many, as
           the transcriber does when finals queue up), taken round-robin from the files as if
           they were lectures running at once.
Printed per strategy: WER pooled over the files (and per file), words placed in noise-only
stretches, decode wall time per utterance (p50/p95; a batch's time divided by its size) and CPU seconds per audio second of speech
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
    cfg = SegmenterConfig.from_settings(v)
    vad, seg = StreamingVad(load_model(v.vad_model_path)), Segmenter(cfg)
    out: list[Utterance] = []
    went_on: dict[int, bool] = {}
    for i in range(0, len(lecture.pcm), FRAME):
        pcm = lecture.pcm[i : i + FRAME]
        out += seg.push(pcm, vad.push(pcm.astype(np.float32) / 32768.0))
        went_on.update(seg.take_joins())
    out += seg.flush()
    went_on.update(seg.take_joins())
    for u in out:  # as the transcriber tells the alerts: closed in a short pause and speech went on
        u.continues = went_on.get(u.index, False)
    return out


@dataclass
class Run:
    tail: float
    batch: int = 1
    hyps: dict[str, list[HypSegment]] = field(default_factory=dict)
    took: list[float] = field(default_factory=list)
    cpu: float = 0.0
    speech_s: float = 0.0


def hyp(u: Utterance, pieces: list) -> HypSegment:
    """The final the worker would send for this utterance, in session time."""
    words = [w for p in pieces for w in p.words]
    t, dur = u.start / SAMPLE_RATE, len(u.audio) / SAMPLE_RATE
    start = t + (words[0][0] if words else 0.0)
    end = t + (words[-1][1] if words else dur)
    return HypSegment(round(start, 3), round(end, 3), " ".join(p.text.strip() for p in pieces))


def round_robin(cuts: dict[str, list[Utterance]]) -> list[tuple[str, Utterance]]:
    queues = [[(name, u) for u in utts] for name, utts in cuts.items()]
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def decode_run(r: Run, cuts: dict[str, list[Utterance]], threads: int) -> None:
    s = TranscriberSettings(final_window_tail_s=r.tail, whisper_cpu_threads=threads)
    backend = LocalBackend(s)
    backend.model.transcribe(np.zeros(SAMPLE_RATE, np.float32), language="en")  # warm-up
    prompt = build_prompt(s.lecture_prompt, "", [])
    order = round_robin(cuts)
    found: dict[int, HypSegment] = {}
    cpu0 = time.process_time()
    for i in range(0, len(order), r.batch):
        group = order[i : i + r.batch]
        reqs = [Request(u.audio.astype(np.float32) / 32768.0, "en", prompt, s.hotwords) for _, u in group]
        t0 = time.perf_counter()
        results = asyncio.run(backend.transcribe_many(reqs))
        r.took.append((time.perf_counter() - t0) / len(group))
        for j, ((_, u), res) in enumerate(zip(group, results, strict=True)):
            pieces = keep_pieces(
                res.pieces, s.no_speech_threshold, s.logprob_threshold, s.compression_ratio_threshold
            )
            found[i + j] = hyp(u, pieces)
    r.cpu = time.process_time() - cpu0
    r.hyps = {name: [] for name in cuts}
    for k, (name, u) in enumerate(order):
        r.hyps.setdefault(name, []).append(found[k])
        r.speech_s += len(u.audio) / SAMPLE_RATE


def parse_strategy(text: str) -> Run:
    tail, _, batch = text.partition("x")
    return Run(float(tail), int(batch or 1))


def run(prefixes: list[str], strategies: list[str], threads: int) -> tuple[list[Lecture], list[Run]]:
    lectures = [load_lecture(p) for p in prefixes]
    cuts = {lec.name: cut(lec) for lec in lectures}
    runs = []
    for text in strategies:
        r = parse_strategy(text)
        decode_run(r, cuts, threads)
        for name in r.hyps:
            r.hyps[name].sort(key=lambda h: h.start)
        runs.append(r)
        print(f"{text}: {sum(map(len, cuts.values()))} utterances decoded", file=sys.stderr)
    return lectures, runs


def scores(lectures: list[Lecture], r: Run) -> tuple[dict[str, WerResult], int]:
    wers, noise = {}, 0
    for lec in lectures:
        wers[lec.name] = word_errors(lec.speech_text, " ".join(h.text for h in r.hyps[lec.name] if h.text))
        noise += noise_words(r.hyps[lec.name], lec.spans).total
    return wers, noise


def report(lectures: list[Lecture], runs: list[Run]) -> list[dict]:
    rows = []
    print(f"{'strategy':<16}{'WER':>8}{'noise w':>9}{'p50 s':>8}{'p95 s':>8}{'CPU/speech s':>14}  per file")
    for r in runs:
        wers, noise = scores(lectures, r)
        name = "whole window" if r.tail == 0 else f"tail {r.tail:g} s"
        row = {
            "strategy": name + (f" x{r.batch}" if r.batch > 1 else ""),
            "wer": pooled_wer(wers.values()),
            "noise_words": noise,
            "p50": percentile(r.took, 50),
            "p95": percentile(r.took, 95),
            "cpu_per_speech_s": r.cpu / r.speech_s if r.speech_s else None,
            "per_file": {k: w.wer for k, w in wers.items()},
        }
        rows.append(row)
        per = " ".join(f"{k}={fmt(v, '.3f')}" for k, v in row["per_file"].items())
        print(
            f"{row['strategy']:<16}{fmt(row['wer'], '.4f'):>8}{noise:>9}{fmt(row['p50']):>8}"
            f"{fmt(row['p95']):>8}{fmt(row['cpu_per_speech_s']):>14}  {per}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="+", type=Path)
    ap.add_argument(
        "--strategies", default="0,5,5x4", help="comma-separated: T (tail T s) or TxB (batches of B)"
    )
    ap.add_argument("--threads", type=int, default=0, help="WHISPER_CPU_THREADS (0: CTranslate2 decides)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    lectures, runs = run([str(p) for p in args.prefixes], args.strategies.split(","), args.threads)
    rows = report(lectures, runs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
