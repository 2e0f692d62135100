"""Where a partial's stable words end a sentence: the rule that lets a final come before the pause.

A word ends a sentence when it ends with `.`, `?` or `!` (closing quotes or brackets after it are
allowed) and is not an abbreviation ("Dr.", "e.g.", "a.m."), an initial ("J."), a number ending a
line of figures or a trailing ellipsis ("..."), and the word after it starts a new sentence (a
capital letter or a figure: Whisper capitalises a new sentence; "Dr. Smith" is caught by the
abbreviation list). A sentence must also hold at least `min_words` words, counted from the previous
accepted end (or the start of the utterance), so "Okay." alone does not cut.
A sentence end that is the last word of the hypothesis may be Whisper closing a partial whose audio
stops mid-sentence, or Whisper stopping at a sentence's end although speech goes on (greedy decoding
often does, the forced prefix ending in the sentence): `sentence_end` returns it, and the caller
takes it only if the audio goes on well past that word (sentences.py checks, after aligning).
"""

from __future__ import annotations

import re

ENDS = ".?!"
CLOSERS = "\"')]}»”’"
# Lower case, without the final dot: never a sentence end however it is followed. Words that are
# also plain English ("no", "sun", "sat", "am") are left out: "The answer is no." ends a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr mt vs etc cf al fig figs eq eqs nos vol chap sect pp approx dept univ "
    "inc ltd corp jan feb apr jun jul aug sep sept oct nov tue tues thu thur thurs fri".split()
)
_ALNUM = re.compile(r"[^\w]+")


def ends_sentence(word: str, following: str | None) -> bool:
    """Whether `word` ends a sentence that `following` (the next word heard; None: nothing heard
    after it yet) does not continue."""
    core = word.rstrip(CLOSERS)
    if not core or core[-1] not in ENDS:
        return False
    if core.endswith("..") or core.endswith("…"):
        return False  # trailing off, not an end
    body = core.rstrip(ENDS)
    nxt = following.lstrip("\"'([{«“‘") if following is not None else None
    if not body or nxt == "":
        return False
    if nxt is not None and not (nxt[0].isupper() or nxt[0].isdigit()):
        return False
    if core[-1] == ".":
        plain = body.lower().lstrip("\"'([{«“‘")
        if plain in ABBREVIATIONS or (len(plain) == 1 and plain.isalpha()):
            return False
        if "." in plain:  # "U.S.", "e.g." written out: an abbreviation, not an end
            return False
        if plain.replace(",", "").isdigit() and not (nxt and nxt[0].isupper()):
            return False  # "3." then "5": a number split, not an end
    return True


def _counts(word: str) -> bool:
    return bool(_ALNUM.sub("", word))


def sentence_end(words: list[str], stable: int, min_words: int, after: int = 0) -> int | None:
    """The number of leading words up to the last sentence end among the first `stable` words of
    the hypothesis `words` that lies beyond word `after`; None if none. It is `len(words)` when the
    end is the hypothesis's last word (see the module's doc).

    Sentences shorter than `min_words` words are joined to the next one."""
    best, since = None, 0
    for i in range(min(stable, len(words))):
        if _counts(words[i]):
            since += 1
        if since >= min_words and ends_sentence(words[i], words[i + 1] if i + 1 < len(words) else None):
            since = 0
            if i + 1 > after:
                best = i + 1
    return best
