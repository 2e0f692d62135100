"""Early finals, the transcriber's half: results decoded from the VAD's early finals (an utterance as
a pause of EARLY_FINAL_S would close it, services/vad/partials.py), kept until the final comes.

The final is the same utterance with the rest of the pause's padding after it when it starts at the
same sample, its speech ends where the early one's did (speech did not resume in the pause) and it
decodes as many samples (`decode_len`): then the early result is its result, and the final is
written as soon as it is read. Otherwise it is decoded as usual and the early result is dropped.
Results are kept in this process only, briefly: a final that another transcriber of the group reads
is decoded there, as without early finals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.transcriber.types import Result
from shared.messages import SegmentJob

KEEP_S = 30.0  # a final comes 0.25 s after its early one; far longer means it never will
MAX_KEPT = 256


def audio_of(job: SegmentJob) -> tuple:
    """What a final and its early final agree on when both decode the same audio."""
    return job.start, job.speech_start, job.speech_end, job.decode_len


@dataclass
class Early:
    audio: tuple  # audio_of(the early final)
    result: Result
    took: float
    at: float


class EarlyFinals:
    def __init__(self) -> None:
        self.kept: dict[tuple[str, int], Early] = {}

    def keep(self, job: SegmentJob, result: Result, took: float) -> None:
        now = time.monotonic()
        for key in [k for k, e in self.kept.items() if now - e.at > KEEP_S]:
            del self.kept[key]
        while len(self.kept) >= MAX_KEPT:
            del self.kept[next(iter(self.kept))]
        self.kept[(job.sid, job.segment)] = Early(audio_of(job), result, took, now)

    def take(self, job: SegmentJob) -> tuple[Result, float] | None:
        """The early result for this final, if there is one and it holds (see the module's doc)."""
        early = self.kept.pop((job.sid, job.segment), None)
        if early is None or early.audio != audio_of(job):
            return None
        return early.result, early.took
