"""The VAD's half of sentence finals: the segmenter closes the open utterance near a time it is given
(services/vad/segmenter.py `cut_near`), and the worker's rule for which requests apply
(services/vad/sentences.py)."""

from __future__ import annotations

import numpy as np

from services.vad.segmenter import Segmenter, SegmenterConfig
from services.vad.sentences import apply_cut, pause_partial
from services.vad.silero import WINDOW
from shared.messages import SentenceCut, StopMessage

SR = 16000
CFG = SegmenterConfig(min_silence_s=0.4, pad_s=0.2, max_utterance_s=20.0)


def speech(seconds: float, quiet: list[tuple[float, float]], seed: int = 1) -> np.ndarray:
    """Loud noise standing for speech, with quiet stretches (start, end in seconds)."""
    x = np.random.default_rng(seed).normal(0, 3000, int(seconds * SR)).astype(np.int16)
    for a, b in quiet:
        x[int(a * SR) : int(b * SR)] //= 100
    return x


def fed(audio: np.ndarray, lead_s: float = 1.0, prob: float = 0.9) -> Segmenter:
    """A segmenter that has seen `lead_s` of silence, then `audio` judged speech throughout (a run-on
    pause of 0.1 s never brings Silero under its thresholds for 0.4 s)."""
    seg = Segmenter(CFG)
    lead = np.zeros(int(lead_s * SR) // WINDOW * WINDOW, np.int16)
    seg.push(lead, np.zeros(len(lead) // WINDOW))
    pcm = audio[: len(audio) // WINDOW * WINDOW]
    for i in range(0, len(pcm), 10 * WINDOW):
        chunk = pcm[i : i + 10 * WINDOW]
        assert seg.push(chunk, np.full(len(chunk) // WINDOW, prob)) == []
    return seg


def test_cut_at_the_quiet_window_near_the_time_nothing_lost_nothing_twice() -> None:
    audio = speech(8.0, quiet=[(3.50, 3.62)])
    seg = fed(audio)
    start = seg.utt_start
    whole = seg.open_audio()
    assert whole is not None
    utts = seg.cut_near(int(4.45 * SR), before=int(0.2 * SR), after=int(0.35 * SR), min_len=SR)
    assert [u.index for u in utts] == [0]
    cut = utts[0].end
    assert 4.50 * SR <= cut <= 4.62 * SR  # inside the quiet stretch (1 s of lead-in before the audio)
    assert utts[0].start == start
    rest = seg.flush()
    assert [u.index for u in rest] == [1]
    assert rest[0].start == cut  # contiguous
    assert np.array_equal(np.concatenate([utts[0].audio, rest[0].audio]), whole[1][: rest[0].end - start])


def test_the_rest_stays_open_and_grows() -> None:
    seg = fed(speech(6.0, quiet=[(2.5, 2.6)]))
    (first,) = seg.cut_near(int(3.55 * SR), int(0.2 * SR), int(0.35 * SR), SR)
    opened = seg.open_audio()
    assert opened is not None and opened[0] == first.end
    more = speech(1.0, quiet=[], seed=2)[: 10 * WINDOW]
    seg.push(more, np.full(10, 0.9))
    assert seg.open_audio()[1].size == opened[1].size + more.size  # type: ignore[index]


def test_no_cut_too_early_past_the_audio_or_without_an_open_utterance() -> None:
    seg = fed(speech(4.0, quiet=[(0.3, 0.4)]))
    assert seg.cut_near(int(1.35 * SR), int(0.2 * SR), int(0.35 * SR), SR) == []  # < 1 s in
    assert seg.cut_near(int(9.0 * SR), int(0.2 * SR), int(0.35 * SR), SR) == []  # audio not there yet
    idle = Segmenter(CFG)
    assert idle.cut_near(SR, 0, SR, 0) == []


def test_checkpointed_after_a_cut_it_goes_on_identically() -> None:
    audio = speech(9.0, quiet=[(3.0, 3.1), (6.0, 6.1)])
    a = fed(audio[: 5 * SR])
    a.cut_near(int(4.0 * SR), int(0.2 * SR), int(0.35 * SR), SR)
    meta, buf = a.state()
    b = Segmenter.from_state(CFG, meta, buf)
    tail = audio[5 * SR : 9 * SR]
    tail = tail[: len(tail) // WINDOW * WINDOW]
    probs = np.full(len(tail) // WINDOW, 0.9)
    for seg in (a, b):
        seg.push(tail, probs)
    ua = a.cut_near(int(7.0 * SR), int(0.2 * SR), int(0.35 * SR), SR) + a.flush()
    ub = b.cut_near(int(7.0 * SR), int(0.2 * SR), int(0.35 * SR), SR) + b.flush()
    assert [(u.index, u.start, u.end) for u in ua] == [(u.index, u.start, u.end) for u in ub]
    assert [u.index for u in ua] == [1, 2]


class State:
    """What `apply_cut` reads of the worker's SessionState."""

    def __init__(self, segmenter: Segmenter, extra: int = 0) -> None:
        self.sid, self.segmenter, self.extra, self.partial_end = "s1", segmenter, extra, 0

    def index(self, utt_index: int) -> int:
        return utt_index + self.extra


def test_a_request_applies_to_the_open_segment_only() -> None:
    state = State(fed(speech(8.0, quiet=[(3.5, 3.6)])))
    cut = SentenceCut(sid="s1", segment=0, rev=3, at=4.5)
    assert apply_cut(state, StopMessage()) == []  # type: ignore[arg-type]
    assert apply_cut(state, cut.model_copy(update={"segment": 1})) == []  # type: ignore[arg-type]
    (utt,) = apply_cut(state, cut)  # type: ignore[arg-type]
    assert utt.index == 0
    assert apply_cut(state, cut) == []  # type: ignore[arg-type]  # segment 0 is closed now
    assert apply_cut(state, cut.model_copy(update={"segment": 1, "at": 30.0})) == []  # type: ignore[arg-type]


def test_segment_numbers_count_the_voice_locks_extra_pieces() -> None:
    state = State(fed(speech(8.0, quiet=[(3.5, 3.6)])), extra=2)
    assert apply_cut(state, SentenceCut(sid="s1", segment=0, rev=1, at=4.5)) == []  # type: ignore[arg-type]
    assert len(apply_cut(state, SentenceCut(sid="s1", segment=2, rev=1, at=4.5))) == 1  # type: ignore[arg-type]


def test_a_partial_comes_early_only_after_a_pause_since_the_last_one() -> None:
    seg = fed(speech(4.0, quiet=[]))  # 1 s of lead-in silence, then 4 s judged speech throughout
    state = State(seg)
    state.partial_end = int(4.0 * SR)
    grown = int(0.6 * SR)
    assert not pause_partial(state, grown, on=True)  # type: ignore[arg-type]  # no pause since
    dip = speech(0.6, quiet=[])[: 18 * WINDOW]
    seg.push(dip, np.array([0.9] * 6 + [0.2] * 3 + [0.9] * 9))  # a 0.1 s pause, speech again
    assert pause_partial(state, grown, on=True)  # type: ignore[arg-type]
    assert not pause_partial(state, int(0.3 * SR), on=True)  # type: ignore[arg-type]  # too soon
    assert not pause_partial(state, grown, on=False)  # type: ignore[arg-type]  # SENTENCE_FINALS=0
    state.partial_end = seg.windows_done * WINDOW  # sent after the pause
    assert not pause_partial(state, grown, on=True)  # type: ignore[arg-type]
