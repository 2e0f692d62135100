"""Voice lock on dev recordings (bench/voice_data.py): does the embedder tell the lecturer from others?

    python -m bench.voice DIR/voice_espeak DIR/voice_rms ... [--sweep] [--whisper]
        [--threshold 0.72 --window-threshold 0.6 --min-run 2]

Each recording is cut into utterances by the real VAD (Silero, the VAD worker's segmenter, 100 ms
frames), the lecturer is enrolled from NAME.enrol.wav (services/voice/enrol.py) and every utterance
goes through the lock (services/voice/lock.py) exactly as the VAD worker runs it. Printed:

* score distributions: cosine of each 1-s window (0.8 s of audio) lying inside one truth stretch
  against the voice, lecturer's windows vs other speakers'; the same for whole utterances of one
  speaker (pooled embedding); the equal error rate (EER) of each.
* words whose audio reaches Whisper (the lock's own effect; word i of a stretch of n words is placed
  at start + (i + 0.5) / n of its span): lecturer's words kept, other speakers' words passed, with
  the lock in drop mode, and without the lock (what the VAD alone sends); announcements kept (90 %
  of the sentence's audio sent).
* CPU: the embedder's process time per second of audio (an utterance's windows in one batch, as
  at a final; with --live also one window at a time, as the VAD embeds the open utterance for its
  partials in drop mode) and, with --whisper, tiny.en's (the service's beam, prompt, window tail) on
  the same utterances, one at a time.
--sweep prints those word figures for a grid of thresholds, pooled over the target recordings
(bench.voice_data.HARD excluded). The machine may be shared: compare ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import read_wav
from bench.voice_data import HARD
from services.vad.segmenter import Utterance
from services.voice.embedder import Embedder
from services.voice.enrol import enrol
from services.voice.lock import LECTURER, LockConfig, Piece, pieces, pooled_score, window_starts

SR = 16_000


@dataclass
class Rec:
    name: str
    pcm: np.ndarray
    truth: dict
    voice: np.ndarray
    utts: list[Utterance]
    emb: list[np.ndarray] = field(default_factory=list)  # per utterance, its windows
    embed_cpu: float = 0.0

    @property
    def stretches(self) -> list[dict]:
        return [s for s in self.truth["segments"] if s["kind"] == "speech"]


def load(prefix: str, embedder: Embedder) -> Rec:
    from bench.common import Lecture
    from bench.finals import cut

    base = Path(prefix)
    pcm = read_wav(base.with_suffix(".wav"))
    truth = json.loads(base.with_suffix(".json").read_text())
    enrol_pcm = read_wav(Path(f"{prefix}.enrol.wav")).astype(np.float32) / 32768.0
    voice = enrol(enrol_pcm, embedder).embedding
    lec = Lecture(base.name, pcm, len(pcm) / SR, [], [], True)
    rec = Rec(base.name, pcm, truth, voice, cut(lec))
    t0 = time.process_time()
    rec.emb = [embedder.at(u.audio, window_starts(len(u.audio))) for u in rec.utts]
    rec.embed_cpu = time.process_time() - t0
    return rec


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def speaker_at(rec: Rec, t0: float, t1: float, frac: float) -> str | None:
    """The truth speaker covering at least `frac` of [t0, t1], else None."""
    for s in rec.stretches:
        if overlap(t0, t1, s["start"], s["end"]) >= frac * (t1 - t0):
            return s["speaker"]
    return None


def score_sets(rec: Rec) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    win: dict[str, list[float]] = {"lecturer": [], "other": []}
    utt: dict[str, list[float]] = {"lecturer": [], "other": []}
    for u, emb in zip(rec.utts, rec.emb, strict=True):
        t = u.start / SR
        for s, e in zip(window_starts(len(u.audio)), emb, strict=True):
            who = speaker_at(rec, t + s / SR, t + (s + 13_152) / SR, 0.9)
            if who:
                win[who].append(float(e @ rec.voice))
        who = speaker_at(rec, t, u.end / SR, 0.75)
        if who and len(emb):
            utt[who].append(pooled_score(emb, rec.voice))
    return win, utt


def eer(same: list[float], other: list[float]) -> tuple[float, float]:
    """(equal error rate, threshold at it)."""
    best = (2.0, 0.0, 0.0)
    for t in np.linspace(-0.2, 1.0, 1201):
        fr = float(np.mean(np.array(same) < t))
        fa = float(np.mean(np.array(other) >= t))
        if abs(fr - fa) < best[0]:
            best = (abs(fr - fa), (fr + fa) / 2, float(t))
    return best[1], best[2]


def sent_intervals(rec: Rec, cfg: LockConfig | None) -> list[tuple[float, float]]:
    out = []
    for u, emb in zip(rec.utts, rec.emb, strict=True):
        ps = (
            [Piece(0, len(u.audio), LECTURER, 1.0)]
            if cfg is None
            else pieces(len(u.audio), emb, rec.voice, cfg, u.audio)
        )
        out += [((u.start + p.start) / SR, (u.start + p.end) / SR) for p in ps if p.speaker == LECTURER]
    return out


def words(rec: Rec, sent: list[tuple[float, float]]) -> dict[str, list[int]]:
    """speaker -> [words sent, words]; 'announce' -> [kept, announcements]."""
    out = {"lecturer": [0, 0], "other": [0, 0], "announce": [0, 0]}
    starts = {round(a["start"], 3) for a in rec.truth["alerts"]}
    for s in rec.stretches:
        n = len(s["text"].split())
        dur = s["end"] - s["start"]
        at = [s["start"] + (i + 0.5) / n * dur for i in range(n)]
        k = sum(any(a <= x < b for a, b in sent) for x in at)
        out[s["speaker"]][0] += k
        out[s["speaker"]][1] += n
        if round(s["start"], 3) in starts:
            cov = sum(overlap(a, b, s["start"], s["end"]) for a, b in sent) / dur
            out["announce"][0] += cov >= 0.9
            out["announce"][1] += 1
    return out


def pct(a: list[int]) -> str:
    return f"{a[0]}/{a[1]} = {100 * a[0] / max(1, a[1]):.1f}%"


def whisper_cpu(recs: list[Rec]) -> tuple[float, float]:
    """tiny.en's CPU seconds and the audio seconds of all utterances, decoded as finals."""
    from services.transcriber.backends import LocalBackend, Request
    from services.transcriber.worker import build_prompt
    from shared.settings import TranscriberSettings

    s = TranscriberSettings()
    backend = LocalBackend(s)
    backend.model.transcribe(np.zeros(SR, np.float32), language="en")
    prompt = build_prompt(s.lecture_prompt, "", [])
    t0 = time.process_time()
    for rec in recs:
        for u in rec.utts:
            asyncio.run(
                backend.transcribe(Request(u.audio.astype(np.float32) / 32768.0, "en", prompt, s.hotwords))
            )
    return time.process_time() - t0, sum(len(u.audio) for r in recs for u in r.utts) / SR


