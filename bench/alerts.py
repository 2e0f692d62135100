"""Benchmark of the announcement detector on the labelled corpus tests/data/alerts_corpus.jsonl.

Each corpus line is a fresh session (its own `now`, in UTC, and its optional `keywords`); the
sentence is fed as segment 0 and the session flushed.  An alert of the labelled category is a hit;
an alert of another category is both a miss and a false alarm; an alert on a null line is a false
alarm.  Date accuracy is over every labelled date (a missed announcement counts as wrong); time
accuracy likewise over every labelled time.

The corpus was written before the rules.  Its last 41 lines (`"split": "heldout"`) were written
after them, as a check on over-fitting; their first, untuned run scored precision 0.952, recall
1.000, date accuracy 0.947 (a deadline dated by the first date in the sentence instead of the one
after "due"; "quiz scores" taken for a quiz), both since fixed by general rules.

The categories `important`, `attendance` and `name` came later: 93 lines (`"split": "more"`, 45 of
them traps that mention the words as lecture content) written with their rules, then 34 more
(`"more_heldout"`, 17 traps) written after them. The first, untuned run on those 34 scored precision
0.895, recall 1.000 ("Remember this tune from the opera's first act?" taken for emphasis; "Roll call
in the Roman legion was held at dawn" for attendance), both since fixed by general rules (what may
follow "remember this"; past narration with nobody addressed is not about this class). A second
held-out set of 22 (`"more_heldout2"`, 11 traps), written after those fixes, scored precision 1.000,
recall 1.000 on its first run. A line's `names` are the student's names sent in `start`.

Usage: python bench/alerts.py [--corpus PATH] [--errors]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.alerts.detector import Detector  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "alerts_corpus.jsonl"


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    """The corpus lines."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def detect(row: dict[str, Any]) -> tuple[list[Any], float]:
    """The alerts for one corpus line and the milliseconds its feed took."""
    now = datetime.fromisoformat(row["now"]).replace(tzinfo=ZoneInfo("UTC"))
    det = Detector(row.get("keywords", []), now=now, tz="UTC", names=row.get("names", []))
    t0 = time.perf_counter()
    alerts = det.feed(0, 0.0, row["text"]) + det.flush()
    return alerts, (time.perf_counter() - t0) * 1000


def _score_row(row: dict[str, Any], alerts: list[Any], stats: Counter[str], errors: list[str]) -> None:
    want = row["category"]
    got = [a.category for a in alerts]
    hit = want is not None and want in got
    stats["tp"] += hit
    stats["fn"] += want is not None and not hit
    stats["fp"] += len(got) - hit
    stats[f"{want}:expected"] += want is not None
    stats[f"{want}:hit"] += hit
    for category in got:
        if category != want:
            stats[f"{category}:false_alarm"] += 1
    match = next((a for a in alerts if a.category == want), None)
    if row.get("date"):
        stats["dated"] += 1
        stats["date_ok"] += bool(match and match.date == row["date"])
    if row.get("time"):
        stats["timed"] += 1
        stats["time_ok"] += bool(match and match.time == row["time"])
    wrong_date = bool(row.get("date")) and not (match and match.date == row["date"])
    if (want is not None and not hit) or len(got) > hit or wrong_date:
        found = [(a.category, a.date, a.time) for a in alerts]
        errors.append(f"want {want} {row.get('date')} {row.get('time')}  got {found}  | {row['text']}")


def run(path: Path = CORPUS, split: str | None = None) -> dict[str, Any]:
    """Scores of the detector over the corpus (or over the lines of one split)."""
    stats: Counter[str] = Counter()
    errors: list[str] = []
    times: list[float] = []
    for row in load(path):
        if split is not None and row.get("split", "dev") != split:
            continue
        alerts, ms = detect(row)
        times.append(ms)
        _score_row(row, alerts, stats, errors)
    tp, fp, fn = stats["tp"], stats["fp"], stats["fn"]
    return {
        "lines": len(times),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "date_accuracy": stats["date_ok"] / stats["dated"] if stats["dated"] else 1.0,
        "time_accuracy": stats["time_ok"] / stats["timed"] if stats["timed"] else 1.0,
        "mean_ms": statistics.fmean(times) if times else 0.0,
        "max_ms": max(times, default=0.0),
        "stats": stats,
        "errors": errors,
    }


def report(result: dict[str, Any]) -> str:
    """The figures as text."""
    s = result["stats"]
    lines = [
        f"corpus lines        {result['lines']}",
        f"precision           {result['precision']:.3f}   (tp {s['tp']}, false alarms {s['fp']})",
        f"recall              {result['recall']:.3f}   (misses {s['fn']})",
        f"date accuracy       {result['date_accuracy']:.3f}   ({s['date_ok']}/{s['dated']} dated announcements)",
        f"time accuracy       {result['time_accuracy']:.3f}   ({s['time_ok']}/{s['timed']} timed announcements)",
        f"mean ms per feed    {result['mean_ms']:.2f}   (max {result['max_ms']:.1f})",
        "",
        f"{'category':<12}{'expected':>9}{'hits':>6}{'missed':>8}{'false alarms':>14}{'precision':>11}{'recall':>8}",
    ]
    for cat in _CATS:
        exp, hit, fa = s[f"{cat}:expected"], s[f"{cat}:hit"], s[f"{cat}:false_alarm"]
        prec = f"{hit / (hit + fa):.3f}" if hit + fa else "-"
        rec = f"{hit / exp:.3f}" if exp else "-"
        lines.append(f"{cat:<12}{exp:>9}{hit:>6}{exp - hit:>8}{fa:>14}{prec:>11}{rec:>8}")
    lines.append(f"{'(none)':<12}{result['lines'] - sum(s[f'{c}:expected'] for c in _CATS):>9}")
    return "\n".join(lines)


_CATS = ("exam", "quiz", "deadline", "assignment", "schedule", "custom", "important", "attendance", "name")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--errors", action="store_true", help="list every wrong line")
    args = parser.parse_args()
    result = run(args.corpus)
    print(report(result))
    for split in ("dev", "heldout", "more", "more_heldout", "more_heldout2"):
        part = run(args.corpus, split)
        print(
            f"{split:<13} {part['lines']:>3} lines: precision {part['precision']:.3f}  recall {part['recall']:.3f}"
            f"  date accuracy {part['date_accuracy']:.3f}"
        )
    if args.errors:
        print("\n".join(["", "errors:", *result["errors"]]))


if __name__ == "__main__":
    main()
