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
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.alerts_corpus import CORPUS, run  # noqa: E402


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
