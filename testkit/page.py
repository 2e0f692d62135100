"""The page in Chromium with a WAV as its microphone, as a user would run it (start, wait, stop), and
how faithfully the audio it sent matches the clip (alignment, level, SNR per band).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from testkit.browser import open_page
from testkit.truth import SAMPLE_RATE


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
    from playwright.async_api import expect

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
    try:
        async with open_page(url_base, mic, before_load=lambda p: p.on("websocket", on_socket)) as opened:
            page, errors = opened.page, opened.errors
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
    out.update(received=received, sent_text=sent_text, sockets=sockets, wall=time.monotonic() - t0)
    out["sent_audio"] = b"".join(sent_audio)  # written to DIR/page_sent.pcm, not to page.json
    out["finals"] = finals_in_order(received)
    return out


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
