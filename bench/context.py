"""Finals in context: what hearing the session's preceding speech does to a final's accuracy and cost.

    python -m bench.context PREFIX [PREFIX ...] [--model base] [--seconds 0,20] [--json OUT]

Each lecture is cut into utterances by the service's own VAD and segmenter (as bench.finals), then
its finals are decoded in order by the service's LocalBackend and guards, once per FINAL_CONTEXT_S
value: 0 decodes each utterance alone (as before), S decodes it after up to S seconds of the
lecture's earlier utterances with their finals' text forced as the prefix, exactly as the
transcriber does it (services/transcriber/context.py). Printed per value: WER pooled over the files
and per file, announcements alerted (the alerts service's Detector on the finals, in order), decode time per final (p50/p95) and CPU seconds per second of speech decoded. All
values run in one process on the same utterances, so their ratios compare on a noisy machine.
`--early 0.15` also decodes each final as its early final would be (services/vad/partials.py): its
audio up to 0.15 s after its speech ends, not the whole 0.3 s of padding; the context is the finals'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import ReceivedAlert, fmt, load_lecture, match_alerts, percentile, pooled_wer, word_errors
from bench.finals import cut
from services.alerts.detector import Detector
from services.transcriber import context
from services.transcriber.backends import LocalBackend
from services.transcriber.guards import drop_doubled, keep_pieces
from services.transcriber.types import Request
from services.transcriber.worker import build_prompt
from shared.messages import SAMPLE_RATE
from shared.settings import TranscriberSettings
from testkit.truth import ExpectedAlert


def decode_lecture(
    backend: LocalBackend,
    s: TranscriberSettings,
    utterances: list,
    seconds: float,
    early: float | None = None,
) -> tuple:
    prompt = build_prompt(s.lecture_prompt, "", [])
    heard: list[tuple[np.ndarray, str]] = []  # earlier finals, oldest first
    texts, took = [], []
    for u in utterances:
        audio = u.audio.astype(np.float32) / 32768.0
        decoded = audio
        if early is not None and u.speech_end is not None:  # as the early final: less padding
            decoded = audio[: u.speech_end - u.start + round(early * SAMPLE_RATE)]
        ctx, said = context.assemble(heard, context.budget_s(seconds, len(audio) / SAMPLE_RATE))
        req = Request(decoded, "en", prompt, s.hotwords, context=ctx, context_text=said)
        t0 = time.perf_counter()
        result = asyncio.run(backend.transcribe(req))
        took.append(time.perf_counter() - t0)
        pieces = keep_pieces(
            result.pieces, s.no_speech_threshold, s.logprob_threshold, s.compression_ratio_threshold
        )
        text = drop_doubled(" ".join(p.text.strip() for p in pieces))
        texts.append(text)
        if text:
            heard.append((decoded, text))  # as the transcriber keeps it (worker.decoded_pcm)
    return texts, took


def heard_as(utterances: list, texts: list[str], e: ExpectedAlert) -> str:
    """The finals of the utterances the announcement was spoken in."""
    return " ".join(
        t
        for u, t in zip(utterances, texts, strict=True)
        if u.start / SAMPLE_RATE < e.end and (u.start + len(u.audio)) / SAMPLE_RATE > e.start
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="+", type=Path)
    ap.add_argument("--model", default="base", help="WHISPER_MODEL (default base)")
    ap.add_argument("--seconds", default="0,20", help="comma-separated FINAL_CONTEXT_S values")
    ap.add_argument("--early", default="", help="comma-separated EARLY_FINAL_S values to decode as well")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--beam", type=int, default=None, help="WHISPER_BEAM_SIZE (default: the service's)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    extra = {"whisper_beam_size": args.beam} if args.beam else {}
    s = TranscriberSettings(whisper_model=args.model, whisper_cpu_threads=args.threads, **extra)
    backend = LocalBackend(s)
    lectures = [load_lecture(str(p)) for p in args.prefixes]
    cuts = {lec.name: cut(lec) for lec in lectures}
    speech_s = sum(len(u.audio) for us in cuts.values() for u in us) / SAMPLE_RATE
    rows = []
    print(f"{'context s':>10}{'WER':>8}{'alerts':>8}{'p50 s':>8}{'p95 s':>8}{'CPU/speech s':>14}  per file")
    earlies = [None] + [float(x) for x in args.early.split(",") if x]
    for seconds, early in ((float(x), e) for x in args.seconds.split(",") for e in earlies):
        cpu0, wers, took, found, expected = time.process_time(), {}, [], 0, 0
        for lec in lectures:
            texts, t = decode_lecture(backend, s, cuts[lec.name], seconds, early)
            wers[lec.name] = word_errors(lec.speech_text, " ".join(x for x in texts if x))
            took += t
            detector, received = Detector(), []
            for seg, (u, text) in enumerate(zip(cuts[lec.name], texts, strict=True)):
                for a in detector.feed(seg, u.start / SAMPLE_RATE, text, u.continues):
                    received.append(ReceivedAlert(a.category, a.start, a.text, seg))
            received += [ReceivedAlert(a.category, a.start, a.text, a.segment) for a in detector.flush()]
            score = match_alerts(lec.alerts, received)
            found, expected = found + len(score.found), expected + len(lec.alerts)
            for e in score.missed:
                print(
                    f"  context {seconds:g} early {early}: {lec.name} missed {e.category} {e.text!r}"
                    f" heard as {heard_as(cuts[lec.name], texts, e)!r}",
                    flush=True,
                )
        row = {
            "context_s": seconds,
            "early_s": early,
            "wer": pooled_wer(wers.values()),
            "alerts": f"{found}/{expected}",
            "p50": percentile(took, 50),
            "p95": percentile(took, 95),
            "cpu_per_speech_s": (time.process_time() - cpu0) / speech_s,
            "per_file": {k: w.wer for k, w in wers.items()},
        }
        rows.append(row)
        per = " ".join(f"{k}={fmt(v, '.3f')}" for k, v in row["per_file"].items())
        print(
            f"{seconds:>7g}{'' if early is None else f'/{early:g}':<3}{fmt(row['wer'], '.4f'):>8}{row['alerts']:>8}{fmt(row['p50']):>8}{fmt(row['p95']):>8}"
            f"{fmt(row['cpu_per_speech_s']):>14}  {per}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
