"""Machine translation: parallel text in any general format, scored with BLEU and chrF (sacrebleu)."""

from __future__ import annotations

from seq2seq.metrics import METRICS
from seq2seq.tasks.task import Task

TASK = Task("translation", (METRICS["bleu"], METRICS["chrf"]))
