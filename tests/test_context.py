"""Finals in context (services/transcriber/context.py and LocalBackend's context decoding), on the
real tiny.en model and a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from services.transcriber import context, in_context
from services.transcriber.backends import LocalBackend, Request
from shared import keys
from shared.messages import SAMPLE_RATE
from shared.settings import TranscriberSettings
from testkit.truth import load_lecture
from testkit.wer import word_errors

PAD = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)


def test_the_budget_keeps_context_and_utterance_inside_whispers_window() -> None:
    assert context.budget_s(20, 4.5) == 20
    assert context.budget_s(20, 12.0) == context.WINDOW_S - 12.0
    assert context.budget_s(20, 29.0) == 0.0
    assert context.budget_s(0, 3.0) == 0.0


async def test_saved_finals_come_back_oldest_first_within_the_budget(r: aioredis.Redis) -> None:
    sid = "ctx-budget"
    second = np.full(SAMPLE_RATE, 1000, np.int16)  # 1 s of audio per utterance
    async with r.pipeline(transaction=True) as pipe:
        for seg, text in enumerate(["zero", "one", "", "three", "four"]):
            context.save(pipe, sid, seg, (second + seg).tobytes(), text)
        await pipe.execute()
    assert await r.ttl(keys.heard(sid)) > 0
    each = 1.0 + context.GAP_S  # an utterance and the gap after it
    audio, said = await context.load(r, sid, 4, 2.5 * each)  # two utterances fit, not three
    assert said == "one three"  # the empty final (2) is not context; 4 is not before 4
    gap = int(context.GAP_S * SAMPLE_RATE)
    assert audio is not None and len(audio) == 2 * (SAMPLE_RATE + gap)
    assert audio[0] == pytest.approx(1001 / 32768) and audio[SAMPLE_RATE + gap] == pytest.approx(1003 / 32768)
    assert await context.load(r, sid, 0, 20) == (None, "")
    assert await context.load(r, "ctx-none", 3, 20) == (None, "")


async def test_only_the_last_utterances_are_kept(r: aioredis.Redis) -> None:
    sid = "ctx-keep"
    for seg in range(context.KEEP + 3):
        async with r.pipeline(transaction=True) as pipe:
            context.save(pipe, sid, seg, b"\0\0" * 160, f"w{seg}")
            await pipe.execute()
    fields = {f.decode().split(":")[0] for f in await r.hkeys(keys.heard(sid))}
    assert fields == {str(s) for s in range(3, context.KEEP + 3)}


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(TranscriberSettings(whisper_model="tiny.en"))


def test_a_final_in_context_gives_only_its_own_words(backend: LocalBackend) -> None:
    lecture1 = load_lecture(Path(__file__).parent / "data" / "lecture1")
    speech = [s for s in lecture1.spans if s.kind == "speech"][:4]
    clips = [
        np.concatenate(
            [PAD, lecture1.audio_float()[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)], PAD]
        )
        for s in speech
    ]
    heard = np.concatenate([x for c in clips[:3] for x in (c, PAD)])
    said = " ".join(s.text for s in speech[:3])
    result = asyncio.run(backend.transcribe(Request(clips[3], "en", "", context=heard, context_text=said)))
    text = " ".join(p.text.strip() for p in result.pieces)
    assert word_errors(speech[3].text, text).wer <= 0.35, text
    assert word_errors(said + " " + speech[3].text, text).wer > 0.5  # none of the context came back
    words = [w for p in result.pieces for w in p.words]
    duration = len(clips[3]) / SAMPLE_RATE
    assert words and all(0.0 <= s <= e <= duration + 0.5 for s, e, _ in words)
    assert words[0][0] < 1.0 and words[-1][1] > duration - 1.5  # times are the utterance's own


def test_two_pass_partials_come_from_the_small_model_for_english_only() -> None:
    two = LocalBackend(TranscriberSettings(whisper_model="base", partial_model="tiny.en"))
    assert two.partial_model is not None and not two.partial_model.model.is_multilingual
    english = Request(np.zeros(SAMPLE_RATE, np.float32), "en", "", partial=True)
    assert two._partial_model(english) is two.partial_model
    assert two._partial_model(Request(english.audio, "es", "", partial=True)) is two.model
    assert two._partial_model(Request(english.audio, None, "", partial=True)) is two.model  # auto, undecided
    assert two._partial_model(Request(english.audio, "es", "", partial=True, task="translate")) is two.model
    lecture1 = load_lecture(Path(__file__).parent / "data" / "lecture1")
    first = next(s for s in lecture1.spans if s.kind == "speech")
    clip = np.concatenate(
        [PAD, lecture1.audio_float()[int(first.start * SAMPLE_RATE) : int(first.end * SAMPLE_RATE)]]
    )
    result = asyncio.run(two.transcribe(Request(clip, "en", "", partial=True)))
    # the lecture's first words alone, greedy: tiny.en hears "Pro teams fold into shape, snap" on
    # some CPUs (int8 decoding differs), 3 of 8 words; still the sentence, not another model's output
    assert word_errors(first.text, " ".join(p.text for p in result.pieces)).wer <= 0.5
    same = LocalBackend(TranscriberSettings(whisper_model="tiny.en", partial_model="tiny.en"))
    assert same.partial_model is None  # the same model is not loaded twice


def test_a_result_that_says_the_context_again_is_recognised() -> None:
    said = "Remember that the second lab report is due on Thursday before class."
    assert in_context.repeats_context("Remember that the second lab report is due.", said)
    assert in_context.repeats_context("the second LAB report, and more", said)
    assert not in_context.repeats_context("Natural selection acts on variation.", said)
    assert not in_context.repeats_context("Before class.", said)  # too short to tell
    assert not in_context.repeats_context("Remember that.", "")


def test_noise_after_speech_is_decoded_as_without_context(backend: LocalBackend) -> None:
    """On noise the context would make Whisper confident of a continuation of it; an utterance that
    Whisper doubts is speech is decoded alone instead, so context adds no words in noise."""
    lecture1 = load_lecture(Path(__file__).parent / "data" / "lecture1")
    speech = [s for s in lecture1.spans if s.kind == "speech"][:3]
    audio = lecture1.audio_float()
    heard = np.concatenate([audio[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)] for s in speech])
    said = " ".join(s.text for s in speech)
    noise = load_lecture(Path(__file__).parent / "data" / "noise90").audio_float()
    for t0 in (5, 20):
        clip = noise[t0 * SAMPLE_RATE : (t0 + 3) * SAMPLE_RATE]
        alone = asyncio.run(backend.transcribe(Request(clip, "en", "")))
        heard_first = asyncio.run(
            backend.transcribe(Request(clip, "en", "", context=heard, context_text=said))
        )
        assert [p.text for p in heard_first.pieces] == [p.text for p in alone.pieces]
        assert "class" not in " ".join(p.text.lower() for p in heard_first.pieces)
