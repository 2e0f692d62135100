"""Cutting a session's audio into utterances from per-window speech probabilities.

An utterance starts when a window's probability reaches `threshold`, ends once the probability has
stayed under `neg_threshold` for `min_silence_s` (or, once it is long, for the shorter pause of
`short_pauses`: run-on speech; whether the speaker then went on is known `min_silence_s` into the
pause, in `take_joins`), keeps `pad_s` of audio on both sides (never reaching back into the
utterance before it), and is split at its quietest window when it grows past `max_utterance_s`
(or, asked by the transcriber, near a sentence's end: `cut_near`). Bursts with less than
`min_speech_s` of speech are dropped. Audio outside utterances is never emitted. All positions are
in samples of session audio (16 kHz), counted from the session's first sample. An utterance also
says where the VAD heard its speech begin and end inside the padding (`speech_start`,
`speech_end`), when it did: not for a side that was cut in the middle of speech.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from services.vad.silero import WINDOW
from shared.messages import SAMPLE_RATE
from shared.settings import VadSettings


def _vad_default(name: str) -> float:
    """The default of the VadSettings field `vad_{name}` (one home for the numbers)."""
    return VadSettings.model_fields[f"vad_{name}"].default


@dataclass
class SegmenterConfig:
    """How utterances are cut: the VadSettings fields `vad_{name}` (VAD_THRESHOLD, ...), their defaults."""

    threshold: float = _vad_default("threshold")
    neg_threshold: float = _vad_default("neg_threshold")
    min_silence_s: float = _vad_default("min_silence_s")
    pad_s: float = _vad_default("pad_s")
    min_speech_s: float = _vad_default("min_speech_s")
    max_utterance_s: float = _vad_default("max_utterance_s")
    # (utterance length, pause that closes it from then on), seconds: run-on speech's short pauses
    short_pauses: list[tuple[float, float]] = field(
        default_factory=lambda: list(_vad_default("short_pauses"))
    )

    @classmethod
    def from_settings(cls, settings: VadSettings) -> SegmenterConfig:
        return cls(**{f.name: getattr(settings, f"vad_{f.name}") for f in fields(cls)})


@dataclass
class Utterance:
    index: int
    start: int  # first sample, in session samples
    audio: np.ndarray  # int16
    speech_start: int | None = None  # first speech window (None: the audio begins mid-speech, a cut)
    speech_end: int | None = None  # first window of the closing silence (None: ends mid-speech)
    # Closed in a short pause of run-on speech, or split mid-speech at max_utterance_s: what the
    # speaker says next may be the rest of its last sentence (the alerts read the two together).
    continues: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


@dataclass
class Segmenter:
    """Feed audio and its window probabilities in order; get finished utterances back."""

    cfg: SegmenterConfig = field(default_factory=SegmenterConfig)
    next_index: int = 0
    buf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    buf_start: int = 0  # session sample of buf[0]
    probs: list[float] = field(default_factory=list)  # per window since the utterance start window
    windows_done: int = 0  # windows whose probability has been consumed
    utt_start: int | None = None  # sample where the open utterance begins (padding included)
    speech_start: int = 0
    onset: int | None = None  # where the open utterance's speech began (None: it began at a cut)
    silence_since: int | None = None  # sample where the current pause began
    closed_at: int = 0  # where the last emitted utterance ended: the next one's padding starts no earlier
    # [utterance index, pause start] of an utterance closed in a short pause, until it is known
    # whether the speaker went on before VAD_MIN_SILENCE_S; then (index, went on) is in `joins`.
    pending_join: list[int] | None = None
    joins: list[tuple[int, bool]] = field(default_factory=list)

    def _s(self, seconds: float) -> int:
        return int(round(seconds * SAMPLE_RATE))

    def push(self, pcm: np.ndarray, probs: np.ndarray) -> list[Utterance]:
        """Append int16 audio and the probabilities of the windows it completed."""
        self.buf = np.concatenate([self.buf, pcm.astype(np.int16, copy=False)])
        out: list[Utterance] = []
        for p in probs:
            out.extend(self._window(float(p)))
        self._trim()
        return out

    def open_audio(self) -> tuple[int, np.ndarray] | None:
        """The open utterance so far (start sample, audio), for partial results."""
        if self.utt_start is None:
            return None
        return self.utt_start, self.buf[self.utt_start - self.buf_start :].copy()

    def paused(self, min_pause_s: float) -> tuple[int, int, np.ndarray] | None:
        """The open utterance as it would close in its current pause, once the pause has lasted
        `min_pause_s`: (start, where the pause began, its audio up to `min_pause_s` into the pause, or
        its padding if that is shorter). None without such a pause, or with too little speech to keep."""
        pause = self.silence_since
        if self.utt_start is None or pause is None:
            return None
        heard = self.windows_done * WINDOW
        if heard - pause < self._s(min_pause_s) or pause - self.speech_start < self._s(self.cfg.min_speech_s):
            return None
        end = self.early_end(pause, min_pause_s)
        return self.utt_start, pause, self.buf[self.utt_start - self.buf_start : end - self.buf_start].copy()

    def early_end(self, pause: int, pause_s: float) -> int:
        """Where the audio of an early final `pause_s` into the pause starting at `pause` ends."""
        return pause + min(self._s(pause_s), self._s(self.cfg.pad_s))

    def take_joins(self) -> list[tuple[int, bool]]:
        """(utterance index, whether speech went on right after it) for the utterances marked
        `continues`, as they became known since the last call."""
        joins, self.joins = self.joins, []
        return joins

    def flush(self) -> list[Utterance]:
        """End of audio: close the open utterance, if it holds enough speech."""
        if self.pending_join is not None:
            self.joins.append((self.pending_join[0], False))
            self.pending_join = None
        if self.utt_start is None:
            return []
        end = self.buf_start + len(self.buf)
        if self.silence_since is not None:
            end = min(end, self.silence_since + self._s(self.cfg.pad_s))
        return self._close(end, self.silence_since)

    def _window(self, p: float) -> list[Utterance]:
        w_start = self.windows_done * WINDOW
        w_end = w_start + WINDOW
        self.windows_done += 1
        if self.pending_join is not None:
            index, pause = self.pending_join
            if p >= self.cfg.threshold or w_end - pause >= self._s(self.cfg.min_silence_s):
                self.joins.append((index, p >= self.cfg.threshold))
                self.pending_join = None
        if self.utt_start is None:
            if p < self.cfg.threshold:
                return []
            self.utt_start = max(self.buf_start, self.closed_at, w_start - self._s(self.cfg.pad_s))
            self.speech_start = self.onset = w_start
            self.silence_since = None
            self.probs = []
        self.probs.append(p)
        if p >= self.cfg.threshold:
            self.silence_since = None
        elif p < self.cfg.neg_threshold and self.silence_since is None:
            self.silence_since = w_start
        if self.silence_since is not None and w_end - self.silence_since >= (need := self._min_silence()):
            end = min(w_end, self.silence_since + self._s(self.cfg.pad_s))
            return self._close(end, self.silence_since, continues=need < self._s(self.cfg.min_silence_s))
        if w_end - self.utt_start > self._s(self.cfg.max_utterance_s):
            return self._split()
        return []

    def _min_silence(self) -> int:
        """The pause that closes the open utterance: `min_silence_s`, or the shortest pause of
        `short_pauses` whose length the utterance had reached when this pause began. A lecturer who
        runs sentences together leaves pauses of 0.05-0.2 s between them, and the longer an
        utterance has gone on, the more a final waiting for a long pause costs."""
        assert self.utt_start is not None and self.silence_since is not None
        held = self.silence_since - self.utt_start
        pause = self.cfg.min_silence_s
        for after, short in self.cfg.short_pauses:
            if held >= self._s(after):
                pause = min(pause, short)
        return self._s(pause)

    def _close(self, end: int, speech_end: int | None, continues: bool = False) -> list[Utterance]:
        """Emit the open utterance as audio up to `end`; `speech_end`: where its silence began (None:
        the audio ended while speech went on); `continues`: closed in a short pause."""
        start = self.utt_start
        assert start is not None
        self.utt_start = None
        self.silence_since = None
        last_speech = end if speech_end is None else speech_end
        if last_speech - self.speech_start < self._s(self.cfg.min_speech_s):
            return []
        audio = self.buf[start - self.buf_start : end - self.buf_start].copy()
        utt = Utterance(self.next_index, start, audio, self.onset, speech_end, continues)
        if continues and speech_end is not None:
            self.pending_join = [utt.index, speech_end]
        self.next_index += 1
        self.closed_at = end
        return [utt]

    def _split(self) -> list[Utterance]:
        """Cut a too-long utterance at its quietest window in the second half; keep the rest open."""
        half = len(self.probs) // 2
        return self._cut_at(half + int(np.argmin(self.probs[half:])), continues=True)

    def cut_near(self, at: int, before: int, after: int, min_len: int) -> list[Utterance]:
        """Close the open utterance in its quietest window (least energy) within `before` samples
        before and `after` after session sample `at`, among the windows already through the VAD, at
        least `min_len` samples into the utterance; the audio after that point is the next utterance,
        open. Nothing when no utterance is open or no window qualifies."""
        if self.utt_start is None:
            return []
        first_window = self.windows_done - len(self.probs)
        lo = max(at - before, self.utt_start + min_len, first_window * WINDOW)
        hi = min(at + after, self.windows_done * WINDOW)
        w_lo, w_hi = -(-lo // WINDOW), hi // WINDOW  # whole windows inside [lo, hi)
        if w_hi <= w_lo:
            return []
        a = self.buf[w_lo * WINDOW - self.buf_start : w_hi * WINDOW - self.buf_start].astype(np.float32)
        energy = np.square(a).reshape(w_hi - w_lo, WINDOW).mean(axis=1)
        return self._cut_at(w_lo + int(np.argmin(energy)) - first_window)

    def _cut_at(self, quiet: int, continues: bool = False) -> list[Utterance]:
        """Close the open utterance in the middle of its window `quiet` (an index into `probs`); the
        rest, from that sample on, stays open as the next utterance: no sample in both, none lost.
        `continues`: a split of a long utterance, not a sentence's end."""
        assert self.utt_start is not None
        first_window = self.windows_done - len(self.probs)
        cut = (first_window + quiet) * WINDOW + WINDOW // 2
        start = self.utt_start
        audio = self.buf[start - self.buf_start : cut - self.buf_start].copy()
        utt = Utterance(self.next_index, start, audio, self.onset, continues=continues)
        if continues:
            self.joins.append((utt.index, True))  # cut mid-speech: the speaker goes on
        self.next_index += 1
        self.utt_start = cut
        self.speech_start = cut
        self.onset = None
        self.probs = self.probs[quiet + 1 :]
        return [utt]

    def _trim(self) -> None:
        """Keep only what an utterance may still need: the open one, or the pre-roll padding."""
        keep_from = self.utt_start
        if keep_from is None:
            keep_from = self.windows_done * WINDOW - self._s(self.cfg.pad_s)
        drop = max(0, keep_from - self.buf_start)
        if drop:
            self.buf = self.buf[drop:]
            self.buf_start += drop

    def state(self) -> tuple[dict, bytes]:
        """(JSON-able fields, buffered audio) — everything needed to carry on elsewhere."""
        meta = {
            "next_index": self.next_index,
            "buf_start": self.buf_start,
            "probs": self.probs,
            "windows_done": self.windows_done,
            "utt_start": self.utt_start,
            "speech_start": self.speech_start,
            "onset": self.onset,
            "silence_since": self.silence_since,
            "closed_at": self.closed_at,
            "pending_join": self.pending_join,
            "joins": self.joins,
        }
        return meta, self.buf.tobytes()

    @classmethod
    def from_state(cls, cfg: SegmenterConfig, meta: dict, buf: bytes) -> Segmenter:
        seg = cls(cfg)
        for key, value in meta.items():
            setattr(seg, key, value)
        seg.joins = [(int(i), bool(j)) for i, j in seg.joins]
        seg.buf = np.frombuffer(buf, np.int16).copy()
        return seg
