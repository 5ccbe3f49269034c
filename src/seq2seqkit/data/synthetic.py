"""Synthetic tasks whose answer is a simple function of the input: copy, reverse, sort.

A small model learns them in seconds, which makes them the proof that training really learns.
Inputs are strings of letters, one character per token.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import Literal

from seq2seqkit.data.readers import Pair
from seq2seqkit.errors import ConfigError

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
    exclude: Collection[str] = (),
) -> list[Pair]:
    """``size`` random strings over the first ``alphabet_size`` letters with their answers, none
    of them in ``exclude`` (there must be enough other strings of these lengths)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"[:alphabet_size]
    pairs: list[Pair] = []
    for _ in range(100 * size):
        if len(pairs) == size:
            break
        text = "".join(rng.choices(letters, k=rng.randint(min_length, max_length)))
        if text not in exclude:
            pairs.append(Pair(text, TRANSFORMS[task](text), f"{task}:{len(pairs) + 1}"))
    if len(pairs) < size:
        raise ConfigError(
            f"data.synthetic: too few strings of {min_length}-{max_length} letters over {alphabet_size} "
            "besides the training ones; raise max_length or alphabet_size, or lower train_size"
        )
    return pairs
