"""Finals in context: the session's recent speech that the next final is decoded after.

A final heard alone is a few seconds of one voice in one room; heard after the 20 s before it, with
what was said there forced as the decoder's prefix, Whisper knows the voice and the room (README
"Finals in context"). Each final's audio and text go to a per-session hash (`keys.heard`), so that
whichever transcriber of the group takes the next final finds them; a short TTL and a cap on the
segments kept bound it to what is in use.
"""

from __future__ import annotations

import numpy as np
import redis.asyncio as aioredis

from shared import keys
from shared.messages import SAMPLE_RATE

# Silence put after each earlier utterance, as between two utterances of speech. Each is kept as it
# was decoded, up to EARLY_FINAL_S (0.1 s) into its pause: whether the VAD closed it there (a short
# pause, VAD_SHORT_PAUSES) or 0.4 s in, the context is the same.
GAP_S = 0.5
KEEP = 8  # utterances kept per session (the budget in seconds decides how many are used)
TTL_S = 120  # a session silent this long starts again without context
WINDOW_S = 28.0  # Whisper hears 30 s: context + utterance + a little tail


def budget_s(setting_s: float, utterance_s: float) -> float:
    """Seconds of context a final of `utterance_s` may have: the setting, within Whisper's window."""
    return max(0.0, min(setting_s, WINDOW_S - utterance_s))


async def load(r: aioredis.Redis, sid: str, segment: int, seconds: float) -> tuple[np.ndarray | None, str]:
    """The most recent earlier utterances (before `segment`) up to `seconds` in all, oldest first, as
    float32 audio with a gap after each, and their text; (None, "") when there is none."""
    if seconds <= 0:
        return None, ""
    raw = await r.hgetall(keys.heard(sid))
    earlier: dict[int, dict[str, bytes]] = {}
    for field, value in raw.items():
        seg, _, kind = field.decode().partition(":")
        if seg.isdigit() and int(seg) < segment:
            earlier.setdefault(int(seg), {})[kind] = value
    heard = []
    for seg in sorted(earlier):
        entry = earlier[seg]
        if "pcm" in entry and entry.get("text", b"").strip():
            pcm = np.frombuffer(entry["pcm"], np.int16).astype(np.float32) / 32768.0
            heard.append((pcm, entry["text"].decode().strip()))
    return assemble(heard, seconds)


def assemble(heard: list[tuple[np.ndarray, str]], seconds: float) -> tuple[np.ndarray | None, str]:
    """From earlier utterances (float32 audio, text; oldest first), the most recent ones up to
    `seconds` in all, each followed by a gap, and their text; (None, "") when none fits."""
    picked: list[tuple[np.ndarray, str]] = []
    total = 0.0
    for pcm, text in reversed(heard):
        total += len(pcm) / SAMPLE_RATE + GAP_S
        if total > seconds:
            break
        picked.insert(0, (pcm, text))
    if not picked:
        return None, ""
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    return np.concatenate([x for pcm, _ in picked for x in (pcm, gap)]), " ".join(t for _, t in picked)


def save(pipe: aioredis.client.Pipeline, sid: str, segment: int, pcm: bytes, text: str) -> None:
    """Stage this final's audio and text for the finals after it (nothing for an empty final)."""
    if not text.strip():
        return
    key = keys.heard(sid)
    pipe.hset(key, mapping={f"{segment}:pcm": pcm, f"{segment}:text": text})
    if segment >= KEEP:
        pipe.hdel(key, f"{segment - KEEP}:pcm", f"{segment - KEEP}:text")
    pipe.expire(key, TTL_S)
