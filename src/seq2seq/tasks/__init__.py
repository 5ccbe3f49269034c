"""Applications: which metrics each task reports, which one picks the best model, and how its
evaluation sets are grouped. A plain dict of tasks; ``build.py`` looks a task up by name."""

from __future__ import annotations

from dataclasses import dataclass

from seq2seq.metrics import METRICS, Metric, sequence_error_rate, word_error_rate


@dataclass(frozen=True)
class Task:
    """metrics: reported in this order; the first one selects the best checkpoint.
    group_references: identical sources in an evaluation set are one segment with several
    acceptable references (a word with several pronunciations)."""

    name: str
    metrics: tuple[Metric, ...]
    group_references: bool = False

    @property
    def primary(self) -> Metric:
        return self.metrics[0]


G2P_METRICS = (
    # the G2P literature's WER: a word is wrong unless it matches one of its pronunciations
    Metric("WER", sequence_error_rate, higher_is_better=False),
    # phoneme error rate against the closest reference pronunciation
    Metric("PER", word_error_rate, higher_is_better=False),
)

TASKS = {
    "g2p": Task("g2p", G2P_METRICS, group_references=True),
    "translation": Task("translation", (METRICS["bleu"], METRICS["chrf"])),
    "copy": Task("copy", (METRICS["exact"],)),
    "reverse": Task("reverse", (METRICS["exact"],)),
    "sort": Task("sort", (METRICS["exact"],)),
}
