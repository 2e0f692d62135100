"""The utterance segmenter on synthetic probabilities, and streaming Silero on real audio."""

from __future__ import annotations

import itertools
import json
import wave

import numpy as np
import pytest

from services.vad.segmenter import Segmenter, SegmenterConfig
from services.vad.silero import WINDOW, StreamingVad, load_model
from shared.settings import VadSettings
from tests.util import DATA

CFG = SegmenterConfig(
    threshold=0.5, neg_threshold=0.35, min_silence_s=0.4, pad_s=0.2, min_speech_s=0.25, short_pauses=[]
)
SR = 16000


def run(probs: list[float], cfg: SegmenterConfig = CFG, chunk_windows: int = 3, flush: bool = True):
    """Feed probabilities (one per window) with audio whose sample value is its window number."""
    pcm = np.repeat(np.arange(len(probs), dtype=np.int16), WINDOW)
    seg, out = Segmenter(cfg), []
    for i in range(0, len(probs), chunk_windows):
        out += seg.push(
            pcm[i * WINDOW : (i + chunk_windows) * WINDOW], np.array(probs[i : i + chunk_windows])
        )
    if flush:
        out += seg.flush()
    return out


def windows(seconds: float) -> int:
    return int(round(seconds * SR / WINDOW))


def pattern(*parts: tuple[float, float]) -> list[float]:
    return [p for prob, secs in parts for p in [prob] * windows(secs)]


def test_pause_longer_than_min_silence_cuts_two_utterances_with_padding() -> None:
    probs = pattern((0.0, 1.0), (0.9, 1.0), (0.1, 0.6), (0.9, 1.0), (0.0, 1.0))
    utts = run(probs)
    assert [u.index for u in utts] == [0, 1]
    first_speech = windows(1.0) * WINDOW
    assert utts[0].start == first_speech - int(0.2 * SR)
    assert utts[0].end == windows(2.0) * WINDOW + int(0.2 * SR)  # pause start + pad
    assert utts[0].audio[0] == windows(1.0) - 7  # the audio really is that stretch of samples
    assert utts[1].start >= utts[0].end


def test_an_utterance_says_where_its_speech_began_and_ended_inside_the_padding() -> None:
    utts = run(pattern((0.0, 1.0), (0.9, 1.0), (0.1, 0.6), (0.9, 1.0), (0.0, 1.0)))
    assert utts[0].speech_start == windows(1.0) * WINDOW
    assert utts[0].speech_end == windows(2.0) * WINDOW  # the first window of the pause
    assert utts[0].start < utts[0].speech_start < utts[0].speech_end < utts[0].end
    assert utts[1].speech_start == windows(2.6) * WINDOW


def test_a_pause_gives_the_utterance_as_it_would_close_in_it() -> None:
    """paused(): from 0.15 s into a pause on, the open utterance as the pause closes it (its audio a
    prefix of the final's, same start, same speech end); nothing before, after the close, in speech."""
    probs = pattern((0.0, 1.0), (0.9, 1.0), (0.1, 0.6), (0.9, 1.0), (0.0, 1.0))
    pcm = np.repeat(np.arange(len(probs), dtype=np.int16), WINDOW)
    seg, finals, seen = Segmenter(CFG), [], []
    for i, p in enumerate(probs):
        finals += seg.push(pcm[i * WINDOW : (i + 1) * WINDOW], np.array([p]))
        seen.append(seg.paused(0.15))
    pause = windows(2.0) * WINDOW
    first = next(i for i, got in enumerate(seen) if got is not None)
    assert first == windows(2.0) + 4  # 5 windows (0.16 s) of the pause heard
    start, began, audio = seen[first]
    assert (start, began) == (finals[0].start, finals[0].speech_end) == (finals[0].start, pause)
    assert np.array_equal(audio, finals[0].audio[: len(audio)]) and len(audio) < len(finals[0].audio)
    assert start + len(audio) == pause + int(0.15 * SR)  # 0.15 s of the pause, however much was heard
    assert all(got is None for got in seen[: windows(2.0) + 4])  # speech, or the pause too short
    assert seen[windows(2.0) + 12] is None  # closed at 0.4 s
    assert seen[windows(3.0)] is None  # the next utterance, in speech
    blip = Segmenter(CFG)
    blip.push(np.zeros(windows(0.3) * WINDOW, np.int16), np.array(pattern((0.9, 0.1), (0.0, 0.2))))
    assert blip.utt_start is not None and blip.paused(0.15) is None  # 0.1 s of speech: not kept


