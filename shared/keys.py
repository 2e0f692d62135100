"""Every Redis key, stream name and consumer group of ClassRec, in one place (README "Streams").

Like arq's `constants.py`: a module that only names things, imported by every service, the watch tool,
the benchmarks and the tests, so that a key is spelt once. The shared streams and the per-session
stream prefixes are the defaults of `CommonSettings`' `*_stream` / `*_prefix` fields (a test may
give a worker streams of its own); the per-session keys below are built by the functions here only.
"""

from __future__ import annotations

# --- shared work streams (defaults of CommonSettings' fields of the same meaning) ------------------
SESSIONS = "sessions"  # session_opened: vad and archive
SEGMENTS = "segments"  # finished utterances: transcriber
PARTIALS = "segments:partial"  # the open utterance so far: transcriber
TRANSCRIPTS = "transcripts"  # finals and vad_done: alerts and archive
ALERTS = "alerts"  # alerts as sent and session ends: archive
DEADLETTER = "deadletter"  # entries that failed MAX_DELIVERIES times, or were malformed
# The streams whose entries housekeeping drops once every group acknowledged them.
WORK_STREAMS = (SESSIONS, SEGMENTS, PARTIALS, TRANSCRIPTS)

# --- per-session streams: "{prefix}{sid}" -----------------------------------------------------------
AUDIO_PREFIX = "audio:"  # the session's PCM, written by the gateway, read by the owning vad
EVENTS_PREFIX = "events:"  # what the session's client is sent, read by the gateway

# --- consumer groups ----------------------------------------------------------------------------------
VAD_GROUP = "vad"
TRANSCRIBER_GROUP = "transcriber"
ALERTS_GROUP = "alerts"
ARCHIVE_GROUP = "archive"

# --- other keys -------------------------------------------------------------------------------------
VAD_SESSIONS = "vad:sessions"  # set: sessions whose audio has not ended (scanned for lapsed leases)
HEARTBEAT_PREFIX = "heartbeat:"  # heartbeat:{service}:{consumer}, a string with a TTL
LIVE_PREFIX = "live:"  # live:{stream}, a sorted set: transcriber -> when it last asked for work


def session(sid: str) -> str:
    """Hash: the gateway's registry of one session (status, config, received, ...)."""
    return f"session:{sid}"


def upload(sid: str) -> str:
    """Hash: the progress of an uploaded recording."""
    return f"upload:{sid}"


def flags(sid: str) -> str:
    """Hash: flag id -> the session's bookmarks and doubts."""
    return f"flags:{sid}"


def voices(owner_digest: str) -> str:
    """Hash: voice id -> an enrolled voice; keyed by the SHA-256 of the owner key, never the key."""
    return f"voices:{owner_digest}"


def vad_lease(sid: str) -> str:
    """String with a TTL: which VAD worker owns the session."""
    return f"vadlease:{sid}"


def vad_state(sid: str) -> str:
    """Hash: the owning VAD's checkpoint of the session."""
    return f"vadstate:{sid}"


def partials(sid: str) -> str:
    """Hash: segment -> newest partial rev, or "final" once the utterance is closed."""
    return f"partials:{sid}"


def agreement(sid: str) -> str:
    """Hash: the LocalAgreement state of each open utterance."""
    return f"agreement:{sid}"


def context(sid: str) -> str:
    """String: the end of the session's recent final text (PROMPT_CONTEXT_CHARS)."""
    return f"context:{sid}"


def language(sid: str) -> str:
    """String: an `auto` session's detected language, decided once (SET NX)."""
    return f"language:{sid}"


def language_error(sid: str) -> str:
    """String: a `language_unsupported` error was sent to this session (once)."""
    return f"language_error:{sid}"


def alerts_state(sid: str) -> str:
    """Hash: the alerts worker's detector state, next segment and waiting transcripts."""
    return f"alerts:{sid}"


def heartbeat(service: str, consumer: str) -> str:
    return f"{HEARTBEAT_PREFIX}{service}:{consumer}"


def live(stream: str) -> str:
    return f"{LIVE_PREFIX}{stream}"


def audio(sid: str) -> str:
    """Stream: the session's audio under the default prefix (a worker uses `settings.audio_key`)."""
    return f"{AUDIO_PREFIX}{sid}"


def events(sid: str) -> str:
    """Stream: the session's events under the default prefix (a worker uses `settings.events_key`)."""
    return f"{EVENTS_PREFIX}{sid}"


def heard(sid: str) -> str:
    """Hash: the session's recent finals, audio and text (`{segment}:pcm`, `{segment}:text`), that
    the next final is decoded after (FINAL_CONTEXT_S); a short TTL."""
    return f"heard:{sid}"


def joins(sid: str) -> str:
    """Hash: segment -> "1" when the speaker went on right after the short pause that closed it (run-on
    speech), "0" when the pause lasted VAD_MIN_SILENCE_S after all (services/vad/segmenter.py); the
    transcriber tells the alerts with the final (`continues`). A short TTL."""
    return f"joins:{sid}"


def early(sid: str) -> str:
    """Hash: segment -> an early final's decoded result (JSON `EarlyResult`), for whichever
    transcriber reads the final (services/transcriber/early.py); a short TTL."""
    return f"early:{sid}"


def session_keys(sid: str) -> list[str]:
    """Every key of one session but its two streams (their prefixes are settings): what deleting a
    session removes."""
    return [
        session(sid),
        upload(sid),
        flags(sid),
        alerts_state(sid),
        partials(sid),
        agreement(sid),
        context(sid),
        heard(sid),
        early(sid),
        language(sid),
        language_error(sid),
        vad_state(sid),
        vad_lease(sid),
    ]
