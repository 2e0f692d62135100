"""The whole pipeline on real parts: real Redis, every service, the real model, the real WebSocket.

A synthetic lecture (tests/data/lecture1, built by make_dev_lecture.py) is streamed faster than
real time; the transcript, the alerts and the end of the session are checked against its truth.
"""

from __future__ import annotations

import asyncio

import jiwer
import pytest

from tests.client import finals, stream
from tests.transcripts import sentence_parts, words
from tests.util import Lecture, Stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lecture_run(stack: Stack, lecture1: Lecture) -> list[dict]:
    start = {"type": "start", "language": "en", "keywords": ["membrane"], "timezone": "UTC"}
    return asyncio.run(stream(stack.ws, lecture1.pcm, start=start))


def test_session_then_transcripts_then_end(lecture_run: list[dict]) -> None:
    assert lecture_run[0]["type"] == "session" and len(lecture_run[0]["session"]) >= 16
    assert lecture_run[-1] == {"type": "end"}
    assert not [m for m in lecture_run if m["type"] == "error"]
    segs = [m["segment"] for m in finals(lecture_run)]
    assert segs == list(range(len(segs))), "one final per utterance, numbered from 0"


def overlap(a: dict, b: dict) -> float:
    return max(0.0, min(a["end"], b["end"]) - max(a["start"], b["start"]))


def test_one_utterance_per_spoken_sentence(lecture_run: list[dict], lecture1: Lecture) -> None:
    """Every final within one spoken sentence, every sentence covered: one utterance per sentence, or
    two where Whisper's punctuation makes a sentence final split it (sentence_parts)."""
    fs = finals(lecture_run)
    assert len(lecture1.speech) <= len(fs) <= len(lecture1.speech) + 2
    parts = sentence_parts(fs, lecture1.speech)
    for i, truth in enumerate(lecture1.speech):
        for f in parts[i]:
            best = max(lecture1.truth["segments"], key=lambda s: overlap(f, s))
            assert best is truth, (f, truth)
            assert f["end"] - f["start"] < truth["end"] - truth["start"] + 1.0


def test_a_final_spans_its_speech_not_the_padding_around_it(
    lecture_run: list[dict], lecture1: Lecture
) -> None:
    """A whole sentence's final starts where its speech does (the VAD's onset, not the 0.3 s of
    padding before it that Whisper's first word is aligned into) and ends no earlier than the speech
    (espeak leaves about 0.4 s of silence at the end of each sentence in the truth)."""
    parts = sentence_parts(finals(lecture_run), lecture1.speech)
    whole = [(parts[i][0], truth) for i, truth in enumerate(lecture1.speech) if len(parts[i]) == 1]
    assert len(whole) >= len(lecture1.speech) - 2
    for f, truth in whole:
        assert f["start"] >= truth["start"] - 0.15, (f, truth)
        assert f["end"] >= truth["end"] - 0.5, (f, truth)
        # The words (to 10 ms) have the same edges.
        assert abs(f["words"][0][0] - f["start"]) <= 0.01 and abs(f["words"][-1][1] - f["end"]) <= 0.01


def test_transcript_has_the_known_words(lecture_run: list[dict], lecture1: Lecture) -> None:
    hyp = " ".join(f["text"] for f in finals(lecture_run))
    ref = " ".join(s["text"] for s in lecture1.speech)
    wer = jiwer.wer(" ".join(words(ref)), " ".join(words(hyp)))
    assert wer < 0.3, (wer, hyp)
    for w in ("mitochondria", "membrane", "exam", "december", "quiz", "cancelled", "hypothesis"):
        assert w in words(hyp), w


def test_nothing_transcribed_in_noise(lecture_run: list[dict], lecture1: Lecture) -> None:
    for f in finals(lecture_run):
        if not f["text"]:
            continue
        for n in lecture1.noise:
            overlap = min(f["end"], n["end"]) - max(f["start"], n["start"])
            assert overlap <= 0.3, (f, n)


def test_every_announcement_alerts_and_plain_sentences_do_not(
    lecture_run: list[dict], lecture1: Lecture
) -> None:
    alerts = [m for m in lecture_run if m["type"] == "alert" and m["category"] != "custom"]
    expected = lecture1.truth["alerts"]
    assert sorted(a["category"] for a in alerts) == sorted(e["category"] for e in expected)
    for e in expected:
        assert any(a["category"] == e["category"] and abs(a["start"] - e["start"]) < 1.0 for a in alerts), e
    exam = next(a for a in alerts if a["category"] == "exam")
    assert exam["date"] is not None and exam["date"].endswith("-12-09")


def test_custom_keyword_alerts(lecture_run: list[dict]) -> None:
    custom = [m for m in lecture_run if m["type"] == "alert" and m["category"] == "custom"]
    assert custom and all("membrane" in a["text"].lower() for a in custom)


def test_two_sessions_at_once_get_only_their_own_events(stack: Stack, lecture1: Lecture) -> None:
    pcm = lecture1.pcm[: 25 * 32000]

    async def both() -> list[list[dict]]:
        return await asyncio.gather(stream(stack.ws, pcm), stream(stack.ws, b"\x00\x00" * 16000 * 3))

    speech, silence = asyncio.run(both())
    assert len(finals(speech)) == 4
    assert [m["type"] for m in silence] == ["session", "end"], (
        "silence gets no transcript, nor others' events"
    )
