"""Typed settings, read from environment variables (one object per process).

Every service builds exactly one settings object at start: the common fields here plus its own.
Names are the environment variable names, case-insensitive (`REDIS_URL`, `PORT`, ...).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared import keys

DEFAULT_LECTURE_PROMPT = "Lecture transcription. Listen for exam dates, assignments, and deadlines."


class CommonSettings(BaseSettings):
    """Fields every service shares: where Redis is, stream names, logging."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    # The archive (PostgreSQL). `make run` starts an embedded one and sets it; empty: no archive.
    database_url: str | None = None
    data_dir: str = ".data"  # the embedded servers' files and the lectures' audio (data_dir/audio)
    # Redis Sentinel: "host:port,host:port,..." of the sentinels; the master's name they monitor.
    redis_sentinels: str = ""
    redis_master_name: str = "classrec"
    # Each live session holds one connection of the gateway's pool in its relay's blocking XREAD:
    # redis-py's default of 100 refused the 91st session of a hall (MaxConnectionsError).
    redis_max_connections: int = Field(2000, ge=10, description="connections one process may open to Redis")
    log_level: str = "INFO"
    metrics_port: int = 0  # workers: serve /metrics and /healthz on this port (0: off)
    # Stream names (shared/keys.py, README "Streams"): per-session streams use "{prefix}{sid}".
    sessions_stream: str = keys.SESSIONS
    audio_prefix: str = keys.AUDIO_PREFIX
    segments_stream: str = keys.SEGMENTS
    partials_stream: str = keys.PARTIALS
    transcripts_stream: str = keys.TRANSCRIPTS
    alerts_stream: str = keys.ALERTS  # alerts and session ends, for the archive
    events_prefix: str = keys.EVENTS_PREFIX
    stream_maxlen: int = Field(100_000, description="approximate bound of every shared stream")
    # Partials are disposable and each carries the whole utterance so far (~100 KB): when no
    # transcriber keeps up (or none runs), the oldest go first instead of filling Redis.
    partials_maxlen: int = Field(200, description="bound of segments:partial (exact)")
    # Sentence finals: the transcriber asks the VAD to close an utterance at a sentence's end
    # (services/transcriber/sentences.py), the VAD sends a partial when a pause begins (vad/sentences.py).
    sentence_finals: bool = True
    read_count: int = 16
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    max_deliveries: int = 3  # then the entry goes to the dead-letter stream
    trim_acknowledged: bool = Field(True, description="drop work-stream entries every group acknowledged")
    consumer_gone_ms: int = Field(
        300_000, description="a group's consumer idle this long and holding nothing is deleted"
    )
    deadletter_stream: str = keys.DEADLETTER
    retry_max_s: float = 10.0
    session_retention_s: int = Field(30 * 86400, description="how long transcripts and alerts are kept")

    @field_validator("database_url", mode="before")
    @classmethod
    def _blank_url_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    def sentinel_hosts(self) -> list[tuple[str, int]]:
        hosts = []
        for item in filter(None, (x.strip() for x in self.redis_sentinels.split(","))):
            host, _, port = item.rpartition(":")
            hosts.append((host or item, int(port) if host else 26379))
        return hosts

    def audio_key(self, sid: str) -> str:
        return f"{self.audio_prefix}{sid}"

    def events_key(self, sid: str) -> str:
        return f"{self.events_prefix}{sid}"

    def partials_key(self, sid: str) -> str:
        """Hash segment -> newest partial rev, or "final" once the utterance is closed."""
        return keys.partials(sid)


