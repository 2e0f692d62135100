"""The same lecture through the page (headless Chromium, fake microphone) and through bench.stream.

    python -m bench.page_vs_stream URL_BASE [--stream-url URL] [--replay] [--floor] [--minutes 10] [--out DIR]
                                   [--sequential] [--voice-processing]

Builds a lecture of about --minutes from tests/data/{lecture1,lecture2,real_joined,noise90}.wav,
repeated as needed (the last piece is cut in the silence after its last whole stretch, so the
merged ground truth of the JSONs, shifted by each piece's offset, stays exact), and streams it
  (a) through the page: the system Chromium plays the WAV as its microphone (see
      tests/browser_util.py; the WAV is written at the fake device's rate, 44.1 kHz, so that Chromium
      plays it without resampling it, see --mic-rate), the script opens URL_BASE, unchecks the page's "echo cancellation"
      and "noise suppression" (so that the browser sends the microphone's audio unprocessed, as
      bench.stream does; --voice-processing leaves them as the form has them), clicks #start, waits until
      window.classrec.recording.sentSeconds covers the clip, clicks #stop and waits for
      body[data-phase=ended]; the finals are taken from the WebSocket frames the page received
      (one per segment, in segment order);
  (b) through bench.stream.stream_session at 1x, over ws(s)://HOST/ws/transcribe;
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
import jiwer
import numpy as np

from bench.common import SAMPLE_RATE, Lecture, Span, fmt, load_lecture, normalise, word_errors
from bench.stream import stream_session
from tests.browser_util import FAKE_DEVICE_RATE, write_fake_mic

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


def finals_in_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One final per segment (the first; a resumed session replays identical ones), by segment."""
    by_seg: dict[int, dict[str, Any]] = {}
    for m in messages:
        if m.get("type") == "transcript" and m.get("final"):
            by_seg.setdefault(int(m["segment"]), m)
    return [by_seg[k] for k in sorted(by_seg)]


# --- (a) the page -------------------------------------------------------------------------------


CAPTURE_INFO = """() => {
  const c = window.classrec.recording.capture;
  const track = c.stream && c.stream.getAudioTracks()[0];
  return {path: c.path, settings: track ? track.getSettings() : null,
          context_rate: c.ctx ? c.ctx.sampleRate : null, constraints: c.constraints};
}"""
CLOCKS = """() => {
  const c = window.classrec.recording.capture;
  return {context_s: c.ctx ? c.ctx.currentTime : null, wall_s: performance.now() / 1000,
          sent_s: window.classrec.recording.sentSeconds, input_rate: c.inputRate, stats: {...c.stats}};
}"""


