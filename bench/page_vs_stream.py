"""The same lecture through the page (headless Chromium, fake microphone) and through bench.stream.

    python -m bench.page_vs_stream URL_BASE [--stream-url URL] [--replay] [--floor] [--minutes 10] [--out DIR]
                                   [--sequential] [--voice-processing]

Builds a lecture of about --minutes from tests/data/{lecture1,lecture2,real_joined,noise90}.wav,
repeated as needed (the last piece is cut in the silence after its last whole stretch, so the
merged ground truth of the JSONs, shifted by each piece's offset, stays exact), and streams it
  (a) through the page: the system Chromium plays the WAV as its microphone (see
      testkit/browser.py; the WAV is written at the fake device's rate, 44.1 kHz, so that Chromium
      plays it without resampling it, see --mic-rate), the script opens URL_BASE, unchecks the page's "echo cancellation"
      and "noise suppression" (so that the browser sends the microphone's audio unprocessed, as
      bench.stream does; --voice-processing leaves them as the form has them), clicks #start, waits until
      window.classrec.recording.sentSeconds covers the clip, clicks #stop and waits for
      body[data-phase=ended]; the finals are taken from the WebSocket frames the page received
      (one per segment, in segment order);
  (b) through bench.session.stream_session (what bench.stream runs) at 1x, over ws(s)://HOST/ws/transcribe;
concurrently (or one after the other with --sequential; --stream-url runs (b) on a second stack, so
that the two sessions' finals are never decoded in one batch), then optionally
  (c) --replay: the very audio the page sent, through bench.stream: the transcript the server makes of
      the page's audio when the page is not in the way (identical if the page loses, reorders or
      duplicates nothing);
  (d) --floor: how far apart the service's transcripts are for variants of the clip that no
      microphone path can avoid (from where the page started capturing, one sample later, +-1 LSB),
      decoded offline by the service's own code.
Prints the number of finals of each, the
WER of (a) against (b), the WER of each against the merged truth (bench.common definitions), and
the first differing stretches of segments. Writes DIR/lecture.wav, DIR/lecture.json, DIR/page.json,
DIR/stream.json (DIR/replay.json with --replay), DIR/page_sent.pcm (the audio the page sent: 16 kHz PCM16) and DIR/page_audio.json (that
audio matched against the clip: where the clip starts in it, audio lost or inserted, SNR per band; see
audio_check). Exit status 0, or 1 if either run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import wave
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.common import SAMPLE_RATE, Lecture, Span, load_lecture
from bench.page_report import compare_texts, report, report_replay, texts
from bench.session import stream_session
from testkit.browser import FAKE_DEVICE_RATE, write_fake_mic
from testkit.page import audio_check, finals_in_order, run_page

ROOT = Path(__file__).resolve().parent.parent
PIECES = ["lecture1", "lecture2", "real_joined", "noise90"]
TAIL_SILENCE_S = 3.0  # after the clip in the fake-mic WAV (played once, %noloop)
CUT_PAD_S = 0.5  # a cut piece ends this long after its last whole stretch


# --- the lecture --------------------------------------------------------------------------------


def build_lecture(minutes: float, data_dir: Path = ROOT / "tests" / "data") -> tuple[np.ndarray, list[Span]]:
    """PCM of about `minutes` (the pieces in order, repeated) and the merged truth spans."""
    target = minutes * 60.0
    pieces = [load_lecture(data_dir / name) for name in PIECES]
    chunks: list[np.ndarray] = []
    spans: list[Span] = []
    offset = 0.0
    i = 0
    while offset < target - 1.0:
        lec: Lecture = pieces[i % len(pieces)]
        i += 1
        remaining = target - offset
        if lec.duration <= remaining:
            pcm, kept = lec.pcm, lec.spans
        else:
            kept = [s for s in lec.spans if s.end + CUT_PAD_S <= remaining]
            if not kept:
                break
            cut = min(lec.duration, max(s.end for s in kept) + CUT_PAD_S)
            pcm = lec.pcm[: int(cut * SAMPLE_RATE)]
        chunks.append(pcm)
        spans += [Span(s.kind, s.start + offset, s.end + offset, s.text) for s in kept]
        offset += len(pcm) / SAMPLE_RATE
    return np.concatenate(chunks).astype(np.int16), spans


def write_wav(pcm: np.ndarray, path: Path, silence_s: float = 0.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.astype("<i2").tobytes() + b"\0\0" * int(silence_s * SAMPLE_RATE))
    return path


# --- (b) bench.stream ---------------------------------------------------------------------------


async def run_stream(ws_url: str, pcm: np.ndarray, end_wait_s: float) -> dict[str, Any]:
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as http:
        run = await stream_session(http, ws_url, pcm.astype("<i2").tobytes(), 1.0, end_wait_s)
    messages = [m for _, m in run.messages]
    return {
        "error": run.error,
        "completed": run.completed,
        "received": messages,
        "start": {"type": "start", "language": "en"},  # what bench.stream sends first
        "finals": finals_in_order(messages),
        "wall": time.monotonic() - t0,
    }


# --- (d) the floor: how much the pipeline's own transcript moves when the audio barely changes -------


def offline_finals(pcm: np.ndarray) -> list[str]:
    """The finals' texts the service makes of `pcm`, computed in this process with its own code
    (bench.finals: VAD + segmenter fed 100 ms frames, LocalBackend, guards; default settings).
    The live pipeline is deterministic for one session at a time (with TEMPERATURE_FALLBACK off, the
    default), so this equals what bench.stream gets back (the report checks it against (b))."""
    from bench.finals import Run, cut, decode_run
    from shared.settings import TranscriberSettings

    s = TranscriberSettings()
    r = Run(s.final_window_tail_s)
    lecture = Lecture("x", pcm, len(pcm) / SAMPLE_RATE, [], [], False)
    decode_run(r, {"x": cut(lecture)}, s.whisper_cpu_threads)
    return [h.text.strip() for h in r.hyps["x"] if h.text.strip()]


FLOOR_LABELS = {
    "page_start": "clip from the page's start",
    "one_sample_later": "clip 1 sample later",
    "lsb_noise": "clip +-1 LSB",
}


def floor_variants(clip: np.ndarray, lag: int | None) -> dict[str, np.ndarray]:
    """The clip, the clip as the page captured it (starting `lag` samples in, see audio_check; when
    that is not 0), one sample later, and with +-1 LSB of noise: variants a microphone path cannot
    tell apart."""
    variants = {"clip": clip}
    if lag:
        variants["page_start"] = clip[-lag:] if lag < 0 else np.concatenate([np.zeros(lag, np.int16), clip])
    variants["one_sample_later"] = np.concatenate([np.zeros(1, np.int16), clip])
    noise = np.random.default_rng(1).integers(-1, 2, len(clip))
    variants["lsb_noise"] = (clip.astype(np.int32) + noise).clip(-32768, 32767).astype(np.int16)
    return variants


def report_floor(page: dict[str, Any], stream: dict[str, Any], floor: dict[str, list[str]]) -> None:
    a, b = texts(page["finals"]), texts(stream["finals"])
    print(
        "(d) floor, offline with the service's own code: its transcript of audio that a microphone path"
        " cannot tell apart"
    )
    print(f"  offline clip == (b) stream: {floor['clip'] == b}  ({compare_texts(b, floor['clip'])})")
    print(f"  {'(a) page':<28} vs (b) stream: {compare_texts(b, a)}")
    if "page_start" in floor:
        print(f"  {'(a) page':<28} vs {FLOOR_LABELS['page_start']}: {compare_texts(floor['page_start'], a)}")
    for key in ("one_sample_later", "lsb_noise"):
        print(f"  {FLOOR_LABELS[key]:<28} vs clip: {compare_texts(floor['clip'], floor[key])}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url_base", help="e.g. http://127.0.0.1:8080")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=Path("/tmp/page_vs_stream"))
    p.add_argument(
        "--sequential", action="store_true", help="page first, then stream (default: concurrently)"
    )
    p.add_argument(
        "--stream-url",
        default=None,
        help="URL base of a second stack for (b) and (c) (default: URL_BASE). Finals that wait"
        " together in one transcriber are decoded as a batch padded to the longest, so on"
        " one stack run concurrently the page's and the stream's finals shape each other",
    )
    p.add_argument(
        "--replay",
        action="store_true",
        help="(c): after (a), stream the very audio the page sent (DIR/page_sent.pcm) through"
        " bench.stream and compare (a) with it: what the server makes of the page's audio,"
        " with the page's protocol handling as the only difference",
    )
    p.add_argument(
        "--floor",
        action="store_true",
        help="(d): decode, offline with the service's code, the clip, the clip from where the page"
        " started capturing, one sample later and with +-1 LSB of noise, and print how far"
        " apart their transcripts are: the least any microphone path could differ by",
    )
    p.add_argument("--show", type=int, default=5, help="differing places to print")
    p.add_argument(
        "--rescore", action="store_true", help="only report again from DIR/*.json of an earlier run"
    )
    p.add_argument(
        "--mic-rate",
        type=int,
        default=FAKE_DEVICE_RATE,
        help="sample rate of the fake-mic WAV (default: the fake device's own, so Chromium"
        " does not resample it; 16000 = the clip's rate, resampled by Chromium)",
    )
    p.add_argument(
        "--voice-processing",
        action="store_true",
        help="leave the page's echo cancellation and noise suppression as the form has them"
        " (default: both off, so the page sends the microphone's audio unprocessed)",
    )
    return p.parse_args(argv)


def ws_url_of(base: str) -> str:
    base = base.rstrip("/")
    return ("wss://" if base.startswith("https://") else "ws://") + base.split("://", 1)[1] + "/ws/transcribe"


async def run_both(args: argparse.Namespace, pcm: np.ndarray, mic: Path, clip_s: float) -> tuple[dict, dict]:
    base = args.url_base.rstrip("/")
    ws_url = ws_url_of(args.stream_url or base)
    vp = args.voice_processing
    if args.sequential:
        page = await run_page(base, mic, clip_s, vp)
        return page, await run_stream(ws_url, pcm, 300.0)
    page, stream = await asyncio.gather(run_page(base, mic, clip_s, vp), run_stream(ws_url, pcm, 300.0))
    return page, stream


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.url_base = args.url_base.rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)
    pcm, spans = build_lecture(args.minutes)
    clip_s = len(pcm) / SAMPLE_RATE
    write_wav(pcm, args.out / "lecture.wav")
    (args.out / "lecture.json").write_text(
        json.dumps({"duration": clip_s, "segments": [vars(s) for s in spans], "alerts": []}, indent=1)
    )
    mic = write_fake_mic(
        pcm.astype("<i2").tobytes(),
        args.out / "mic.wav",
        seconds=clip_s,
        silence_s=TAIL_SILENCE_S,
        wav_rate=args.mic_rate,
    )
    truth = " ".join(s.text for s in sorted(spans, key=lambda s: s.start) if s.kind == "speech")
    sent_path = args.out / "page_sent.pcm"
    if args.rescore:
        page, stream = (json.loads((args.out / f"{n}.json").read_text()) for n in ("page", "stream"))
        sent = sent_path.read_bytes() if sent_path.exists() else None
    else:
        page, stream = asyncio.run(run_both(args, pcm, mic, clip_s))
        sent = page.pop("sent_audio")
        page["mic_rate"] = args.mic_rate
        sent_path.write_bytes(sent)
        for name, res in (("page", page), ("stream", stream)):
            (args.out / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
    replay = None
    replay_path = args.out / "replay.json"
    if args.replay and sent is not None and not args.rescore:
        sent_pcm = np.frombuffer(sent[: len(sent) // 2 * 2], "<i2")
        replay = asyncio.run(run_stream(ws_url_of(args.stream_url or args.url_base), sent_pcm, 300.0))
        replay_path.write_text(json.dumps(replay, indent=1, default=str))
    elif args.rescore and replay_path.exists():
        replay = json.loads(replay_path.read_text())
    audio = None
    if sent is not None:
        audio = audio_check(pcm, np.frombuffer(sent[: len(sent) // 2 * 2], "<i2"))
        (args.out / "page_audio.json").write_text(json.dumps(audio, indent=1))
    print(f"fake-mic WAV: {page.get('mic_rate', 16000)} Hz")
    report(page, stream, truth, clip_s, args.show, audio)
    if replay is not None:
        report_replay(page, replay, args.show)
    if args.floor:
        floor_path = args.out / "floor.json"
        if args.rescore and floor_path.exists():
            floor = json.loads(floor_path.read_text())
        else:
            lag = int(round(audio["start_s"] * SAMPLE_RATE)) if audio and "start_s" in audio else None
            floor = {k: offline_finals(v) for k, v in floor_variants(pcm, lag).items()}
            floor_path.write_text(json.dumps(floor, indent=1))
        report_floor(page, stream, floor)
    ok = not page["error"] and not stream["error"] and stream["completed"]
    ok = ok and (replay is None or (not replay["error"] and replay["completed"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
