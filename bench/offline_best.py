"""The offline limit of issue 14: a model's best whole-file WER over a few decoding choices.

    python -m bench.offline_best PREFIX [PREFIX ...] [--model tiny.en|base|PATH] [--task translate]

Each lecture (PREFIX.wav + PREFIX.json) is transcribed whole in one faster-whisper call with its own
Silero VAD filter on, four ways: beam 1 and 5, with and without the service's lecture prompt
(int8 on CPU, the lecture's language, temperature fallback as faster-whisper does it). Printed: the
WER of each, the best, and CPU seconds per audio second. "Done when" of issue 14 compares the live
WER of a hall lecture with this best figure of the same model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import fmt, load_lecture, word_errors
from services.transcriber.models import load_whisper
from shared.settings import DEFAULT_LECTURE_PROMPT

VARIANTS = [(1, False), (1, True), (5, False), (5, True)]  # (beam, prompt)


def run(model, prefix: str, task: str) -> dict:
    lecture = load_lecture(prefix, translated=task == "translate")
    language = load_lecture(prefix).language
    out = {"file": lecture.name, "variants": []}
    for beam, prompt in VARIANTS:
        cpu = time.process_time()
        segs, _ = model.transcribe(
            lecture.audio_float(),
            beam_size=beam,
            language=language,
            task=task,
            initial_prompt=DEFAULT_LECTURE_PROMPT if prompt else None,
            vad_filter=True,
        )
        text = " ".join(s.text.strip() for s in segs)
        cpu = time.process_time() - cpu
        w = word_errors(lecture.speech_text, text, lecture.language)
        out["variants"].append(
            {"beam": beam, "prompt": prompt, "wer": w.wer, "cpu_per_audio_s": cpu / lecture.duration}
        )
    out["best"] = min(v["wer"] for v in out["variants"] if v["wer"] is not None)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefixes", nargs="+", metavar="PREFIX")
    ap.add_argument("--model", default="tiny.en", help="WHISPER_MODEL value (default tiny.en)")
    ap.add_argument("--task", choices=("transcribe", "translate"), default="transcribe")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args(argv)
    model = load_whisper(args.model, device="cpu", compute_type="int8", cpu_threads=args.threads)
    results = []
    print(f"model {args.model}, task {args.task}, whole file, vad_filter on")
    print(f"{'file':<16} " + " ".join(f"b{b}{'+p' if p else '  '}  " for b, p in VARIANTS) + " best")
    for prefix in args.prefixes:
        r = run(model, prefix, args.task)
        results.append(r)
        cells = " ".join(fmt(v["wer"], ".2%").rjust(7) for v in r["variants"])
        print(f"{r['file']:<16} {cells}  {fmt(r['best'], '.2%')}", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