def report(recs: list[Rec], cfg: LockConfig) -> None:
    pooled_w: dict[str, list[float]] = {"lecturer": [], "other": []}
    pooled_u: dict[str, list[float]] = {"lecturer": [], "other": []}
    print(f"lock: threshold {cfg.threshold}, window threshold {cfg.window_threshold}, min run {cfg.min_run}")
    print(
        "recording | windows lecturer p5/p50 | others p50/p95/max | EER win | utt lecturer min | others max | EER utt"
    )
    for rec in recs:
        w, u = score_sets(rec)
        if rec.name not in HARD:
            for k in w:
                pooled_w[k] += w[k]
                pooled_u[k] += u[k]
        print(
            f"{rec.name}{' (hard)' if rec.name in HARD else ''} | {np.percentile(w['lecturer'], 5):.3f} / "
            f"{np.median(w['lecturer']):.3f} | {np.median(w['other']):.3f} / {np.percentile(w['other'], 95):.3f}"
            f" / {max(w['other']):.3f} | {100 * eer(w['lecturer'], w['other'])[0]:.1f}% | "
            f"{min(u['lecturer']):.3f} | {max(u['other'], default=float('nan')):.3f} | "
            f"{100 * eer(u['lecturer'], u['other'])[0]:.1f}%"
        )
    e_w, t_w = eer(pooled_w["lecturer"], pooled_w["other"])
    e_u, t_u = eer(pooled_u["lecturer"], pooled_u["other"])
    print(
        f"pooled (targets): windows {len(pooled_w['lecturer'])} lecturer / {len(pooled_w['other'])} others, "
        f"EER {100 * e_w:.1f}% at {t_w:.3f}; utterances {len(pooled_u['lecturer'])} / {len(pooled_u['other'])}, "
        f"EER {100 * e_u:.1f}% at {t_u:.3f}"
    )
    print(
        "recording | lecturer words kept | others' words passed | announcements kept | without lock: lecturer / others"
    )
    tot = {"lecturer": [0, 0], "other": [0, 0], "announce": [0, 0]}
    for rec in recs:
        got = words(rec, sent_intervals(rec, cfg))
        base = words(rec, sent_intervals(rec, None))
        if rec.name not in HARD:
            for k in tot:
                tot[k] = [tot[k][0] + got[k][0], tot[k][1] + got[k][1]]
        print(
            f"{rec.name} | {pct(got['lecturer'])} | {pct(got['other'])} | {pct(got['announce'])} | "
            f"{pct(base['lecturer'])} / {pct(base['other'])}"
        )
    print(f"pooled (targets) | {pct(tot['lecturer'])} | {pct(tot['other'])} | {pct(tot['announce'])}")


