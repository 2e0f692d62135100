"""`python -m services.watch` (`classrec-watch`): a live view of ClassRec's Redis streams, for debugging.

Every refresh (`--interval`, 1 s) shows each stream with its length and write rate, each consumer
group with its lag, pending entries and read rate, and each consumer with its pending entries and
idle time. Streams are found with `SCAN TYPE stream`; the per-session streams (`audio:*`,
`events:*`) are summarised per prefix, with the longest few shown one by one. Rates come from the
change of `entries-added` / `entries-read` between two refreshes. On a terminal the table is redrawn
in place; piped, one block is printed per refresh; `--once` prints one snapshot and exits.

`--follow SID` prints one line per message of that session as it passes: its events and audio, and
the entries of the shared streams whose `sid` is SID. Audio is shown as a size and a duration.

Redis and the stream names come from the environment (`REDIS_URL`, ...), as for every service.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

import redis

from services.watch.figures import Snapshot, snapshot
from services.watch.follow import follow
from services.watch.render import redact, render
from shared.redis_errors import REDIS_DOWN
from shared.settings import CommonSettings
from shared.streams import connect_sync

LAG_SINCE_MAJOR = 7  # XINFO GROUPS reports lag and entries-read from Redis 7 on
TOP = 3  # per-session streams shown one by one, per prefix
CLEAR = "\x1b[H\x1b[2J"
NAME_WIDTH = 44


def watch(r: redis.Redis, settings: CommonSettings, args: argparse.Namespace, out: TextIO) -> int:
    """Refresh until interrupted (or once); a Redis outage is shown and retried, not fatal."""
    tty = out.isatty()
    previous: Snapshot | None = None
    while True:
        try:
            snap = snapshot(r, settings, args.top)
            text = render(snap, previous, settings.redis_url, args.top)
            previous = snap
        except REDIS_DOWN as e:
            if args.once:
                print(f"redis unreachable at {redact(settings.redis_url)}: {e}", file=sys.stderr)
                return 1
            text = f"redis unreachable at {redact(settings.redis_url)}: {e}\n"
        out.write((CLEAR + text) if tty else (text + "\n"))
        out.flush()
        if args.once:
            return 0
        time.sleep(args.interval)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="classrec-watch", description=__doc__.split("\n\n")[0])
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (1)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--top", type=int, default=TOP, help=f"per-session streams shown one by one ({TOP})")
    p.add_argument("--follow", metavar="SESSION", help="print a session's messages as they pass")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = CommonSettings()
    r = connect_sync(settings)
    try:
        if args.follow:
            return follow(r, settings, args.follow, sys.stdout)
        return watch(r, settings, args, sys.stdout)
    except KeyboardInterrupt:
        return 0
    finally:
        r.close()


if __name__ == "__main__":
    sys.exit(main())
