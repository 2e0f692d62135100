"""`POST /v1/audio/transcriptions`: OpenAI's route over the same pipeline, answered when the session ends.

Errors keep OpenAI's shape `{"error": {"message", "type", "param", "code"}}`; the gateway's
error middleware (`errors.py`) leaves this route alone.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from services.gateway import state
from services.gateway.errors import ApiError
from services.gateway.history.formats import render_srt, render_vtt
from services.gateway.history.records import Entry, Record, read_record
from services.gateway.uploads.feeder import DONE, Feeder, start_upload
from services.gateway.uploads.form import Upload, receive
from shared.messages import (
    TranscriptEvent,
)
from shared.streams import REDIS_DOWN

log = logging.getLogger(__name__)
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")


def openai_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status
    )


def openai_options(upload: Upload) -> tuple[str, list[str]]:
    """The response format and timestamp granularities asked for; raises ApiError."""
    fmt = upload.get("response_format") or "json"
    if fmt not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}", "response_format")
    grains = [g.strip() for g in upload.fields.get("timestamp_granularities[]", []) if g.strip()]
    grains += [g.strip() for g in upload.fields.get("timestamp_granularities", []) if g.strip()]
    if bad := [g for g in grains if g not in GRANULARITIES]:
        raise ApiError(
            400, f"unknown timestamp granularity {bad[0]!r}: use segment or word", "timestamp_granularities"
        )
    return fmt, grains or ["segment"]


def spread_words(final: TranscriptEvent) -> list[dict[str, Any]]:
    """A final's words with times spread over it by characters (Whisper's own are not stored)."""
    words = final.text.split()
    total = sum(len(w) for w in words) or 1
    out, done = [], 0
    for w in words:
        t0 = final.start + (final.end - final.start) * done / total
        done += len(w)
        t1 = final.start + (final.end - final.start) * done / total
        out.append({"word": w, "start": round(t0, 3), "end": round(t1, 3)})
    return out


def verbose_json(record: Record, language: str | None, duration: float, grains: list[str]) -> dict[str, Any]:
    lines = record.lines
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language or "en",
        "duration": round(duration, 3),
        "text": " ".join(f.text.strip() for f in lines),
    }
    if "word" in grains:
        body["words"] = [w for f in lines for w in spread_words(f)]
    body["segments"] = [
        {
            "id": i,
            "seek": 0,
            "start": f.start,
            "end": f.end,
            "text": " " + f.text.strip(),
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.0,
        }
        for i, f in enumerate(lines)
    ]
    return body


def render(
    fmt: str, sid: str, record: Record, feeder: Feeder, language: str | None, grains: list[str]
) -> web.Response:
    text = " ".join(f.text.strip() for f in record.lines)
    if fmt == "json":
        return web.json_response({"text": text})
    if fmt == "verbose_json":
        return web.json_response(verbose_json(record, language, feeder.fed_s, grains))
    entry = Entry(sid)
    if fmt == "srt":
        return web.Response(text=render_srt(entry, record), content_type="text/plain", charset="utf-8")
    if fmt == "vtt":
        return web.Response(text=render_vtt(entry, record), content_type="text/vtt", charset="utf-8")
    return web.Response(text=text + "\n" if text else "", content_type="text/plain", charset="utf-8")


async def openai_transcriptions(request: web.Request) -> web.Response:
    """OpenAI's transcription route over the pipeline: answers once the session has ended."""
    try:
        upload = await receive(request)
    except ApiError as e:
        return openai_error(e.status, e.message, e.param, e.code)
    try:
        fmt, grains = openai_options(upload)
    except ApiError as e:
        upload.discard()
        return openai_error(e.status, e.message, e.param, e.code)
    try:
        feeder = await start_upload(request.app, upload, None)
    except ApiError as e:
        return openai_error(e.status, e.message, e.param, e.code)
    await feeder.finished.wait()  # the feeder bounds its own wait by the audio's duration
    if feeder.status != DONE:
        return openai_error(
            504 if "did not finish" in (feeder.error or "") else 500, feeder.error or "transcription failed"
        )
    r, s = request.app[state.REDIS], request.app[state.SETTINGS]
    try:
        record = await read_record(r, s.events_key(feeder.sid))
    except REDIS_DOWN:
        return openai_error(503, "storage unavailable, try again", None, "unavailable")
    language = upload.get("language")
    return render(fmt, feeder.sid, record, feeder, language, grains)
