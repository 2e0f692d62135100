"""LocalAgreement-2 on sequences of partial hypotheses."""

from __future__ import annotations

from services.transcriber.agreement import Agreement, agreed_prefix


def test_agreed_prefix_ignores_case_and_punctuation() -> None:
    assert agreed_prefix("The exam is on Friday,".split(), "the exam is on friday at".split()) == 5
    assert agreed_prefix("the exam".split(), "a quiz".split()) == 0


def test_nothing_stable_until_two_hypotheses_agree() -> None:
    a = Agreement()
    assert a.update("your final") == ("your final", "")
    assert a.update("your final exam will") == ("your final exam will", "your final")
    assert a.update("your final exam will be held") == (
        "your final exam will be held",
        "your final exam will",
    )


def test_stable_words_never_change_even_when_a_hypothesis_disagrees() -> None:
    a = Agreement()
    a.update("the second lab report")
    a.update("the second lab report is due")
    text, stable = a.update("the second lap report is due on thursday")
    assert stable == "the second lab report is due"
    assert text == "the second lab report is due on thursday", "committed 'lab' stays, not 'lap'"
    text, stable = a.update("the second lap report is due on thursday before class")
    assert stable == "the second lab report is due on thursday"


def test_round_trip() -> None:
    a = Agreement()
    a.update("one two three")
    a.update("one two four")
    b = Agreement.from_dict(a.to_dict())
    assert b.update("one two four five") == a.update("one two four five")


def test_agreement_goes_on_after_a_disagreement() -> None:
    a = Agreement()
    a.update("the second lab report")
    a.update("the second lab report is")
    a.update("the second lap report is due on")
    text, stable = a.update("the second lap report is due on thursday")
    assert stable == "the second lab report is due on"
    assert text == "the second lab report is due on thursday"


def test_the_punctuation_after_the_last_stable_word_is_left_to_the_next_hypothesis() -> None:
    a = Agreement()
    a.update("what they can do.")
    a.update("what they can do, the cell")
    assert a.committed[-1] == "do,"
    assert a.prefix == "what they can do"  # the decoder may end the sentence there
    text, stable = a.update("what they can do. The cell membrane")
    assert stable == "what they can do. The cell"
    assert text == "what they can do. The cell membrane"
    assert a.prefix == "what they can do. The cell"
