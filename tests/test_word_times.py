"""A final's word times: Whisper's alignment in session seconds, its edges moved to the VAD's."""

from __future__ import annotations

from services.transcriber.types import Piece
from services.transcriber.worker import session_words, timed_span
from shared.messages import SegmentJob, SessionConfig

# An utterance of 10.0-14.5 s of session audio: 0.3 s of padding before the speech, which the VAD
# heard end at 14.2 s. Whisper's words start in the padding and end 0.2 s short of the speech.
WORDS = [(0.0, 0.6, " Proteins"), (0.6, 1.0, " fold"), (1.0, 1.1, " "), (1.1, 4.0, " everywhere.")]


def job(**edges: float | None) -> SegmentJob:
    return SegmentJob(sid="s", segment=3, start=10.0, end=14.5, config=SessionConfig(), **edges)


def pieces() -> list[Piece]:
    return [Piece(0.0, 4.0, "Proteins fold everywhere.", words=list(WORDS))]


def test_without_the_vads_edges_the_alignment_is_kept() -> None:
    assert timed_span(job(), pieces()) == (10.0, 14.0)
    assert session_words(job(), pieces()) == [
        (10.0, 10.6, "Proteins"),
        (10.6, 11.0, "fold"),
        (11.1, 14.0, "everywhere."),
    ]


def test_the_first_start_and_the_last_end_are_the_speechs() -> None:
    j = job(speech_start=10.3, speech_end=14.2)
    assert timed_span(j, pieces()) == (10.3, 14.2)
    words = session_words(j, pieces())
    assert words is not None
    assert words[0] == (10.3, 10.6, "Proteins") and words[-1] == (11.1, 14.2, "everywhere.")
    assert words[1] == (10.6, 11.0, "fold")  # inner words are the alignment's


def test_an_edge_never_moves_a_word_inside_out_or_past_the_audio() -> None:
    late = job(speech_start=10.9, speech_end=14.9)  # onset after the first word's end; end past the audio
    words = session_words(late, pieces())
    assert words is not None
    assert words[0] == (10.6, 10.6, "Proteins")
    assert words[-1][1] == 14.5
    # A word aligned past the VAD's end keeps its own end (the VAD missed a soft tail).
    early = job(speech_end=13.5)
    assert timed_span(early, pieces()) == (10.0, 14.0)


def test_no_words_means_the_utterances_span() -> None:
    assert timed_span(job(speech_start=10.3, speech_end=14.2), [Piece(0.0, 4.0, "")]) == (10.0, 14.5)
    assert session_words(job(), [Piece(0.0, 4.0, "")]) is None