async def run_page(url_base: str, mic: Path, clip_s: float, voice_processing: bool = False) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    from tests.browser_util import chromium_args, find_chromium

    received: list[dict[str, Any]] = []
    sent_text: list[dict[str, Any]] = []
    sent_audio: list[bytes] = []
    sockets = 0
    out: dict[str, Any] = {"error": None}

    def on_socket(ws: Any) -> None:
        nonlocal sockets
        sockets += 1

        def rx(payload: str | bytes) -> None:
            if isinstance(payload, str):
                received.append(json.loads(payload))

        def tx(payload: str | bytes) -> None:
            if isinstance(payload, str):
                sent_text.append(json.loads(payload))
            else:
                sent_audio.append(payload)

        ws.on("framereceived", rx)
        ws.on("framesent", tx)

    t0 = time.monotonic()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=find_chromium(), headless=True, args=chromium_args(mic)
        )
        try:
            context = await browser.new_context(locale="en-US")
            await context.grant_permissions(["microphone"], origin=url_base)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("websocket", on_socket)
            await page.goto(f"{url_base}/")
            body = page.locator("body")
            await expect(body).to_have_attribute("data-phase", "idle")
            if not voice_processing:  # the microphone's audio as it is, like bench.stream's
                await page.set_checked("#echo-cancellation", False)
                await page.set_checked("#noise-suppression", False)
            await page.click("#start")
            await expect(body).to_have_attribute("data-phase", "live", timeout=15_000)
            out["capture"] = await page.evaluate(CAPTURE_INFO)
            out["clocks"] = [await page.evaluate(CLOCKS)]
            await page.wait_for_function(
                "s => window.classrec.recording && window.classrec.recording.sentSeconds >= s",
                arg=clip_s,
                timeout=(clip_s + 120) * 1000,
                polling=500,
            )
            out["sent_seconds"] = await page.evaluate("() => window.classrec.recording.sentSeconds")
            out["clocks"].append(await page.evaluate(CLOCKS))
            await page.click("#stop")
            await expect(body).to_have_attribute("data-phase", "ended", timeout=300_000)
            out["dom_finals"] = await page.eval_on_selector_all(
                "#transcript .seg.final",
                "els => els.map(e => ({segment: Number(e.dataset.segment),"
                " text: e.querySelector('.text').textContent}))",
            )
            out["page_errors"] = errors
        except Exception as exc:  # report what was collected so far
            out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            await browser.close()
    out.update(received=received, sent_text=sent_text, sockets=sockets, wall=time.monotonic() - t0)
    out["sent_audio"] = b"".join(sent_audio)  # written to DIR/page_sent.pcm, not to page.json
    out["finals"] = finals_in_order(received)
    return out


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


# --- the audio the page sent, against the clip ----------------------------------------------------


def _xcorr(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """c[k] = sum_i a[k + i] * v[i] for k in 0 .. len(a) - len(v) (FFT)."""
    n = 1 << (len(a) + len(v) - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(v, n)), n)
    return c[: len(a) - len(v) + 1]


def _band_energy(x: np.ndarray, bands: list[tuple[float, float]]) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freq = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return np.array([spec[(freq >= lo) & (freq < hi)].sum() for lo, hi in bands])


SNR_BANDS = [(0.0, 4000.0), (4000.0, 6500.0), (6500.0, 8001.0)]


