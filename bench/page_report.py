"""bench.page_vs_stream's report: the page's finals against bench.stream's (counts, WER, the first
differing stretches, drift of segment times) and against the merged truth."""

from __future__ import annotations

import json
from typing import Any

import jiwer

from bench.common import fmt, normalise, word_errors
from testkit.page import print_audio_check


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
