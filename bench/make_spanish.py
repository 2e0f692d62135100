"""Build the Spanish dev lecture (issue 14): espeak-ng Spanish voices, pauses, a noise-only stretch,
and two announcements that must raise alerts with their dates once translated to English (spoken
by the voice whose Spanish Whisper base hears best: espeak-ng's other Spanish voices come out of
base's translation as nonsense).

    python -m bench.make_spanish [--out tests/data/lecture_es] [--seed 1]

Written as PREFIX.wav + PREFIX.json in the format of make_dev_lecture.py, plus `"language": "es"`,
the English `translation` of every speech stretch (the reference of a translated transcript) and,
for each expected alert, the `month_day` ("03-14") its date must fall on (the year depends on the
session's day). Needs espeak-ng and sox (only to build it; the
result is committed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from bench.make_fixtures import hum, pink, scrapes

SR = 16_000
ANNOUNCE = [  # (sentence, category, English, month-day of the date, voice)
    (
        "Atención: el examen parcial es el catorce de marzo en esta aula.",
        "exam",
        "Attention: the midterm exam is on March fourteenth in this classroom.",
        "03-14",
        ("es", 150),
    ),
    (
        "Hay que entregar el proyecto final el veintiocho de abril.",
        "assignment",
        "The final project has to be handed in on April twenty-eighth.",
        "04-28",
        ("es", 135),  # at 150 words a minute base hears "veintiocho" as twenty or twenty-one
    ),
]
PLAIN = [  # (sentence, English)
    (
        "La fotosíntesis convierte la energía de la luz en energía química.",
        "Photosynthesis converts the energy of light into chemical energy.",
    ),
    (
        "Las mitocondrias son el lugar donde ocurre la respiración celular.",
        "The mitochondria are the place where cellular respiration occurs.",
    ),
    (
        "Las enzimas reducen la energía de activación de una reacción química.",
        "Enzymes reduce the activation energy of a chemical reaction.",
    ),
    (
        "La membrana celular controla lo que entra y lo que sale de la célula.",
        "The cell membrane controls what enters and what leaves the cell.",
    ),
    (
        "Vamos a dibujar el diagrama en la pizarra y a nombrar cada parte.",
        "We are going to draw the diagram on the board and name each part.",
    ),
    (
        "La selección natural actúa sobre la variación que ya existe en una población.",
        "Natural selection acts on the variation that already exists in a population.",
    ),
]
VOICES = [("es", 150), ("es-419", 145), ("es+m3", 140), ("es-419+f2", 150)]


def tts(text: str, voice: str, speed: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        raw, out = Path(d) / "a.wav", Path(d) / "b.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out)], check=True)
        with wave.open(str(out)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def plan() -> list[tuple[str, str, str, tuple | None]]:
    """(kind, Spanish, English, announcement): plain sentences with the two announcements and one
    noise stretch between them."""
    p, a = PLAIN, ANNOUNCE
    return [
        ("speech", *p[0], None),
        ("speech", *p[1], None),
        ("announce", a[0][0], a[0][2], a[0]),
        ("speech", *p[2], None),
        ("noise", "pink", "", None),
        ("speech", *p[3], None),
        ("speech", *p[4], None),
        ("announce", a[1][0], a[1][2], a[1]),
        ("speech", *p[5], None),
    ]


def build(out: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    audio, segs, alerts, t = [], [], [], 0.0
    for j, (kind, what, english, ann) in enumerate(plan()):
        gap = np.zeros(int(SR * rng.uniform(0.8, 2.5)), np.float32)
        audio.append(gap)
        t += len(gap) / SR
        if kind == "noise":
            n = int(SR * rng.uniform(4, 6))
            x = {"pink": pink, "hum": hum, "scrape": scrapes}[what](n, rng, 0.05).astype(np.float32)
        else:
            voice, speed = ann[4] if ann else VOICES[j % len(VOICES)]
            x = tts(what, voice, speed)
        start = t
        audio.append(x)
        t += len(x) / SR
        segs.append(
            {
                "kind": "noise" if kind == "noise" else "speech",
                "start": round(start, 3),
                "end": round(t, 3),
                "text": "" if kind == "noise" else what,
                "translation": english if kind != "noise" else "",
            }
        )
        if ann is not None:
            alerts.append(
                {
                    "category": ann[1],
                    "text": what,
                    "start": round(start, 3),
                    "translation": ann[2],
                    "month_day": ann[3],
                }
            )
    audio.append(np.zeros(SR * 2, np.float32))
    y = np.concatenate(audio)
    y = y + pink(len(y), rng, 0.003)
    with wave.open(str(out.with_suffix(".wav")), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    meta = {
        "duration": len(y) / SR,
        "language": "es",
        "note": "espeak-ng Spanish; alerts carry the English translation and the month-day of their date",
        "segments": segs,
        "alerts": alerts,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    print(f"{out}.wav {len(y) / SR:.1f}s, {len(segs)} stretches, {len(alerts)} alerts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/lecture_es")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    build(args.out, args.seed)


if __name__ == "__main__":
    main()