def audio_check(
    clip: np.ndarray, sent: np.ndarray, win_s: float = 1.0, search_s: float = 0.25
) -> dict[str, Any]:
    """Where each 1-s window of the clip lies in the audio the page sent, window by window.

    `lag` is (position in `sent`) - (position in the clip): the first window's lag is where the clip
    starts in the page's audio (negative: the page missed the clip's first -lag seconds); a lag that
    falls later means the page lost audio there, one that rises means it inserted some. Each window
    with speech-level energy is matched by normalised cross-correlation within +-search_s of the
    previous window's lag, widened by search_s for each window in a row that found no match (accepted
    when >= 0.6); its SNR is that of the sent audio against the clip scaled by the least-squares gain,
    in total and per band (SNR_BANDS), reported as the median over the windows whose lag equals both
    neighbours' (a sub-sample offset between the page's sampling grid and the clip's, which the
    capture start sets at random, lowers the 6.5-8 kHz figure without changing what Whisper hears)."""
    x = clip.astype(np.float64)
    y = sent.astype(np.float64)
    win, search = int(win_s * SAMPLE_RATE), int(search_s * SAMPLE_RATE)
    res: dict[str, Any] = {"clip_s": len(x) / SAMPLE_RATE, "sent_s": len(y) / SAMPLE_RATE}
    head = x[: 10 * SAMPLE_RATE]
    pre = 2 * SAMPLE_RATE  # the page may have missed up to 2 s of the start
    ypad = np.concatenate([np.zeros(pre), y[: 22 * SAMPLE_RATE]])
    if len(head) < win or len(ypad) < len(head) or not np.any(head):
        return res
    lag = int(np.argmax(_xcorr(ypad, head))) - pre
    windows: list[tuple[float, int, float, float, list[float]]] = []  # t, lag, ncc, gain, band SNRs
    unmatched = misses = 0
    for t in range(0, len(x) - win + 1, win):
        seg = x[t : t + win]
        if np.sqrt(np.mean(seg**2)) < 100:  # silence: nothing to match
            continue
        reach = min(search * (1 + misses), 3 * SAMPLE_RATE)
        lo = max(0, t + lag - reach)
        part = y[lo : t + lag + win + reach]
        if len(part) < win + 1:
            unmatched += 1
            continue
        c = _xcorr(part, seg)
        sq = np.concatenate([[0.0], np.cumsum(part**2)])
        norms = np.sqrt(np.maximum(sq[win:] - sq[:-win], 1e-9)) * np.linalg.norm(seg)
        k = int(np.argmax(c / norms))
        ncc = float(c[k] / norms[k])
        if ncc < 0.6:
            unmatched += 1
            misses += 1
            continue
        misses = 0
        lag = lo + k - t
        got = y[t + lag : t + lag + win]
        gain = float(np.dot(got, seg) / np.dot(seg, seg))
        sig = _band_energy(gain * seg, SNR_BANDS)
        err = _band_energy(got - gain * seg, SNR_BANDS)
        snr = [10 * np.log10(max(sig.sum(), 1e-9) / max(err.sum(), 1e-9))]
        snr += [10 * np.log10(max(s_, 1e-9) / max(e_, 1e-9)) for s_, e_ in zip(sig, err, strict=True)]
        windows.append((t / SAMPLE_RATE, lag, ncc, gain, snr))
    if not windows:
        return res
    lags = np.array([w[1] for w in windows])
    steps = [
        (windows[i][0], int(lags[i] - lags[i - 1])) for i in range(1, len(windows)) if lags[i] != lags[i - 1]
    ]
    # SNR where the lag holds on both sides (a window with a lost stretch inside says nothing about it)
    stable = [
        i for i in range(len(windows)) if lags[max(i - 1, 0)] == lags[i] == lags[min(i + 1, len(lags) - 1)]
    ]
    snrs = np.array([windows[i][4] for i in stable] or [w[4] for w in windows])
    gains = np.array([w[3] for w in windows])
    res.update(
        windows=len(windows),
        unmatched=unmatched,
        stable=len(stable),
        start_s=float(lags[0]) / SAMPLE_RATE,
        end_lag_s=float(lags[-1]) / SAMPLE_RATE,
        lost_s=float(lags[0] - lags[-1]) / SAMPLE_RATE,
        steps=steps,
        snr_db=[float(v) for v in np.median(snrs, axis=0)],
        gain=[float(v) for v in np.percentile(gains, [5, 50, 95])],
        lag_track=[(w[0], w[1]) for w in windows],
    )
    return res


def print_audio_check(ac: dict[str, Any]) -> None:
    print(f"page audio: sent {ac['sent_s']:.2f} s for a clip of {ac['clip_s']:.2f} s")
    if "windows" not in ac:
        print("page audio: the clip was not found in it")
        return
    bands = ", ".join(
        f"{lo / 1000:g}-{min(hi, 8000) / 1000:g} kHz {v:.1f}"
        for (lo, hi), v in zip(SNR_BANDS, ac["snr_db"][1:], strict=True)
    )
    print(
        f"page audio: clip starts at {ac['start_s']:+.3f} s in it; lost {ac['lost_s']:+.3f} s by the end"
        f" ({len(ac['steps'])} lag steps); {ac['windows']} speech windows matched, {ac['unmatched']} not"
    )
    print(
        f"page audio: median SNR vs the clip over {ac.get('stable', '?')} windows without a lag step"
        f" {ac['snr_db'][0]:.1f} dB ({bands}); gain p5/p50/p95 " + "/".join(f"{g:.3f}" for g in ac["gain"])
    )
    if ac["steps"]:
        big = sorted(ac["steps"], key=lambda s: -abs(s[1]))[:8]
        print(
            "page audio: largest lag steps (samples, + = inserted, - = lost) at clip time: "
            + ", ".join(f"{d:+d}@{t:.0f}s" for t, d in sorted(big))
        )


