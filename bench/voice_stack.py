"""The voice lock through a running stack: words the client gets, alerts, CPU per service.

    make run &        # or PORT=... make run
    python -m bench.voice_stack http://127.0.0.1:8080 DIR/voice_espeak DIR/voice_rms ... [--speed 1]

For each dev recording (bench/voice_data.py) the lecturer is enrolled with POST /api/voices from
NAME.enrol.wav, then the recording is streamed twice over /ws/transcribe: without a lock and with it
(`others: drop`). Words are counted by aligning the client's finals (in time order, Whisper's
normaliser) with the truth of the whole recording, lecturer's and others' stretches in time order
(jiwer): a reference word is "transcribed" when the alignment gives it a hit or a substitution.
Printed per recording and pooled (bench.voice_data.HARD excluded): lecturer's words transcribed
with the lock, and as a share of those transcribed without it ("kept"); others' words transcribed
with and without; announcements alerted (bench.common's matching); and the CPU seconds per audio
second of the VAD and the transcriber processes in each run (the embedder alone: bench.voice). The machine may be shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import jiwer

from bench.common import CpuMeter, ExpectedAlert, ReceivedAlert, match_alerts, normalise, read_wav
from bench.session import stream_session
from bench.voice_data import HARD

OWNER = "bench-voice-owner-0123456789"


@dataclass
class Counts:
    lecturer: list[int] = field(default_factory=lambda: [0, 0])  # transcribed, words
    other: list[int] = field(default_factory=lambda: [0, 0])
    alerts: list[int] = field(default_factory=lambda: [0, 0])  # found, expected
    false_alerts: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # service -> CPU s
    audio_s: float = 0.0

    def add(self, o: Counts) -> None:
        for k in ("lecturer", "other", "alerts"):
            getattr(self, k)[0] += getattr(o, k)[0]
            getattr(self, k)[1] += getattr(o, k)[1]
        self.false_alerts += o.false_alerts
        for s, c in o.cpu.items():
            self.cpu[s] = self.cpu.get(s, 0.0) + c
        self.audio_s += o.audio_s


def count(truth: dict, finals: list[dict]) -> tuple[list[int], list[int]]:
    """[transcribed, words] of the lecturer's and of the others' reference words."""
    ref_words, who = [], []
    for s in sorted((s for s in truth["segments"] if s["kind"] == "speech"), key=lambda s: s["start"]):
        ws = normalise(s["text"]).split()
        ref_words += ws
        who += [s["speaker"]] * len(ws)
    hyp = normalise(
        " ".join(f["text"] for f in sorted(finals, key=lambda f: f["start"]) if f["text"])
    ).split()
    got = {"lecturer": [0, 0], "other": [0, 0]}
    for w in who:
        got[w][1] += 1
    if hyp:
        out = jiwer.process_words(" ".join(ref_words), " ".join(hyp))
        for chunk in out.alignments[0]:
            if chunk.type in ("equal", "substitute"):
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    got[who[i]][0] += 1
    return got["lecturer"], got["other"]


def load(prefix: str) -> tuple[dict, bytes, bytes]:
    """The recording's truth, its PCM and its enrolment WAV."""
    truth = json.loads(Path(f"{prefix}.json").read_text())
    return truth, read_wav(Path(f"{prefix}.wav")).tobytes(), Path(f"{prefix}.enrol.wav").read_bytes()


async def enrol(http: aiohttp.ClientSession, base: str, prefix: str) -> str:
    form = aiohttp.FormData()
    form.add_field("file", load(prefix)[2], filename="enrol.wav")
    form.add_field("name", Path(prefix).name)
    async with http.post(f"{base}/api/voices", data=form, headers={"X-ClassRec-Owner": OWNER}) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise SystemExit(f"{prefix}: enrolment refused: {body}")
        return body["voice"]


