"""Machine translation: parallel text in any general format, scored with BLEU and chrF (sacrebleu)."""

from __future__ import annotations

from seq2seqkit.metrics import METRICS
from seq2seqkit.tasks.task import Task

TASK = Task("translation", (METRICS["bleu"], METRICS["chrf"]))