def sweep(recs: list[Rec]) -> None:
    print("threshold | window threshold | min run | lecturer kept | others passed | announcements")
    targets = [r for r in recs if r.name not in HARD]
    for th in (0.6, 0.65, 0.7, 0.72, 0.75, 0.8):
        for wt in (0.5, 0.55, 0.6, 0.65):
            for mr in (2, 3):
                cfg = LockConfig(th, wt, mr)
                tot = {"lecturer": [0, 0], "other": [0, 0], "announce": [0, 0]}
                for rec in targets:
                    got = words(rec, sent_intervals(rec, cfg))
                    for k in tot:
                        tot[k] = [tot[k][0] + got[k][0], tot[k][1] + got[k][1]]
                print(
                    f"{th} | {wt} | {mr} | {pct(tot['lecturer'])} | {pct(tot['other'])} | {pct(tot['announce'])}"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recordings", nargs="+")
    ap.add_argument("--threshold", type=float, default=LockConfig.threshold)
    ap.add_argument("--window-threshold", type=float, default=LockConfig.window_threshold)
    ap.add_argument("--min-run", type=int, default=LockConfig.min_run)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--whisper", action="store_true")
    ap.add_argument("--live", action="store_true", help="also the embedder's cost one window at a time")
    a = ap.parse_args()
    embedder = Embedder()
    recs = [load(p, embedder) for p in a.recordings]
    report(recs, LockConfig(a.threshold, a.window_threshold, a.min_run))
    if a.sweep:
        sweep(recs)
    audio_s = sum(len(r.pcm) for r in recs) / SR
    speech_s = sum(len(u.audio) for r in recs for u in r.utts) / SR
    cpu = sum(r.embed_cpu for r in recs)
    print(
        f"embedder: {cpu:.2f} CPU s for {audio_s:.0f} s of audio ({speech_s:.0f} s in utterances): "
        f"{cpu / audio_s:.4f} CPU s per audio s, {cpu / speech_s:.4f} per utterance s"
    )
    if a.live:
        t0 = time.process_time()
        for r in recs:  # as the VAD does in drop mode with partials: each window once, as it completes
            for u in r.utts:
                for s in window_starts(len(u.audio)):
                    embedder.at(u.audio, [s])
        live = time.process_time() - t0
        print(
            f"embedder one window at a time (live, drop mode with partials): {live / audio_s:.4f} CPU s per "
            f"audio s, {live / speech_s:.4f} per utterance s ({live / max(cpu, 1e-9):.1f}x the batched cost)"
        )
    if a.whisper:
        w_cpu, w_s = whisper_cpu(recs)
        print(
            f"tiny.en finals on the same utterances: {w_cpu:.2f} CPU s, {w_cpu / audio_s:.4f} per audio s; "
            f"embedder / transcriber = {100 * cpu / w_cpu:.1f}%"
        )


if __name__ == "__main__":
    main()
