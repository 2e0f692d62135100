"""The announcement detector scored on the labelled corpus tests/data/alerts_corpus.jsonl: the
scoring that bench/alerts.py reports and the detector's tests hold to their targets (see bench/alerts.py
for how a line is scored and the corpus's splits).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.alerts.detector import Detector

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