class GatewaySettings(CommonSettings):
    host: str = "0.0.0.0"
    port: int = 8080
    max_frame_bytes: int = 1 << 20
    end_timeout_s: float = Field(300.0, description="longest wait for pending work after stop")
    resume_grace_s: float = Field(30.0, description="how long a dropped client may come back and resume")
    # Access control and hostile input (services/gateway/security.py).
    auth_token: str | None = Field(None, description="when set, required on /ws/transcribe and the APIs")
    # Origins besides the gateway's own that may open the WebSocket or POST to the APIs:
    # "https://a.edu,https://b.edu" or a JSON list; "*" allows any. Empty: same origin only.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # Limits of one client (services/gateway/flow.py, security.py; the reasons are in README "Limits").
    max_sessions_per_client: int = 500  # live WebSocket sessions per client address (a hall behind one NAT)
    max_sessions_per_owner: int = 4  # live WebSocket sessions per owner key (`owner` in start)
    max_messages_per_s: float = 10.0  # text frames per connection, sustained; beyond: `rate_limited`
    max_messages_burst: int = 40  # text frames per connection in a burst
    max_audio_speed: float = 4.0  # audio faster than this multiple of real time is read more slowly
    audio_burst_s: float = 10.0  # seconds of audio taken at once beyond that pace (a short outage's backlog)
    max_audio_gap_s: float = (
        600.0  # a resumed client ahead of the server's audio: the gap filled with silence
    )
    # Acknowledged audio (services/gateway/acks.py): `ack` at least this often while audio flows, and
    # (when > 0) only once WAIT says that many replicas have it, waiting at most ack_wait_timeout_ms.
    ack_interval_s: float = 0.5
    ack_wait_replicas: int = 0
    ack_wait_timeout_ms: int = 1000
    max_followers_per_session: int = 200  # share-link followers of one session, per gateway
    trust_forwarded_for: bool = False  # client address from X-Forwarded-For (behind a reverse proxy only)
    max_flags_per_session: int = 500  # bookmarks and doubts a session keeps (services/gateway/flags.py)

    @field_validator("auth_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: Any) -> Any:
        """A comma-separated string or a JSON list; entries are stripped, empty ones dropped."""
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else v.split(",")
        if isinstance(v, list | tuple):
            return [o.strip().rstrip("/") for o in v if isinstance(o, str) and o.strip()]
        return v


def parse_pauses(v: Any) -> Any:
    """ "after:pause,after:pause" (seconds) or a JSON list of pairs, as a list of (after, pause)."""
    if isinstance(v, str):
        if v.strip().startswith("["):
            return json.loads(v)
        pairs = [p.split(":") for p in v.replace(" ", "").split(",") if p]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"expected 'after:pause,...' in seconds, got {v!r}")
        return [(float(a), float(b)) for a, b in pairs]
    return v


class VadSettings(CommonSettings):
    vad_model_path: str | None = None  # default: the Silero v6 ONNX inside faster-whisper
    vad_threshold: float = 0.5
    vad_neg_threshold: float = 0.35
    vad_min_silence_s: float = 0.4
    vad_pad_s: float = 0.3
    vad_min_speech_s: float = 0.25
    vad_max_utterance_s: float = 20.0
    # Run-on speech (services/vad/segmenter.py): "3:0.1,6:0.064" = once an utterance is 3 s long a
    # 0.1 s pause closes it, from 6 s on a 0.064 s one. Empty: every pause lasts VAD_MIN_SILENCE_S.
    vad_short_pauses: Annotated[list[tuple[float, float]], NoDecode] = [(3.0, 0.1), (6.0, 0.064)]
    partials: bool = True  # send growing utterances for partial results
    vad_lease_s: float = 5.0  # a dead VAD's sessions are taken over within about this long
    vad_idle_timeout_s: float = 120.0  # a session with no audio this long is ended (its client is gone)
    partial_interval_s: float = 1.0
    partial_min_speech_s: float = 0.5
    # An utterance in a pause this long is sent as an early final, decoded while the VAD waits out
    # the rest of VAD_MIN_SILENCE_S (services/vad/partials.py; 0: off).
    early_final_s: float = 0.1
    # Voice lock (services/voice/lock.py; calibrated with bench/voice.py, see README "Voice lock")
    voice_threshold: float = 0.7  # a stretch whose pooled score is below: another speaker
    voice_window_threshold: float = 0.55  # a 1-s window below: a candidate change of speaker
    voice_min_run: int = 2  # windows a change of speaker must last inside an utterance
    keep_audio: bool = True  # keep each lecture's audio as Ogg Opus in DATA_DIR/audio

    @field_validator("vad_short_pauses", mode="before")
    @classmethod
    def _parse_pauses(cls, v: Any) -> Any:
        return parse_pauses(v)


