"""Recordings uploaded as files: the page's "Upload a recording", and an OpenAI-compatible route.

Modules: `form.py` (the multipart form), `decode.py` (PyAV), `feeder.py` (the session and its flow
control), `routes.py` (`/api/uploads`), `openai_api.py` (`/v1/audio/transcriptions`). This file
imports none of them.

- `POST /api/uploads` — multipart: `file` (any audio PyAV decodes: WAV, MP3, M4A, WebM, OGG, FLAC...),
  optional `language` (`auto` or empty: detect), `prompt`, `keywords` (comma-separated), `timezone`,
  `course`. Answers 202 `{"session", "status", "duration_s"}` at once; the audio is fed in the
  background. Errors are JSON `{"error": ...}`: 400 not multipart / no file / not decodable audio /
  invalid fields, 413 over `MAX_UPLOAD_BYTES` (200 MiB), 429 too many uploads being fed by this
  gateway, 503 Redis unreachable.
- `GET /api/uploads/{sid}` — `{"session", "duration_s", "fed_s", "transcribed_s", "status"}` with
  status `feeding` (audio still going in), `transcribing` (all in, waiting for the last utterances),
  `done` (the alerts worker wrote `alerts_done`), `failed` (plus `error`); `warning` when part of the
  file was not transcribed (it stops decoding part-way, or is longer than `MAX_AUDIO_S`).
  `duration_s` is the container's estimate (null when it has none, e.g. a browser's WebM) until
  decoding ends, then exact; `transcribed_s` is the end of the newest final in `events:{sid}`.
- `POST /v1/audio/transcriptions` — OpenAI's route: `file`, `model` (accepted, ignored), `prompt`,
  `language`, `response_format` (`json`, `text`, `srt`, `vtt`, `verbose_json`),
  `timestamp_granularities[]` (`segment`, `word`; word timings are spread over each final by
  characters, first and last word exact). Runs the same pipeline and answers when the session
  ends. Errors in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

An upload is a session like a live one (`sessions.py`: `SessionStore.open`, then `stage_stop`), PCM16
in 1 s `AudioChunk`s on `audio:{sid}`, `AudioStop`, and it is then listed in `/api/sessions` with its
transcript and alerts. The file is stored in a temporary file while the request is read (bounded),
checked (it must open and decode to audio) before the 202, and decoded in a thread in the background,
a few seconds at a time, so memory does not grow with the recording's length.

**Flow control.** Audio goes in as fast as the pipeline takes it, never much faster: a chunk is
written only while `audio:{sid}` holds fewer than `AUDIO_AHEAD` entries (the VAD trims what it has
checkpointed; XLEN is a coarse measure, see `has_room`) and while a transcriber is idle: the finals
pending in or waiting for the `transcriber` group, any session's, are fewer than the live workers
(the group's consumers seen in the last 30 s) plus `SEGMENT_BACKLOG` (0). Uploads fill the
transcribers' idle time; a live lecture's final waits behind at most the upload utterance being
decoded, not minutes of queued work. A chunk held back by the transcribers longer than `MAX_HOLD_S`
goes in anyway (the VAD ends a session that has had no audio for 120 s); no room at all for
`STALL_S` fails the upload (and stops its session with the audio fed so far).

Progress is in Redis, `upload:{sid}` (hash: `status`, `duration_s`, `fed_s`, `updated`, `error`,
`warning`, `filename`, kept as long as the session), so any gateway replica answers the GET. A
gateway that stops while feeding leaves the session to the VAD's idle timeout; its upload reads
`failed` once its progress is `STALE_S` old.
"""