# --- report -------------------------------------------------------------------------------------


def joined(finals: list[dict[str, Any]]) -> str:
    return " ".join(f["text"].strip() for f in finals)


def _words(finals: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
    """The normalised words of the finals, and the index (in `finals`) of each word's segment."""
    words: list[str] = []
    owner: list[int] = []
    for i, f in enumerate(finals):
        ws = normalise(f["text"]).split()
        words += ws
        owner += [i] * len(ws)
    return words, owner


def differing(a: list[dict[str, Any]], b: list[dict[str, Any]], limit: int) -> list[str]:
    """The first `limit` places where the word alignment of a (page) against b (stream) differs,
    each with the segments of both sides that hold the differing words."""
    wa, oa = _words(a)
    wb, ob = _words(b)
    if not wa or not wb:
        return ["differing: one side has no words"]
    chunks = [c for c in jiwer.process_words(" ".join(wb), " ".join(wa)).alignments[0] if c.type != "equal"]
    lines = [
        f"differing places (word alignment, page vs stream): {len(chunks)}, first {min(limit, len(chunks))}"
    ]

    def segs(finals: list[dict[str, Any]], owner: list[int], lo: int, hi: int) -> list[str]:
        idx = sorted({owner[min(max(k, 0), len(owner) - 1)] for k in range(lo - 1, max(hi, lo) + 1)})
        return [
            f"#{finals[i]['segment']:>3} {finals[i]['start']:7.2f}-{finals[i]['end']:7.2f}"
            f" {finals[i]['text'].strip()!r}"
            for i in idx
        ]

    for c in chunks[:limit]:
        lines.append(
            f"  {c.type}: stream {' '.join(wb[c.ref_start_idx : c.ref_end_idx])!r}"
            f" -> page {' '.join(wa[c.hyp_start_idx : c.hyp_end_idx])!r}"
        )
        lines += [f"    page   {s}" for s in segs(a, oa, c.hyp_start_idx, c.hyp_end_idx)]
        lines += [f"    stream {s}" for s in segs(b, ob, c.ref_start_idx, c.ref_end_idx)]
    return lines


def drift(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(stream start, stream start - page start) of segments paired by the word alignment's equal runs:
    how far the page's audio clock falls behind the stream's (audio the page lost)."""
    wa, oa = _words(a)
    wb, ob = _words(b)
    if not wa or not wb:
        return []
    pairs: dict[int, int] = {}
    for c in jiwer.process_words(" ".join(wb), " ".join(wa)).alignments[0]:
        if c.type == "equal" and c.ref_end_idx - c.ref_start_idx >= 4:
            pairs.setdefault(ob[c.ref_start_idx], oa[c.hyp_start_idx])
    return [(b[j]["start"], b[j]["start"] - a[i]["start"]) for j, i in sorted(pairs.items())]


def report(
    page: dict[str, Any],
    stream: dict[str, Any],
    truth: str,
    clip_s: float,
    show: int,
    audio: dict[str, Any] | None = None,
) -> None:
    a, b = page["finals"], stream["finals"]
    print(f"lecture: {clip_s:.1f} s ({clip_s / 60:.2f} min), truth {len(truth.split())} words")
    print(
        f"(a) page:   {len(a)} finals, sockets {page['sockets']}, sent {fmt(page.get('sent_seconds'), '.1f')} s,"
        f" dom finals {len(page.get('dom_finals') or [])}, wall {page['wall']:.1f} s, error {page['error']}"
    )
    print(
        f"(b) stream: {len(b)} finals, completed {stream['completed']}, wall {stream['wall']:.1f} s,"
        f" error {stream['error']}"
    )
    if page.get("capture"):
        print(f"page capture: {json.dumps(page['capture'])}")
    if page.get("sent_text"):
        print(f"page start message: {json.dumps(page['sent_text'][0])}")
    if stream.get("start") is not None:
        print(f"stream start message: {json.dumps(stream['start'])}")
    clocks = page.get("clocks") or []
    if len(clocks) == 2:
        c0, c1 = clocks
        line = f"page clocks, live to stop: wall {c1['wall_s'] - c0['wall_s']:.2f} s"
        if c0["context_s"] is not None:
            line += f", AudioContext {c1['context_s'] - c0['context_s']:.2f} s"
        line += f", audio sent {c1['sent_s'] - c0['sent_s']:.2f} s"
        st = c1.get("stats") or {}
        if st.get("buffers") and c1.get("input_rate"):
            line += (
                f"; track read {st['inputFrames'] / c1['input_rate']:.2f} s in {st['buffers']} buffers,"
                f" {st['gaps']} timestamp gaps ({st['gapSeconds']:.3f} s)"
            )
        print(line)
    if audio is not None:
        print_audio_check(audio)
    if page.get("dom_finals") is not None:
        dom = " ".join(d["text"].strip() for d in page["dom_finals"])
        print(f"page DOM finals == page WS finals (normalised): {normalise(dom) == normalise(joined(a))}")
    ab = word_errors(joined(b), joined(a))
    print(
        f"WER (a) vs (b): {fmt(ab.wer)}  (S {ab.substitutions} D {ab.deletions} I {ab.insertions},"
        f" ref {ab.ref_words} words, hyp {ab.hyp_words})"
    )
    for name, finals in (("(a) page", a), ("(b) stream", b)):
        w = word_errors(truth, joined(finals))
        print(
            f"WER {name:<10} vs truth: {fmt(w.wer)}  (S {w.substitutions} D {w.deletions} I {w.insertions},"
            f" hyp {w.hyp_words} words)"
        )
    same = sum(1 for x, y in zip(a, b, strict=False) if normalise(x["text"]) == normalise(y["text"]))
    print(f"segments with identical normalised text at the same index: {same}/{max(len(a), len(b))}")
    dr = drift(a, b)
    if dr:
        step = max(1, len(dr) // 8)
        print(
            "page audio behind stream (s), at stream time: "
            + ", ".join(f"{lag:+.2f}@{t:.0f}" for t, lag in dr[::step] + dr[-1:])
        )
    for line in differing(a, b, show):
        print(line)


def report_replay(page: dict[str, Any], replay: dict[str, Any], show: int) -> None:
    """(a) against (c): the page's finals against bench.stream's of the audio the page sent."""
    a, c = page["finals"], replay["finals"]
    print(
        f"(c) replay of the page's audio: {len(c)} finals, completed {replay['completed']},"
        f" wall {replay['wall']:.1f} s, error {replay['error']}"
    )
    identical = [f["text"] for f in a] == [f["text"] for f in c]
    print(f"(a) page vs (c) replay: {compare_texts(texts(c), texts(a))}; texts identical: {identical}")
    for line in [] if identical else differing(a, c, show)[1:]:
        print(line.replace("stream", "replay"))


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


def texts(finals: list[dict[str, Any]]) -> list[str]:
    return [f["text"].strip() for f in finals if f["text"].strip()]


def compare_texts(ref: list[str], hyp: list[str]) -> str:
    """WER of hyp against ref and how many finals are the same (longest common subsequence)."""
    w = word_errors(" ".join(ref), " ".join(hyp))
    x, y = [normalise(t) for t in ref], [normalise(t) for t in hyp]
    row = [0] * (len(y) + 1)
    for xi in x:
        prev, row = row, [0]
        for j, yj in enumerate(y):
            row.append(prev[j] + 1 if xi == yj else max(prev[j + 1], row[j]))
    same = row[-1]
    return (
        f"WER {fmt(w.wer)} (S {w.substitutions} D {w.deletions} I {w.insertions}),"
        f" same finals {same}/{max(len(ref), len(hyp))}"
    )


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
