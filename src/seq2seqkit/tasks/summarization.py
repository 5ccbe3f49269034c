"""Summarization: a long text in, a short one out (parallel text in any general format), scored
with ROUGE F1 from rouge-score with stemming.

ROUGE-L, the sentence-level longest common subsequence over the whole text, selects the best
checkpoint; ROUGE-Lsum is the summary-level variant most papers report for multi-sentence
summaries (sentences split after . ! ?). The two differ by several points on the same output:
the name printed says which is which. The share of repeated word trigrams in the outputs is
reported beside them (what coverage should bring down).
"""

from __future__ import annotations

from seq2seqkit.metrics import METRICS
from seq2seqkit.tasks.task import Task

TASK = Task(
    "summarization",
    tuple(METRICS[name] for name in ("rougeL", "rouge1", "rouge2", "rougeLsum", "repeated_trigrams")),
)
