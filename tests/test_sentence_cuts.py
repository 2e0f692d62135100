"""The transcriber's half of sentence finals (services/transcriber/sentences.py) on the real model
(tiny.en) and a real Redis: the time of a sentence's last word found by word alignment, and the cut
request written once, into the session's audio stream only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import redis.asyncio as aioredis

from services.transcriber.agreement import Agreement
from services.transcriber.backends import LocalBackend
from services.transcriber.sentences import SentenceCuts, align_end, word_end
from shared import keys
from shared.messages import AudioChunk, SegmentJob, SentenceCut, SessionConfig, from_fields
from shared.settings import TranscriberSettings
from shared.streams import xadd
from testkit.truth import read_wav
from tests.util import DATA, load_lecture

SR = 16000
Sentences = tuple[list[str], list[str], list[float]]
START = 2.3  # the partial's audio starts here in runon1 (the first utterance starts at 2.36)


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(TranscriberSettings())


@pytest.fixture(scope="module")
def sentences() -> Sentences:
    """The first two sentences of runon1 as words, and the ends of the first three (session s)."""
    speech = load_lecture("runon1").speech
    return speech[0]["text"].split(), speech[1]["text"].split(), [s["end"] for s in speech[:3]]


@pytest.fixture
def s(redis_url: str) -> TranscriberSettings:
    """The transcriber's settings, its sessions' audio streams under a prefix of these tests' own."""
    return TranscriberSettings(redis_url=redis_url, audio_prefix="audio:cuts:")


async def with_audio(r: aioredis.Redis, s: TranscriberSettings, sid: str) -> None:
    """The session's audio stream, as the gateway would have made it (a cut is asked only into one)."""
    await xadd(r, s.audio_key(sid), AudioChunk(seq=0, pcm=b"\0\0"), 1000)


def partial(sid: str, until_s: float) -> SegmentJob:
    pcm = read_wav(DATA / "runon1.wav")[int(START * SR) : int(until_s * SR)]
    return SegmentJob(
        sid=sid,
        segment=0,
        start=START,
        end=until_s,
        final=False,
        rev=4,
        config=SessionConfig(),
        pcm=pcm.tobytes(),
    )


def test_word_end_matches_words_by_their_letters() -> None:
    alignment = [
        {"word": " Proteins", "end": 0.5},
        {"word": " fold", "end": 0.8},
        {"word": ".", "end": 0.9},
        {"word": " Don", "end": 1.1},
        {"word": "'t", "end": 1.2},
    ]
    assert word_end(alignment, ["Proteins", "fold.", "Don't"], 2) == 0.8
    assert word_end(alignment, ["Proteins", "fold.", "Don't"], 3) == 1.2
    assert word_end(alignment[:1], ["Proteins", "fold."], 2) is None


def test_the_last_word_of_a_sentence_is_found_in_the_partial(
    backend: LocalBackend, sentences: Sentences
) -> None:
    first, second, ends = sentences
    job = partial("al", 8.4)
    audio = np.frombuffer(job.pcm, np.int16).astype(np.float32) / 32768
    end = align_end(backend.model, "en", audio, first + second[:3], len(first))
    assert end is not None
    assert abs(START + end - ends[0]) < 0.25, (START + end, ends[0])


async def test_a_cut_is_asked_once_into_the_sessions_audio_stream(
    r: aioredis.Redis, s: TranscriberSettings, backend: LocalBackend, sentences: Sentences
) -> None:
    first, second, ends = sentences
    cuts = SentenceCuts(s, r, backend)
    job = partial("sc1", 8.4)
    await with_audio(r, s, "sc1")
    agreement = Agreement(previous=first + second[:3], committed=first + second[:1])
    await cuts.after_partial(job, agreement)
    await cuts.after_partial(job, agreement)  # the same sentence end again: not asked twice
    asked = [from_fields(f) for _, f in await r.xrange(s.audio_key("sc1"))][1:]
    assert len(asked) == 1 and isinstance(asked[0], SentenceCut)
    assert (asked[0].sid, asked[0].segment, asked[0].rev) == ("sc1", 0, 4)
    assert abs(asked[0].at - ends[0]) < 0.25
    assert agreement.cut_at == len(first)
    stored = Agreement.from_dict(json.loads(await r.hget(keys.agreement("sc1"), "0")))
    assert stored.cut_at == len(first)


async def test_an_end_at_the_audios_end_waits_for_more_audio(
    r: aioredis.Redis, s: TranscriberSettings, backend: LocalBackend, sentences: Sentences
) -> None:
    first, _, ends = sentences
    cuts = SentenceCuts(s, r, backend)
    await with_audio(r, s, "sc2")
    agreement = Agreement(previous=list(first), committed=list(first))
    await cuts.after_partial(partial("sc2", ends[0] + 0.2), agreement)  # Whisper may close any partial so
    assert await r.xlen(s.audio_key("sc2")) == 1 and agreement.cut_at == 0
    await cuts.after_partial(partial("sc2", ends[0] + 1.2), agreement)  # speech went on: it was the end
    assert await r.xlen(s.audio_key("sc2")) == 2 and agreement.cut_at == len(first)


async def test_nothing_asked_when_off_translating_or_after_the_session_ended(
    r: aioredis.Redis, s: TranscriberSettings, backend: LocalBackend, sentences: Sentences
) -> None:
    first, second, _ = sentences
    words = first + second[:3]
    off = SentenceCuts(s.model_copy(update={"sentence_finals": False}), r, backend)
    await with_audio(r, s, "sc3")
    await off.after_partial(partial("sc3", 8.4), Agreement(previous=words, committed=words))
    translating = partial("sc3", 8.4)
    translating.config.task = "translate"
    await SentenceCuts(s, r, backend).after_partial(translating, Agreement(previous=words, committed=words))
    assert await r.xlen(s.audio_key("sc3")) == 1
    gone = partial("sc4", 8.4)  # its audio stream was deleted at the stop: not made again
    await SentenceCuts(s, r, backend).after_partial(gone, Agreement(previous=words, committed=words))
    assert not await r.exists(s.audio_key("sc4"))