async def run_one(
    http: aiohttp.ClientSession, base: str, prefix: str, voice: str | None, speed: float
) -> Counts:
    truth, pcm, _ = load(prefix)
    start = {"type": "start", "language": "en", "timezone": "UTC"}
    if voice:
        start |= {"owner": OWNER, "voice": voice, "others": "drop"}
    meter = CpuMeter()
    meter.start()
    ws = base.replace("http", "ws", 1) + "/ws/transcribe"
    run = await stream_session(http, ws, pcm, speed, 300.0, start)
    used = meter.stop()
    if run.error:
        raise SystemExit(f"{prefix}: {run.error}")
    msgs = [m for _, m in run.messages]
    finals = [m for m in msgs if m["type"] == "transcript" and m["final"]]
    c = Counts(audio_s=len(pcm) / 32000)
    c.lecturer, c.other = count(truth, finals)
    by_start = {round(s["start"], 3): s for s in truth["segments"]}
    expected = [
        ExpectedAlert(a["category"], a["text"], a["start"], by_start[round(a["start"], 3)]["end"])
        for a in truth["alerts"]
    ]
    received = [
        ReceivedAlert(m["category"], m["start"], m["text"], m["segment"])
        for m in msgs
        if m["type"] == "alert" and m["category"] in {e.category for e in expected} | {"exam", "quiz"}
    ]
    score = match_alerts(expected, received)
    c.alerts = [len(score.found), len(expected)]
    c.false_alerts = len(score.false)
    for pid, cpu in used.items():
        name = meter.names.get(pid, "?").removeprefix("services.")
        c.cpu[name] = c.cpu.get(name, 0.0) + cpu
    return c


def pct(a: list[int]) -> str:
    return f"{a[0]}/{a[1]} = {100 * a[0] / max(1, a[1]):.1f}%"


def cpu(c: Counts, service: str) -> str:
    return f"{c.cpu.get(service, 0.0) / max(1e-9, c.audio_s):.4f}"


async def main_async(a: argparse.Namespace) -> None:
    totals = {"off": Counts(), "on": Counts()}
    print(
        "recording | lock | lecturer's words transcribed | others' words transcribed | alerts found (false) | vad / transcriber CPU s per audio s"
    )
    async with aiohttp.ClientSession() as http:
        for prefix in a.recordings:
            name = Path(prefix).name
            voice = await enrol(http, a.url, prefix)
            got = {}
            for mode, v in (("off", None), ("on", voice)):
                c = await run_one(http, a.url, prefix, v, a.speed)
                got[mode] = c
                if name not in HARD:
                    totals[mode].add(c)
                print(
                    f"{name} | {mode} | {pct(c.lecturer)} | {pct(c.other)} | {pct(c.alerts)} ({c.false_alerts}) | "
                    f"{cpu(c, 'vad')} / {cpu(c, 'transcriber')}",
                    flush=True,
                )
            kept = got["on"].lecturer[0] / max(1, got["off"].lecturer[0])
            print(f"{name} | kept with the lock / without: {100 * kept:.1f}%", flush=True)
    off, on = totals["off"], totals["on"]
    print(
        f"pooled (targets) | lecturer's words transcribed {pct(on.lecturer)} with the lock, {pct(off.lecturer)} "
        f"without: kept {100 * on.lecturer[0] / max(1, off.lecturer[0]):.1f}% | others' {pct(on.other)} with, "
        f"{pct(off.other)} without | alerts {pct(on.alerts)} ({on.false_alerts} false) with, {pct(off.alerts)} without"
    )
    tr_on, tr_off = (x.cpu.get("transcriber", 0) / max(1e-9, x.audio_s) for x in (on, off))
    print(
        f"CPU s per audio s: vad {cpu(off, 'vad')} without the lock, {cpu(on, 'vad')} with; transcriber "
        f"{tr_off:.4f} without, {tr_on:.4f} with. The locked VAD also sends fewer partials, so its "
        "difference is not the embedder's cost: bench.voice measures the embedder alone."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("recordings", nargs="+")
    ap.add_argument("--speed", type=float, default=1.0)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
