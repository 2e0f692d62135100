"""The `name` alert: one of the names a student gave at start (`names` in `start`) is said.

`NameSpotter(names).find(sentence)` answers with the name as the student wrote it, or None. It
reads the transcript as Whisper writes it (names capitalised), so that a name which is also a word
("Will", "Mark", "Grace") does not fire on the word:

* the full name or any part of it of two letters or more, as a whole word ("Maria Garcia" is found
  in "Ms. Garcia?" and in "Maria, you're up"; "Ali" not in "Alicia");
* in cased text the match must be capitalised ("mark the answer" is not Mark); text with no
  capital at all (some transcripts) is read case-blind;
* someone else of the same first or last name is not the student: a capitalised neighbour that is
  not part of the name and not a title ("Mark Twain", "Tom Garcia") vetoes; so do a scientist's
  law ("Newton's second law", "the Garcia equation"), a story or an example ("in the novel") and a
  historical year;
* a part that is also an English word, first in its sentence, counts only when addressed ("Will,
  come up", "Grace?"), not in "Will you all sit down" or "Mark the answer".

A name is not negatable: "Maria is not here" during roll call is exactly the moment she wants to
know about. Repeats within the detector's window are dropped by the detector (per name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.alerts.dates import normalize
from services.alerts.patterns import NARRATIVE

_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "professor", "doctor", "mx", "sir", "madam"}
_EPONYM = re.compile(
    r"^(?:'s)?\s+(?:law|laws|theorem|equation|equations|principle|rule|method|constant|formula|paradox|"
    r"hypothesis|model|test|conjecture|lemma|effect|number|series|transform|distribution|algorithm|"
    r"cycle|syndrome|disease|scale|limit|inequality|second law|first law|third law)\b"
)
_WORD_NAMES = {  # names that are also common English words
    "will", "may", "mark", "grace", "bill", "pat", "rose", "hope", "faith", "joy", "june", "april",
    "august", "art", "sue", "dawn", "frank", "ray", "jack", "rob", "sky", "summer", "autumn", "chase",
    "drew", "gene", "guy", "iris", "jay", "lily", "max", "miles", "nick", "page", "sunny", "victor",
    "wade", "rich", "sandy", "penny", "amber", "crystal", "ruby", "pearl", "holly", "ivy", "cliff",
    "dean", "earl", "grant", "hunter", "lane", "rusty", "carol", "sterling", "norm", "don",
}  # fmt: skip
_OPENERS = {  # a sentence's first word that is no first name ("Okay Maria", not "Tom Garcia")
    "okay", "ok", "so", "alright", "right", "well", "now", "yes", "yeah", "thanks", "thank", "hi",
    "hello", "hey", "good", "great", "and", "but", "oh", "um", "uh", "sorry", "next", "please", "then",
    "morning", "excellent", "perfect", "nice", "sure", "no", "wait", "actually", "also", "first",
    "is", "are", "was", "were", "where", "has", "have", "does", "did", "do", "can", "could", "would",
    "should", "who", "what", "why", "how", "ask", "tell", "call", "welcome", "congratulations", "dear",
    "come", "go", "hear", "see", "listen", "remember",
}  # fmt: skip
_YEAR = re.compile(r"\b(1[0-9]{3})\b")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


class NameSpotter:
    """Finds a student's names in transcript sentences."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = [" ".join(n.split()) for n in names if n and n.strip()]
        self._parts: list[tuple[str, set[str], re.Pattern[str]]] = []
        for name in self.names:
            parts = [p for p in _WORD.findall(name) if len(p) >= 2]
            variants = sorted({name, *parts}, key=len, reverse=True)  # the full name first
            alt = "|".join(re.escape(v).replace(r"\ ", r"\s+") for v in variants)
            lower = {p.lower() for p in parts}
            self._parts.append((name, lower, re.compile(rf"(?<![\w'’-])(?:{alt})(?![\w-])", re.I)))

    def find(self, sentence: str) -> str | None:
        """The name (as given) said in the sentence, or None."""
        if not self._parts or _vetoed(sentence):
            return None
        cased = any(c.isupper() for c in sentence)
        for name, parts, pattern in self._parts:
            for m in pattern.finditer(sentence):
                if _is_said(sentence, m, parts, cased):
                    return name
        return None


def _vetoed(sentence: str) -> bool:
    """A story, an example or history: a name there is someone else's."""
    return bool(NARRATIVE.search(normalize(sentence))) or any(int(y) < 1950 for y in _YEAR.findall(sentence))


def _is_said(sentence: str, m: re.Match[str], parts: set[str], cased: bool) -> bool:
    """Whether this match is the student being named (see the module docstring)."""
    text = m.group(0)
    if cased and not text[0].isupper():
        return False
    after, before = sentence[m.end() :], sentence[: m.start()]
    if _EPONYM.match(after.lower()):
        return False
    nxt = re.match(r"\s([^\W\d_][\w'’-]*)", after)  # the adjacent next word (no punctuation between)
    if cased and nxt and nxt.group(1)[0].isupper() and nxt.group(1).lower() not in parts:
        return False  # "Mark Twain": another person
    prev = re.search(r"([^\W\d_][\w'’-]*)\.?\s$", before)
    at_start = not before.strip(" \"'(")
    if cased and prev and prev.group(1)[0].isupper() and prev.group(1).lower() not in _TITLES | parts:
        if prev.group(1).lower() not in _OPENERS:
            return False  # "Tom Garcia": another person ("Okay Maria" is her)
    if at_start and " " not in text.strip() and text.lower() in _WORD_NAMES:
        return bool(re.match(r"\s*[,?!:]|\s*$", after))  # "Will, come up" but not "Will you all ..."
    return True
