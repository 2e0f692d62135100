"""The sentence-boundary rule of sentence finals (services/transcriber/boundary.py)."""

from __future__ import annotations

import pytest

from services.transcriber.boundary import ends_sentence, sentence_end


@pytest.mark.parametrize(
    ("word", "following"),
    [
        ("class.", "Natural"),
        ("done?", "Then"),
        ("now!", "We"),
        ('"over."', "So"),
        ("2020.", "The"),
        ("it.)", "I"),
        ("class.", None),  # nothing heard after it: the caller looks at the audio
    ],
)
def test_sentence_ends(word: str, following: str | None) -> None:
    assert ends_sentence(word, following)


@pytest.mark.parametrize(
    ("word", "following"),
    [
        ("Dr.", "Smith"),  # an abbreviation, however it is followed
        ("Prof.", "Jones"),
        ("e.g.", "Photosynthesis"),
        ("U.S.", "Army"),
        ("J.", "Watson"),  # an initial
        ("3.", "5"),  # a number split from its decimals
        ("class.", "and"),  # the next word goes on with the sentence
        ("so...", "Then"),  # trailing off
        ("class", "Natural"),  # no punctuation
        ("report,", "The"),
        ("class.", ""),
        ("Dr.", None),
        ("3.", None),
    ],
)
def test_not_sentence_ends(word: str, following: str | None) -> None:
    assert not ends_sentence(word, following)


def words(text: str) -> list[str]:
    return text.split()


def test_the_last_end_among_the_stable_words_with_a_word_after_it() -> None:
    w = words("Proteins fold into shapes. The cell membrane controls what enters. And")
    assert sentence_end(w, stable=len(w), min_words=4) == 10
    assert sentence_end(w, stable=9, min_words=4) == 4  # the second end is not stable yet
    assert sentence_end(w, stable=3, min_words=4) is None


def test_an_end_with_nothing_heard_after_it_is_the_whole_hypothesis() -> None:
    w = words("Remember that the second lab report.")  # mid-sentence, or the end: the audio decides
    assert sentence_end(w, stable=len(w), min_words=4) == len(w)
    assert sentence_end(w, stable=len(w) - 1, min_words=4) is None


def test_short_sentences_join_the_next() -> None:
    w = words("Okay. So today we look at enzymes. They")
    assert sentence_end(w, stable=len(w), min_words=4) == 7
    assert sentence_end(words("Okay. So"), stable=2, min_words=4) is None


def test_an_end_already_asked_for_is_not_asked_again() -> None:
    w = words("Proteins fold into shapes. The cell membrane controls what enters. And")
    assert sentence_end(w, stable=len(w), min_words=4, after=4) == 10
    assert sentence_end(w, stable=len(w), min_words=4, after=10) is None


def test_abbreviations_do_not_end_the_sentence_they_are_in() -> None:
    w = words("Our guest today is Dr. Smith from the lab. She")
    assert sentence_end(w, stable=len(w), min_words=4) == 9
