"""Copy, reverse and sort: synthetic tasks a tiny model learns in seconds, scored by exact match.

Each reads ``data.format: synthetic`` (generated pairs, ``data/synthetic.py``) by default, one
character per token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seq2seqkit.data.readers import Pair, ReadReport
from seq2seqkit.data.synthetic import make_pairs
from seq2seqkit.metrics import METRICS
from seq2seqkit.tasks.task import Task

if TYPE_CHECKING:
    from seq2seqkit.config import DataConfig

SPLIT_SEEDS = {"train": 1, "valid": 2, "test": 3}


def read_synthetic(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    """The split's generated pairs; valid and test hold no training input (short strings over a
    small alphabet repeat often), so they measure what was learned, not what was seen."""
    syn = data.synthetic
    shape = (syn.min_length, syn.max_length, syn.alphabet_size)
    if split == "train":
        return make_pairs(syn.task, syn.train_size, SPLIT_SEEDS[split], *shape)
    seen = {pair.src for pair in make_pairs(syn.task, syn.train_size, SPLIT_SEEDS["train"], *shape)}
    return make_pairs(syn.task, syn.eval_size, SPLIT_SEEDS[split], *shape, exclude=seen)


def synthetic_task(name: str) -> Task:
    return Task(
        name,
        (METRICS["exact"],),
        readers={"synthetic": read_synthetic},
        defaults={
            "data": {
                "format": "synthetic",
                "synthetic": {"task": name},
                "src_tokenizer": {"type": "char"},
                "tgt_tokenizer": {"type": "char"},
            }
        },
    )


TASKS = [synthetic_task(name) for name in ("copy", "reverse", "sort")]
