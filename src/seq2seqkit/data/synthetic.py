"""Synthetic tasks whose answer is a simple function of the input: copy, reverse, sort.

A small model learns them in seconds, which makes them the proof that training really learns.
Inputs are strings of letters, one character per token.
"""

from __future__ import annotations

import random
from typing import Literal

from seq2seqkit.data.readers import Pair

SyntheticTask = Literal["copy", "reverse", "sort"]

TRANSFORMS = {
    "copy": lambda s: s,
    "reverse": lambda s: s[::-1],
    "sort": lambda s: "".join(sorted(s)),
}


def make_pairs(
    task: SyntheticTask,
    size: int,
    seed: int,
    min_length: int = 3,
    max_length: int = 10,
    alphabet_size: int = 10,
) -> list[Pair]:
    """``size`` random strings over the first ``alphabet_size`` letters with their answers."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"[:alphabet_size]
    pairs: list[Pair] = []
    for _ in range(size):
        text = "".join(rng.choices(letters, k=rng.randint(min_length, max_length)))
        pairs.append(Pair(text, TRANSFORMS[task](text), f"{task}:{len(pairs) + 1}"))
    return pairs