def test_a_cut_side_has_no_speech_edge() -> None:
    cfg = SegmenterConfig(max_utterance_s=4.0, min_silence_s=0.4, pad_s=0.2)
    utts = run(pattern((0.0, 0.5), (0.9, 2.6)) + [0.36] + pattern((0.9, 3.0), (0.0, 1.0)), cfg)
    assert utts[0].speech_start == windows(0.5) * WINDOW and utts[0].speech_end is None
    assert utts[1].speech_start is None and utts[1].speech_end is not None


def test_audio_that_ends_mid_speech_has_no_speech_end() -> None:
    utts = run(pattern((0.0, 0.5), (0.9, 1.0)))
    assert len(utts) == 1 and utts[0].speech_end is None


def test_short_pause_does_not_cut() -> None:
    utts = run(pattern((0.0, 1.0), (0.9, 1.0), (0.1, 0.25), (0.9, 1.0), (0.0, 1.0)))
    assert len(utts) == 1
    assert utts[0].end - utts[0].start > 2.2 * SR


SHORT = SegmenterConfig(min_silence_s=0.4, pad_s=0.2, short_pauses=[(3.0, 0.1), (6.0, 0.064)])


def test_a_long_utterance_closes_in_a_short_pause() -> None:
    """Run-on speech: 0.15 s pauses after 1 and 3.7 s of speech, then a 2-window dip 6.5 s later. The
    first pause is too early to close anything; the second closes the utterance 0.1 s into it (4
    windows), the dip closes the next one, which had run 6 s by then. Nothing lost between them,
    nothing in two."""
    speech = [(0.9, 1.0), (0.1, 0.15), (0.9, 2.5), (0.1, 0.15), (0.9, 6.5), (0.2, 0.064)]
    probs = pattern((0.0, 0.5), *speech, (0.9, 1.0), (0.0, 1.0))
    utts = run(probs, SHORT, chunk_windows=1)
    pause2 = (windows(0.5) + windows(1.0) + windows(0.15) + windows(2.5)) * WINDOW
    assert len(utts) == 3
    assert utts[0].speech_end == pause2 and utts[0].end == pause2 + 4 * WINDOW
    assert utts[1].start == utts[0].end  # the rest of the pause is the next one's padding
    assert utts[1].speech_end is not None and utts[1].end - utts[1].speech_end == 2 * WINDOW
    assert utts[2].start == utts[1].end
    assert [u.continues for u in utts] == [True, True, False]  # the last closed in a long pause
    assert run(probs, CFG) and len(run(probs, CFG)) == 1  # without short pauses: one utterance


def test_a_short_pause_close_learns_whether_the_speaker_went_on() -> None:
    """A 4 s utterance closes 0.1 s into each pause; whether speech came back before 0.4 s (run-on) or
    not (a real pause) is known from the windows after, in `take_joins`, and survives a checkpoint."""
    probs = pattern((0.0, 0.5), (0.9, 4.0), (0.1, 0.2), (0.9, 4.0), (0.1, 1.0), (0.9, 1.0), (0.0, 1.0))
    pcm = np.repeat(np.arange(len(probs), dtype=np.int16), WINDOW)
    seg, utts, joins = Segmenter(SHORT), [], []
    for i, p in enumerate(probs):
        utts += seg.push(pcm[i * WINDOW : (i + 1) * WINDOW], np.array([p]))
        if i == windows(4.5) + 5:  # in the first pause, after its close: not known yet
            assert utts and seg.take_joins() == [] and seg.pending_join is not None
            meta, buf = seg.state()
            seg = Segmenter.from_state(SHORT, json.loads(json.dumps(meta)), buf)
        joins += seg.take_joins()
    utts += seg.flush()
    joins += seg.take_joins()
    assert [u.continues for u in utts] == [True, True, False]
    assert joins == [(0, True), (1, False)]


def test_short_pauses_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAD_SHORT_PAUSES", "3:0.1, 6:0.064")
    assert VadSettings().vad_short_pauses == [(3.0, 0.1), (6.0, 0.064)]
    assert SegmenterConfig.from_settings(VadSettings()).short_pauses == [(3.0, 0.1), (6.0, 0.064)]
    monkeypatch.setenv("VAD_SHORT_PAUSES", "")
    assert VadSettings().vad_short_pauses == []
    monkeypatch.setenv("VAD_SHORT_PAUSES", "3:0.1,6")
    with pytest.raises(ValueError, match="after:pause"):
        VadSettings()


def test_uncertain_probabilities_between_thresholds_keep_the_utterance_open() -> None:
    utts = run(pattern((0.0, 0.5), (0.9, 0.5), (0.4, 1.0), (0.9, 0.5), (0.0, 1.0)))
    assert len(utts) == 1


def test_blip_shorter_than_min_speech_is_dropped() -> None:
    assert run(pattern((0.0, 1.0), (0.9, 0.1), (0.0, 1.0))) == []


