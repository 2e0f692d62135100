"""Live benchmark: stream a lecture through the WebSocket at real-time pace and score what comes back.

    python -m bench.stream ws://localhost:8080/ws/transcribe PREFIX [--speed X] [--sessions N]
                           [--json OUT] [--pids PID,PID,...]

Each session sends {"type":"start","language":"en"} (--language, --task; default the lecture's
language), then PREFIX.wav in 100 ms binary frames paced
against a monotonic clock at real time x speed (frame i leaves at t0 + i*0.1/speed, so lateness
never accumulates), then {"type":"stop"}, and waits for {"type":"end"}. Every server message is
kept with its arrival time relative to the first audio frame (t = 0).

Figures (bench.common defines WER, noise words, alert matching):
  WER             of the finals joined in segment order, against the speech text of PREFIX.json;
  noise words     words of finals placed in noise-only stretches (and in silence);
  final latency   p50/p95 of arrival - end/speed, `end` being the final's end in session audio
                  (end/speed is when the client had sent that audio); "vs truth": against the end of
                  the spoken sentence a final overlaps most; "per sentence": for every spoken
                  sentence, the final of the segment it ends in against that end;
  partial lag     the same for non-final transcripts, if any;
  end after stop  arrival of {"type":"end"} - the moment {"type":"stop"} was sent;
  alerts          found / expected / false (+ duplicates), each listed;
  CPU             CPU seconds of the service processes (`-m services...`, or --pids) per second
                  of audio streamed, measured from before the first connect to after the last end.
With --sessions N, N sessions stream the same file concurrently; the figures are pooled and
each session's WER is listed. Exit status: 0, or 1 if a session failed to connect or complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import (
    AlertScore,
    CpuMeter,
    HypSegment,
    Lecture,
    NoiseWords,
    ReceivedAlert,
    WerResult,
    describe_alerts,
    find_service_pids,
    fmt,
    load_lecture,
    match_alerts,
    noise_words,
    percentile,
    pooled_wer,
    word_errors,
)
from bench.session import SessionRun, stream_session

# --- figures from a message list ----------------------------------------------------------------


@dataclass
class SessionFigures:
    finals: list[dict]  # first final per segment, in segment order
    final_latency: list[float]
    partial_lag: list[float]
    partials: int
    repeated_finals: int  # finals whose segment already had one
    errors: list[dict]
    alerts: AlertScore
    end_after_stop: float | None
    wer: WerResult | None = None
    noise: NoiseWords | None = None
    truth_latency: list[float] = field(default_factory=list)  # arrival - end of the spoken sentence
    sentence_latency: list[float] = field(default_factory=list)  # per spoken sentence: its final - its end

    @property
    def text(self) -> str:
        return " ".join(f["text"].strip() for f in self.finals)


def _of_type(messages: list[tuple[float, dict]], kind: str) -> list[tuple[float, dict]]:
    return [(t, m) for t, m in messages if m.get("type") == kind]


def split_transcripts(messages: list[tuple[float, dict]]) -> tuple[list[tuple[float, dict]], int, list]:
    """(first final per segment in segment order, repeated finals, partials as (t, msg))."""
    first: dict[int, tuple[float, dict]] = {}
    repeated, partials = 0, []
    for t, m in _of_type(messages, "transcript"):
        if not m.get("final"):
            partials.append((t, m))
        elif m["segment"] in first:
            repeated += 1
        else:
            first[m["segment"]] = (t, m)
    return [first[k] for k in sorted(first)], repeated, partials


def analyse(
    messages: list[tuple[float, dict]], lecture: Lecture, speed: float, stop_at: float | None = None
) -> SessionFigures:
    """All figures of one session from its timed messages."""
    finals, repeated, partials = split_transcripts(messages)
    received = [
        ReceivedAlert(m["category"], float(m["start"]), m.get("text", ""), m.get("segment", -1))
        for _, m in _of_type(messages, "alert")
    ]
    ends = [t for t, _ in _of_type(messages, "end")]
    fig = SessionFigures(
        finals=[m for _, m in finals],
        final_latency=[t - m["end"] / speed for t, m in finals],
        partial_lag=[t - m["end"] / speed for t, m in partials],
        partials=len(partials),
        repeated_finals=repeated,
        errors=[m for _, m in _of_type(messages, "error")],
        alerts=match_alerts(lecture.alerts, received),
        end_after_stop=ends[0] - stop_at if ends and stop_at is not None else None,
    )
    if lecture.has_truth:
        fig.truth_latency = truth_latency(finals, lecture, speed)
        fig.sentence_latency = sentence_latency(finals, lecture, speed)
        fig.wer = word_errors(lecture.speech_text, fig.text, lecture.language)
        segs = [HypSegment(float(m["start"]), float(m["end"]), m["text"]) for m in fig.finals]
        fig.noise = noise_words(segs, lecture.spans)
    return fig


def truth_latency(finals: list[tuple[float, dict]], lecture: Lecture, speed: float) -> list[float]:
    """Arrival of each final minus the end of the ground-truth sentence it overlaps most."""
    speech = [sp for sp in lecture.spans if sp.kind == "speech"]
    out = []
    for t, m in finals:
        best = max(speech, key=lambda sp: min(sp.end, m["end"]) - max(sp.start, m["start"]), default=None)
        if best is not None and min(best.end, m["end"]) > max(best.start, m["start"]):
            out.append(t - best.end / speed)
    return out


def sentence_latency(finals: list[tuple[float, dict]], lecture: Lecture, speed: float) -> list[float]:
    """For each ground-truth sentence, the arrival of the final of the segment it ends in (the last
    final that starts before the sentence's end) minus that end: what a student waits for each
    sentence, however many sentences one final holds (`truth_latency` counts a final once)."""
    out = []
    for sp in (sp for sp in lecture.spans if sp.kind == "speech"):
        before = [(m["start"], t) for t, m in finals if m["start"] < sp.end]
        if before:
            out.append(max(before)[1] - sp.end / speed)
    return out


# --- pooled report ------------------------------------------------------------------------------


def _pct(xs: list[float]) -> str:
    p50, p95 = fmt(percentile(xs, 50), ".2f", " s"), fmt(percentile(xs, 95), ".2f", " s")
    return f"p50 {p50}  p95 {p95}  (n={len(xs)})"


def summarise(figs: list[SessionFigures], lecture: Lecture, cpu: dict[str, float]) -> dict:
    """Pooled figures of all sessions, as a JSON-able dict."""
    alerts, noise = AlertScore(), NoiseWords()
    for f in figs:
        alerts.add(f.alerts)
        noise.add(f.noise or NoiseWords())
    lat = [x for f in figs for x in f.final_latency]
    lag = [x for f in figs for x in f.partial_lag]
    audio_s = lecture.duration * len(figs)
    cpu_total = sum(cpu.values())
    return {
        "sessions": len(figs),
        "wer": pooled_wer(f.wer for f in figs if f.wer) if lecture.has_truth else None,
        "session_wer": [f.wer.wer if f.wer else None for f in figs],
        "noise_words": noise.in_noise if lecture.has_truth else None,
        "silence_words": noise.in_silence if lecture.has_truth else None,
        "final_latency_p50": percentile(lat, 50),
        "final_latency_p95": percentile(lat, 95),
        "truth_latency_p50": percentile([x for f in figs for x in f.truth_latency], 50),
        "truth_latency_p95": percentile([x for f in figs for x in f.truth_latency], 95),
        "sentence_latency_p50": percentile([x for f in figs for x in f.sentence_latency], 50),
        "sentence_latency_p95": percentile([x for f in figs for x in f.sentence_latency], 95),
        "partial_lag_p50": percentile(lag, 50),
        "partial_lag_p95": percentile(lag, 95),
        "finals": len(lat),
        "partials": len(lag),
        "repeated_finals": sum(f.repeated_finals for f in figs),
        "end_after_stop": [f.end_after_stop for f in figs],
        "alerts_found": len(alerts.found),
        "alerts_expected": alerts.expected,
        "alerts_false": len(alerts.false),
        "alerts_duplicate": len(alerts.duplicates),
        "alerts_found_any_category": alerts.found_any_category,
        "errors": [e for f in figs for e in f.errors],
        "cpu_s": cpu,
        "cpu_s_per_audio_s": cpu_total / audio_s if audio_s and cpu else None,
    }


def print_report(s: dict, figs: list[SessionFigures], lecture: Lecture, speed: float, wall: float) -> None:
    print(
        f"{lecture.name}: {lecture.duration:.1f} s audio x {s['sessions']} session(s), speed {speed:g}, "
        f"wall {wall:.1f} s"
    )
    per = ", ".join(fmt(w, ".1%") for w in s["session_wer"])
    print(f"  WER              {fmt(s['wer'], '.2%')}   per session: {per}")
    print(
        f"  noise words      {fmt(s['noise_words'], 'd')} in noise stretches + "
        f"{fmt(s['silence_words'], 'd')} in silence"
    )
    lat = [x for f in figs for x in f.final_latency]
    lag = [x for f in figs for x in f.partial_lag]
    print(f"  final latency    {_pct(lat)}   (repeated finals: {s['repeated_finals']})")
    truth = [x for f in figs for x in f.truth_latency]
    if truth:
        print(f"  ... vs truth     {_pct(truth)}   (arrival - end of the spoken sentence in the truth)")
        each = [x for f in figs for x in f.sentence_latency]
        print(
            f"  ... per sentence {_pct(each)}   (each spoken sentence: the final of the segment it ends in)"
        )
    print(f"  partial lag      {_pct(lag)}")
    print(f"  end after stop   {', '.join(fmt(x, '.2f', ' s') for x in s['end_after_stop'])}")
    print(
        f"  alerts           found {s['alerts_found']} / expected {s['alerts_expected']} / "
        f"false {s['alerts_false']}  (duplicates {s['alerts_duplicate']}, "
        f"found ignoring category {s['alerts_found_any_category']})"
    )
    for i, f in enumerate(figs):
        for line in describe_alerts(f.alerts):
            print(f"   s{i}{line}")
    by_name = ", ".join(f"{k} {v:.1f}" for k, v in sorted(s["cpu_s"].items()))
    print(
        f"  CPU              {fmt(s['cpu_s_per_audio_s'], '.3f')} CPU s per audio s"
        f"   ({by_name or 'no service PIDs found'})"
    )
    for e in s["errors"]:
        print(f"  server error     {e.get('code')}: {e.get('message')}")
    for i, f in enumerate(figs):
        for where, seg in (f.noise.offenders if f.noise else [])[:5]:
            print(f"   s{i} final in {where} [{seg.start:.1f}-{seg.end:.1f}]: {seg.text!r}")


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("url", help="e.g. ws://localhost:8080/ws/transcribe")
    ap.add_argument("prefix", metavar="PREFIX", help="lecture PREFIX (.wav and .json)")
    ap.add_argument("--speed", type=float, default=1.0, help="audio seconds sent per wall second")
    ap.add_argument("--sessions", type=int, default=1, help="concurrent sessions of the same file")
    ap.add_argument(
        "--pids",
        default=None,
        help="comma-separated PIDs to measure CPU of (default: every process run as `-m services...`)",
    )
    ap.add_argument("--end-wait", type=float, default=300.0, help="longest wait for end after stop, s")
    ap.add_argument("--json", dest="json_out", default=None, help="write figures and messages here")
    ap.add_argument("--language", default=None, help="start's language (default: the lecture's, en) or auto")
    ap.add_argument(
        "--task",
        choices=("transcribe", "translate"),
        default=None,
        help="start's task; translate scores against the lecture's English translations",
    )
    ap.add_argument(
        "--names", default="", help="comma-separated names for start's `names` (a name alert is then false)"
    )
    args = ap.parse_args(argv)
    if args.speed <= 0 or args.sessions < 1:
        ap.error("--speed must be > 0 and --sessions >= 1")
    return args


def _cpu_by_name(used: dict[int, float], names: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid, sec in used.items():
        key = names.get(pid, str(pid)).removeprefix("services.")
        out[key] = out.get(key, 0.0) + sec
    return out


async def run_all(
    args: argparse.Namespace, lecture: Lecture
) -> tuple[list[SessionRun], dict[str, float], float]:
    """Run the sessions concurrently; (runs, CPU seconds by service, wall seconds)."""
    pids = [int(p) for p in args.pids.split(",")] if args.pids else None
    meter = CpuMeter(pids)
    meter.start()
    wall = time.monotonic()
    pcm = lecture.pcm.tobytes()
    start = {"type": "start", "language": args.language or lecture.language}
    if args.task:
        start["task"] = args.task
    if args.names.strip():
        start["names"] = [n.strip() for n in args.names.split(",") if n.strip()]
    async with aiohttp.ClientSession() as http:
        runs = await asyncio.gather(
            *(
                stream_session(http, args.url, pcm, args.speed, args.end_wait, start)
                for _ in range(args.sessions)
            )
        )
    wall = time.monotonic() - wall
    names = meter.names if pids is None else {p: n for p, n in find_service_pids().items() if p in pids}
    return list(runs), _cpu_by_name(meter.stop(), names), wall


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lecture = load_lecture(args.prefix, translated=args.task == "translate")
    if args.task == "translate":
        args.language = args.language or load_lecture(args.prefix).language
    runs, cpu, wall = asyncio.run(run_all(args, lecture))
    for i, r in enumerate(runs):
        if r.error:
            print(f"session {i}: FAILED: {r.error}", file=sys.stderr)
    started = [r for r in runs if r.t0 is not None]  # figures only of sessions that sent audio
    if not started:
        return 1
    figs = [analyse(r.messages, lecture, args.speed, r.stop_at) for r in started]
    summary = summarise(figs, lecture, cpu)
    print_report(summary, figs, lecture, args.speed, wall)
    if args.json_out:
        out = {
            "file": lecture.name,
            "speed": args.speed,
            "wall_s": wall,
            **summary,
            "failed": sum(1 for r in runs if r.error),
            "runs": [{"error": r.error, "stop_at": r.stop_at, "messages": r.messages} for r in runs],
        }
        Path(args.json_out).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json_out}")
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
