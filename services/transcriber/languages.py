"""A session's language as the transcriber decodes it.

A session asks for a language code (`en`, `es`, ...) or `auto`. `auto` is decided once per session
by Whisper's language detection on the first utterance with enough speech, kept in
`language:{sid}` (the first transcriber to decide wins, `SET NX`), and reported to the client by a
second `session` message carrying `language`. A language the loaded model cannot transcribe is
never decoded as something else: the segment is refused with `LanguageUnsupported`, and the worker
tells the session once with an `error` of code `language_unsupported` naming the model.
"""

from __future__ import annotations

import logging

import numpy as np
import redis.asyncio as aioredis

from shared import keys
from shared.messages import SAMPLE_RATE, ErrorEvent, SegmentJob, SessionEvent
from shared.streams import stage

log = logging.getLogger(__name__)
AUTO = "auto"
DETECT_MIN_S = 2.0  # a partial shorter than this gets a guess for itself; it does not decide
STATE_TTL_S = 6 * 3600


class LanguageUnsupported(Exception):
    """The session's language is not one the loaded model can transcribe."""

    def __init__(self, language: str, model: str) -> None:
        super().__init__(f"the server's model {model} cannot transcribe language {language!r}")
        self.language, self.model = language, model


def asked(job: SegmentJob) -> str:
    """The session's language as asked: a code, or "auto" (also for none given)."""
    return (job.config.language or AUTO).strip().lower() or AUTO


async def session_language(
    r: aioredis.Redis, backend: object, job: SegmentJob, audio: np.ndarray, events_key: str, maxlen: int
) -> str | None:
    """The language to decode `job` in; LanguageUnsupported when the model cannot do it.

    None means "let the backend decide" (a backend without detection, such as an API)."""
    language = asked(job)
    if language == AUTO:
        language = await _detected(r, backend, job, audio, events_key, maxlen)
    supported: list[str] | None = getattr(backend, "languages", None)
    if language is not None and supported is not None and language not in supported:
        raise LanguageUnsupported(language, getattr(backend, "model_name", "?"))
    return language


async def _detected(
    r: aioredis.Redis, backend: object, job: SegmentJob, audio: np.ndarray, events_key: str, maxlen: int
) -> str | None:
    supported: list[str] | None = getattr(backend, "languages", None)
    if supported is not None and len(supported) == 1:
        return supported[0]  # nothing to detect (tiny.en)
    known = await r.get(keys.language(job.sid))
    if known:
        return known.decode()
    detect = getattr(backend, "detect_language", None)
    if detect is None:
        return None
    language, prob = await detect(audio)
    if not job.final and len(audio) < DETECT_MIN_S * SAMPLE_RATE:
        return language  # too little speech to decide the session on; good enough for this partial
    if await r.set(keys.language(job.sid), language, nx=True, ex=STATE_TTL_S):
        await stage(r, events_key, SessionEvent(session=job.sid, language=language), maxlen)
        log.info("sid=%s seg=%d language detected=%s p=%.2f", job.sid, job.segment, language, prob)
        return language
    return (await r.get(keys.language(job.sid)) or language.encode()).decode()


async def tell_unsupported(
    r: aioredis.Redis, e: LanguageUnsupported, job: SegmentJob, events_key: str, maxlen: int
) -> None:
    """The session's `language_unsupported` error, written once per session."""
    if await r.set(keys.language_error(job.sid), "1", nx=True, ex=STATE_TTL_S):
        error = ErrorEvent(
            code="language_unsupported",
            message=f"the server's model {e.model} cannot transcribe language {e.language!r}; "
            "nothing is transcribed in another language instead",
        )
        await stage(r, events_key, error, maxlen)
        log.warning(
            "sid=%s seg=%d language=%s unsupported by model=%s", job.sid, job.segment, e.language, e.model
        )
