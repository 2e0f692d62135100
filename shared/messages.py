"""One pydantic model per message type, and the one way they are serialised.

Client-facing messages (the fixed WebSocket protocol: README, "The WebSocket protocol") are JSON text frames.
Internal messages travel as Redis stream entries with the fields `type`, `json` (the model without
its audio) and, for messages that carry audio, `pcm` (raw PCM16 little-endian mono 16 kHz bytes).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

SAMPLE_RATE = 16_000


class Strict(BaseModel):
    """A model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Msg(Strict):
    """A message: every one has its `type` (a Literal in each model, the discriminator below)."""

    type: str


# --- client -> server -------------------------------------------------------------------------


class StartMessage(Msg):
    type: Literal["start"] = "start"
    language: str | None = "en"
    prompt: str = Field("", max_length=2000)
    keywords: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    session: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, max_length=64)
    course: str | None = Field(None, max_length=200)
    # The student's own names: saying one of them raises a `name` alert.
    names: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=10)
    # The client's owner key (README, "Owners"): the session belongs to it (stored only as its
    # SHA-256, services/gateway/owners.py); the voice lock looks the voice up under it.
    owner: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{16,128}$")
    # Voice lock: an enrolled voice of the owner (/api/voices); others' speech dropped or labelled.
    voice: str | None = Field(None, max_length=64)
    others: Literal["drop", "label"] = "drop"
    # "translate": English text from any language the model knows (Whisper's translate task).
    task: Literal["transcribe", "translate"] = "transcribe"
    # Resume: the byte of session audio the first audio frame of this connection starts at (the
    # client's oldest unacknowledged byte). Absent: the audio goes on from the server's `received`.
    offset: int | None = Field(None, ge=0, multiple_of=2)


class StopMessage(Msg):
    type: Literal["stop"] = "stop"


MAX_FLAG_SPAN_S = 600.0


class FlagMessage(Msg):
    """A bookmark or a doubt at a moment of session audio (seconds), with an optional note."""

    type: Literal["flag"] = "flag"
    start: float = Field(ge=0, le=7 * 86400)
    end: float = Field(ge=0, le=7 * 86400)
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _ordered(self) -> FlagMessage:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        if self.end - self.start > MAX_FLAG_SPAN_S:
            raise ValueError(f"a flag spans at most {MAX_FLAG_SPAN_S:.0f} s")
        return self


ClientMessage = Annotated[StartMessage | StopMessage | FlagMessage, Field(discriminator="type")]
client_message = TypeAdapter(ClientMessage)


# --- server -> client (also stored in events:{sid}) ----------------------------------------------


class SessionEvent(Msg):
    type: Literal["session"] = "session"
    session: str
    # The session's language once known: the one asked for, or for "auto" the one detected from the
    # first speech (then a second `session` message carries it). Absent while unknown.
    language: str | None = None
    # Bytes of this session's audio the server holds (0 for a new session): on the gateway's own
    # `session` message; absent on the later one that only reports a detected language.
    received: int | None = None


class AckEvent(Msg):
    """Audio up to byte `received` of the session is stored; the client may drop it from its resend buffer."""

    type: Literal["ack"] = "ack"
    received: int


class TranscriptEvent(Msg):
    type: Literal["transcript"] = "transcript"
    segment: int
    start: float
    end: float
    text: str
    final: bool
    # Partials only: the leading part of `text` that two consecutive partials agreed on (LocalAgreement-2);
    # it will not change before the final. Absent on finals.
    stable: str | None = None
    # Voice lock: who said it ("lecturer" | "other"); absent without a lock.
    speaker: Literal["lecturer", "other"] | None = None
    # Finals only, when the backend gives word timings: [start, end, word] in session seconds.
    words: list[tuple[float, float, str]] | None = None


AlertCategory = Literal[
    "exam", "quiz", "deadline", "assignment", "schedule", "custom", "important", "attendance", "name"
]


class AlertEvent(Msg):
    type: Literal["alert"] = "alert"
    segment: int
    start: float
    category: AlertCategory
    text: str
    date: str | None = None  # YYYY-MM-DD
    time: str | None = None  # HH:MM
    title: str | None = None


class FlagEvent(Msg):
    """A flag the server keeps with the session (the answer to a client's `flag`)."""

    type: Literal["flag"] = "flag"
    id: str
    start: float
    end: float
    note: str = ""


class ErrorEvent(Msg):
    type: Literal["error"] = "error"
    code: str
    message: str


class EndEvent(Msg):
    type: Literal["end"] = "end"


# --- internal ----------------------------------------------------------------------------------


class SessionConfig(Strict):
    """What a session asked for at start; carried with its audio and its segments."""

    language: str | None = "en"
    prompt: str = ""
    keywords: list[str] = Field(default_factory=list)
    timezone: str | None = None
    started_at: float = 0.0  # unix time of the session's start, for relative dates
    course: str | None = None
    partials: bool = True  # uploads: nobody watches partial results, so none are made
    names: list[str] = Field(default_factory=list)  # `name` alerts
    voice: str | None = None  # voice lock: the enrolled voice's id (its embedding: SessionOpened)
    others: Literal["drop", "label"] = "drop"
    task: Literal["transcribe", "translate"] = "transcribe"


class SessionOpened(Msg):
    """On the sessions stream: a new session whose audio a VAD worker must take."""

    type: Literal["session_opened"] = "session_opened"
    sid: str
    config: SessionConfig
    owner: str | None = None  # SHA-256 hex of the owner key that started it; None: no owner
    voiceprint: str | None = None  # voice lock: base64 of the voice's 256 float32 (config.voice)