def test_silence_and_noise_give_nothing() -> None:
    assert run(pattern((0.0, 5.0), (0.3, 5.0))) == []


def test_long_utterance_is_split_at_its_quietest_window() -> None:
    cfg = SegmenterConfig(max_utterance_s=4.0, min_silence_s=0.4, pad_s=0.2, short_pauses=[])
    probs = pattern((0.0, 0.5), (0.9, 2.6)) + [0.36] + pattern((0.9, 3.0), (0.0, 1.0))
    dip = windows(0.5) + windows(2.6)
    utts = run(probs, cfg)
    assert len(utts) == 2
    assert utts[0].end == dip * WINDOW + WINDOW // 2
    assert utts[1].start == utts[0].end  # contiguous: nothing lost, nothing twice
    assert all(len(u.audio) <= 4.0 * SR + WINDOW for u in utts)
    assert [u.continues for u in utts] == [True, False]  # split mid-speech, then a pause


def test_flush_closes_the_open_utterance() -> None:
    probs = pattern((0.0, 0.5), (0.9, 1.0))
    assert run(probs, flush=False) == []
    utts = run(probs, flush=True)
    assert len(utts) == 1 and utts[0].end == len(probs) * WINDOW


def test_chunking_does_not_change_the_cut() -> None:
    probs = pattern((0.0, 1.0), (0.9, 1.0), (0.1, 0.6), (0.9, 1.0), (0.0, 1.0))
    a = [(u.start, u.end) for u in run(probs, chunk_windows=1)]
    b = [(u.start, u.end) for u in run(probs, chunk_windows=7)]
    assert a == b


def read_wav(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def silero_utterances(pcm: np.ndarray, frame: int = 1600, cfg: SegmenterConfig | None = None) -> list:
    vad, seg, out = StreamingVad(load_model()), Segmenter(cfg or SegmenterConfig()), []
    for i in range(0, len(pcm), frame):
        chunk = pcm[i : i + frame]
        out += seg.push(chunk, vad.push(chunk.astype(np.float32) / 32768))
    return out + seg.flush()


def test_real_speech_between_silences_is_one_utterance_or_pieces_of_it() -> None:
    """One read sentence of 7 s ("Printing, then, for our purpose, ..."): one utterance when every
    pause must last 0.4 s; with the default short pauses, pieces cut in its pauses after 3 s, end to
    end, over the same audio, each but the last marked as going on."""
    speech = read_wav(DATA / "real" / "LJ001-0009.wav")
    pcm = np.concatenate([np.zeros(SR, np.int16), speech, np.zeros(SR, np.int16)])
    (utt,) = silero_utterances(pcm, cfg=SegmenterConfig(short_pauses=[]))
    assert 0.5 * SR <= utt.start <= 1.1 * SR
    assert utt.end >= SR + len(speech) - 0.3 * SR
    pieces = silero_utterances(pcm)
    assert len(pieces) > 1 and all(len(p.audio) > 2.5 * SR for p in pieces[:-1])
    assert (pieces[0].start, pieces[-1].end) == (utt.start, utt.end)
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert [p.continues for p in pieces] == [True] * (len(pieces) - 1) + [False]


@pytest.mark.parametrize("kind", ["white", "hum", "silence"])
def test_real_vad_ignores_noise(kind: str) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(10 * SR) / SR
    x = {
        "white": rng.standard_normal(len(t)) * 0.05,
        "hum": 0.1 * np.sin(2 * np.pi * 50 * t),
        "silence": np.zeros(len(t)),
    }[kind]
    assert silero_utterances((x * 32767).astype(np.int16)) == []


def test_streaming_vad_matches_whole_file_and_any_framing(lecture1_audio: np.ndarray) -> None:
    pcm = lecture1_audio[: 20 * SR]
    a = [(u.start, u.end) for u in silero_utterances(pcm, 1600)]
    b = [(u.start, u.end) for u in silero_utterances(pcm, 999)]
    assert a == b and len(a) >= 3


def test_the_speech_edges_survive_a_checkpoint() -> None:
    probs = pattern((0.0, 1.0), (0.9, 1.0), (0.1, 0.6), (0.0, 0.5))
    pcm = np.repeat(np.arange(len(probs), dtype=np.int16), WINDOW)
    half = windows(1.5)
    seg = Segmenter(CFG)
    assert seg.push(pcm[: half * WINDOW], np.array(probs[:half])) == []
    meta, buf = seg.state()
    moved = Segmenter.from_state(CFG, json.loads(json.dumps(meta)), buf)
    (utt,) = moved.push(pcm[half * WINDOW :], np.array(probs[half:]))
    assert (utt.speech_start, utt.speech_end) == (windows(1.0) * WINDOW, windows(2.0) * WINDOW)
