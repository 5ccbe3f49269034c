"""String transduction: short outputs (a word's inflection, a name's transliteration, a code, a
normalised form, a label), scored by exact match (which selects the best checkpoint) and chrF.

BLEU counts matching 4-grams and stays at 0 on outputs of one or two words; exact match says how
many outputs are right, and chrF (sacrebleu) gives partial credit by character n-grams. Reads the
general formats (parallel text, TSV, JSONL).
"""

from __future__ import annotations

from seq2seqkit.metrics import METRICS
from seq2seqkit.tasks.task import Task

TASK = Task("transduction", (METRICS["exact"], METRICS["chrf"]))
