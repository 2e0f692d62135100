"""Sentence finals, the VAD's half: closing the open utterance where the transcriber says a sentence
ended (`SentenceCut`, see services/transcriber/sentences.py).

The request comes in the session's `audio:{sid}` stream, after the audio of the partial it was found
in, so the VAD handles it at the same point of the audio every time (also when another replica
resumes the session from its checkpoint). It is for the open utterance only: one already closed (a
pause, a split or an earlier cut came first) or an unknown segment is ignored, and so is a time
outside the open utterance's audio. The partial's `rev` is only logged: a segment's audio only grows
from a fixed start, so the time found in any of its partials holds for it while it is open, and
after a takeover the new owner numbers its partials anew. The utterance is closed at the quietest 32 ms window within 0.2 s before to
0.35 s after the word's end (word alignment is good to about a tenth of a second; a run-on pause is
~0.1 s of low energy), not before 1 s into the utterance and not past the audio the VAD has run
through; that audio is a final like any other, and what follows is the next segment, open, whose
partials go on. Every sample is in exactly one of the two, the segment numbers stay consecutive.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.vad.segmenter import Utterance
from services.vad.silero import WINDOW
from shared.messages import SAMPLE_RATE, Msg, SentenceCut

if TYPE_CHECKING:
    from services.vad.worker import SessionState

log = logging.getLogger(__name__)
SEARCH_BEFORE_S = 0.2
SEARCH_AFTER_S = 0.35
MIN_UTTERANCE_S = 1.0
PAUSE_PARTIAL_S = 0.5
PAUSE_LOOKBACK_S = 0.15


def pause_partial(state: SessionState, grown: int, on: bool) -> bool:
    """Whether to send a partial now, before the partial interval is up: the open utterance grew by
    PAUSE_PARTIAL_S since the last partial and that stretch (from PAUSE_LOOKBACK_S before it) holds
    a pause (a window under Silero's lower threshold: also the ~0.1 s between run-on sentences).
    So a pause gets a partial as it begins, holding the sentence's last word whole, and another
    PAUSE_PARTIAL_S later, holding the next sentence's first word: the two can agree on the
    sentence's end a second sooner than the interval's own partials would. Pauses inside sentences
    cost a partial or two more each; a pause that ends the utterance, one."""
    seg = state.segmenter
    if not on or grown < PAUSE_PARTIAL_S * SAMPLE_RATE or not seg.probs:
        return False
    first_window = seg.windows_done - len(seg.probs)
    since = max(0, (state.partial_end - round(PAUSE_LOOKBACK_S * SAMPLE_RATE)) // WINDOW - first_window)
    return min(seg.probs[since:], default=1.0) < seg.cfg.neg_threshold


def apply_cut(state: SessionState, msg: Msg | None) -> list[Utterance]:
    """The utterance closed by `msg` if it is a `SentenceCut` (none if the request does not apply)."""
    if not isinstance(msg, SentenceCut):
        return []
    seg = state.segmenter
    open_segment = state.index(seg.next_index) if seg.utt_start is not None else None
    if msg.segment != open_segment:
        log.info(
            "sid=%s seg=%d sentence cut ignored: segment not open (open: %s)",
            state.sid,
            msg.segment,
            open_segment,
        )
        return []
    utts = seg.cut_near(
        round(msg.at * SAMPLE_RATE),
        round(SEARCH_BEFORE_S * SAMPLE_RATE),
        round(SEARCH_AFTER_S * SAMPLE_RATE),
        round(MIN_UTTERANCE_S * SAMPLE_RATE),
    )
    if not utts:
        log.info(
            "sid=%s seg=%d sentence cut ignored: at=%.2f outside the open audio",
            state.sid,
            msg.segment,
            msg.at,
        )
        return []
    log.info(
        "sid=%s seg=%d sentence cut rev=%d asked_at=%.2f cut_at=%.2f",
        state.sid,
        msg.segment,
        msg.rev,
        msg.at,
        utts[0].end / SAMPLE_RATE,
    )
    return utts