class AudioChunk(Msg):
    """On audio:{sid}: a piece of the session's audio, in order."""

    type: Literal["audio"] = "audio"
    seq: int
    pcm: bytes = Field(b"", exclude=True)


class AudioStop(Msg):
    """On audio:{sid}: the client said stop; no audio follows."""

    type: Literal["audio_stop"] = "audio_stop"
    seq: int


class SentenceCut(Msg):
    """On audio:{sid}, from the transcriber: the open utterance `segment`'s stable partial text (of
    partial `rev`) ends a sentence whose last word ends at `at` (session seconds); the owning VAD
    closes the segment there as a final and keeps the rest open (services/vad/sentences.py)."""

    type: Literal["sentence_cut"] = "sentence_cut"
    sid: str
    segment: int
    rev: int
    at: float = Field(ge=0)


class SegmentJob(Msg):
    """On the segments stream: one utterance (or its growing prefix) to transcribe."""

    type: Literal["segment"] = "segment"
    sid: str
    segment: int
    start: float
    end: float
    final: bool = True
    rev: int = 0  # partials: the how-many-th partial of this segment; a newer one makes it stale
    config: SessionConfig
    pcm: bytes = Field(b"", exclude=True)
    speaker: Literal["lecturer", "other"] | None = None  # voice lock: who the VAD says speaks
    # Finals: where the VAD heard the speech begin and end inside [start, end] (None: that side of
    # the audio was cut mid-speech). Word timings of the edges are early by 0.1-0.3 s on their own.
    speech_start: float | None = None
    speech_end: float | None = None
    # On the partials stream: the open utterance as a pause would close it (services/vad/partials.py).
    early: bool = False
    # Finals with early finals on: only this many samples are decoded, the audio its early final had,
    # so that a final decodes the same audio whether or not its early final was decoded in time.
    decode_len: int | None = None
    # Finals closed in a short pause of run-on speech or split mid-speech (services/vad/segmenter.py):
    # the next final may hold the rest of this one's last sentence (keys.joins says if speech went on).
    continues: bool = False


class DecodedPiece(Strict):
    """A decoded stretch of an utterance (services/transcriber/types.py `Piece`), as stored."""

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0
    words: list[tuple[float, float, str]] = []


class EarlyResult(Strict):
    """The value of keys.early(sid)[segment]: an early final's result and the audio it decoded."""

    start: float
    speech_start: float | None
    speech_end: float | None
    decode_len: int | None
    took: float
    pieces: list[DecodedPiece]


class TranscriptRecord(Msg):
    """On the transcripts stream: a final transcript, for the alerts worker."""

    type: Literal["transcript_record"] = "transcript_record"
    sid: str
    transcript: TranscriptEvent
    config: SessionConfig
    continues: bool = False  # closed in a short pause and the speaker went on (keys.joins)


class VadDone(Msg):
    """On the transcripts stream: the session's audio ended and the VAD cut `segments` utterances."""

    type: Literal["vad_done"] = "vad_done"
    sid: str
    segments: int


class AlertsDone(Msg):
    """On events:{sid}, internal: every utterance of the session is transcribed and scanned for alerts."""

    type: Literal["alerts_done"] = "alerts_done"
    segments: int


class AlertRecord(Msg):
    """On the alerts stream: an alert as sent to the session, for the archive."""

    type: Literal["alert_record"] = "alert_record"
    sid: str
    alert: AlertEvent


class SessionEnded(Msg):
    """On the alerts stream: every utterance of the session is transcribed and scanned (after its
    alerts), for the archive."""

    type: Literal["session_ended"] = "session_ended"
    sid: str
    segments: int


StreamMessage = Annotated[
    SessionEvent
    | TranscriptEvent
    | AlertEvent
    | FlagEvent
    | ErrorEvent
    | EndEvent
    | SessionOpened
    | AudioChunk
    | AudioStop
    | SentenceCut
    | SegmentJob
    | TranscriptRecord
    | VadDone
    | AlertsDone
    | AlertRecord
    | SessionEnded,
    Field(discriminator="type"),
]
_stream_message = TypeAdapter(StreamMessage)
CLIENT_EVENTS = {"session", "transcript", "alert", "flag", "error", "end"}


def to_fields(msg: Msg) -> dict[str, bytes | str]:
    """A message as the fields of a Redis stream entry."""
    fields: dict[str, bytes | str] = {"type": msg.type, "json": msg.model_dump_json()}
    pcm = getattr(msg, "pcm", None)
    if pcm:
        fields["pcm"] = pcm
    return fields


def from_fields(fields: dict[bytes, bytes]) -> Msg:
    """The message stored in a Redis stream entry; raises ValueError on a malformed entry."""
    raw = fields.get(b"json")
    if raw is None:
        raise ValueError("stream entry without a json field")
    msg = _stream_message.validate_json(raw)
    if b"pcm" in fields:
        msg.pcm = fields[b"pcm"]  # type: ignore[union-attr]
    return msg


def to_client_json(msg: Msg) -> str:
    """A server-to-client message as the JSON text of a WebSocket frame (finals carry no `stable`;
    `speaker` and `words` only when they say something)."""
    if isinstance(msg, TranscriptEvent):
        return msg.model_dump_json(
            exclude={k for k in ("stable", "speaker", "words") if getattr(msg, k) is None}
        )
    if isinstance(msg, SessionEvent):
        return msg.model_dump_json(exclude_none=True)
    return msg.model_dump_json()
