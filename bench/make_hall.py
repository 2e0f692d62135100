"""Build the lecture-hall recordings of issue 14 from the dev lectures (run once; two are committed).

    python -m bench.make_hall                                    # tests/data/hall1_snr15, hall2_snr12
    python -m bench.make_hall --out /tmp/hall --variants 1:15,1:12,2:15,2:12   # all four, for bench/

Each variant SEED:SNR is tests/data/lectureSEED passed through ../shared/devdata/make_dev_hall.py
(sox room reverb 60, a pink + fan-hum floor at SNR dB to the speech, 8 dB quieter): what a phone
on a desk in a hall hears, with the same truth. Written as PREFIX.wav + PREFIX.json
(`hallSEED_snrSNR`). Needs sox (only to build them; tests and benchmarks read the results).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HALL_SCRIPT = ROOT.parent / "shared/devdata/make_dev_hall.py"


def build(out: Path, seed: int, snr: float, script: Path = HALL_SCRIPT) -> Path:
    prefix = out / f"hall{seed}_snr{snr:g}"
    src = ROOT / "tests/data" / f"lecture{seed}"
    subprocess.run(
        [sys.executable, str(script), str(src), str(prefix), "--snr", str(snr), "--seed", str(seed)],
        check=True,
    )
    return prefix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests/data")
    ap.add_argument("--variants", default="1:15,2:12", help="comma-separated SEED:SNR")
    ap.add_argument("--script", type=Path, default=HALL_SCRIPT, help="make_dev_hall.py")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for v in args.variants.split(","):
        seed, snr = v.split(":")
        build(args.out, int(seed), float(snr), args.script)


if __name__ == "__main__":
    main()