class TranscriberSettings(CommonSettings):
    transcribe_backend: str = "local"  # "local" (faster-whisper) or "openai"
    whisper_model: str | None = None  # default: base (services/transcriber/models.py DEFAULT_MODEL)
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_beam_size: int = 5
    whisper_cpu_threads: int = 0  # 0: CTranslate2 decides
    lecture_prompt: str = DEFAULT_LECTURE_PROMPT
    # Announcement vocabulary put before the prompt, so that Whisper hears "quiz" rather than "with".
    hotwords: str = "exam quiz midterm homework deadline"
    # The end of the session's recent final text added to the prompt (0: off; tiny.en did better without).
    prompt_context_chars: int = 0
    partial_beam_size: int = 1
    # Sentence finals (services/transcriber/sentences.py): when the stable words of a partial end a
    # sentence of at least SENTENCE_MIN_WORDS words, the VAD is asked to close the utterance there.
    sentence_min_words: int = 4
    # Two-pass: partials of English speech from this (smaller) model, finals from WHISPER_MODEL
    # ("" or the same model: one model for both). README "Two-pass partials".
    partial_model: str = "tiny.en"
    # Finals: heard after up to this many seconds of the session's preceding speech, their text as the
    # previous-text prompt (services/transcriber/in_context.py; 0: each utterance alone). On hall
    # audio 10 s cut base's WER from 21.5 to 15.4 % for 0.11 s more per final (bench/context.py).
    # Spent only while no other final waits; behind, finals are decoded alone, in batches.
    final_context_s: float = 10.0
    # Finals: the encoder sees the utterance plus this much padding instead of a whole 30 s window
    # (0: the whole window). Shorter is cheaper; see bench/finals.py for what it does to accuracy.
    final_window_tail_s: float = 5.0
    # Finals waiting together are decoded as batches of up to this many (1: one at a time), after
    # waiting at most batch_wait_ms for more to arrive when fewer are queued.
    transcribe_batch: int = 8
    batch_wait_ms: int = 20
    # A transcriber takes at most its share of the finals waiting (lag / live transcribers, at most a
    # batch), so that a second one always helps (services/transcriber/fairshare.py). 0: a batch each.
    fair_share: bool = True
    # Finals that waited this long in `segments` mean the transcribers are behind: partials are then
    # shed (acknowledged undecoded) for PARTIAL_SHED_FOR_S, so that finals get the CPU (0: never).
    partial_shed_wait_s: float = 1.0
    partial_shed_for_s: float = 5.0
    # Whisper's temperature fallback: a final whose first (beam search) pass looks like a loop or a
    # guess is decoded again by random sampling at rising temperatures. Off by default: CTranslate2
    # seeds its sampler once per thread, so the same audio then gets a different transcript from run
    # to run, and the retries cost seconds on a CPU while other sessions wait (bench/page_vs_stream.py).
    temperature_fallback: bool = False
    # More than this much free heap (MB) after a turn is given back to the system (shared/malloc.py:
    # HeapTrim). 0: glibc's mmap threshold fixed instead, as in the other services (slower finals).
    heap_trim_mb: int = 256
    # ... and more than 64 MB of it at most this often (s; 0: only past HEAP_TRIM_MB). Each trim makes
    # the next final fault its buffers in again (+0.24 s): once a minute lifted a soak's p95 by 25%.
    heap_trim_every_s: float = 300.0
    word_timestamps: bool = True  # finals: segment start/end from the first and last word
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    openai_model: str = "whisper-1"
    openai_base_url: str | None = None
    openai_api_key: str = "unused"
    openai_timeout_s: float = 30.0


class AlertsSettings(CommonSettings):
    timezone: str | None = None  # default: the server's
    # Optional LLM classifier (services/alerts/llm.py), any OpenAI-compatible chat completions endpoint;
    # the rules decide whenever the call fails, times out or answers something invalid.
    alerts_llm: bool = False
    alerts_llm_model: str = "gpt-4o-mini"
    alerts_llm_base_url: str | None = None  # default: the openai client's (OPENAI_BASE_URL or api.openai.com)
    alerts_llm_api_key: str | None = None  # default: OPENAI_API_KEY, else "unused" (local servers)
    alerts_llm_timeout_s: float = 5.0


class ArchiveSettings(CommonSettings):
    # Fault injection for the tests only: exit abruptly after this many writes, before their ack.
    archive_fault_exit_after: int = 0


class LauncherSettings(CommonSettings):
    port: int = 8080
    transcribers: int = 1
    # Niceness added to the transcriber children (e.g. 5: the VAD and the gateway come first on a CPU
    # the stack has to itself). 0 by default: on a machine shared with other work, a niced transcriber
    # yields to everybody's processes, not only to its own VAD (README "Load", bursts).
    transcriber_nice: int = 0
    metrics_base_port: int = 0  # >0: worker i of `make run` serves metrics on this port + i
    redis_port: int = 6399
    postgres_port: int = 0  # the embedded PostgreSQL's port (0: a free one, logged at start)
