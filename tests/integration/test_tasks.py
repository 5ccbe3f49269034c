"""Every registered task builds, trains a few steps and scores itself with its own metrics, so a
task that is declared but not wired into a reader, a featurizer or its metrics cannot pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seq2seq
from seq2seq.config import config_from_dict
from seq2seq.tasks import TASKS

TINY_MODEL = {
    "embedding_size": 8,
    "dropout": 0.0,
    "encoder": {"hidden_size": 8, "num_layers": 1},
    "decoder": {"hidden_size": 16, "num_layers": 1},
}


def general_data(directory: Path) -> dict[str, object]:
    """A few JSONL pairs in every split, for tasks that read the general formats."""
    lines = [json.dumps({"src": f"word {i} here", "tgt": f"wort {i} hier"}) for i in range(30)]
    for split in ("train", "valid", "test"):
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return {"format": "jsonl", **{s: str(directory / f"{s}.jsonl") for s in ("train", "valid", "test")}}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_trains_and_scores(name: str, tmp_path: Path) -> None:
    task = TASKS[name]
    data = {} if task.readers else general_data(tmp_path)
    if name == "g2p":
        data = {"max_src_len": 6}  # the shortest words of CMUdict: a small, fast training set
    config = config_from_dict(
        {
            "task": name,
            "data": data,
            "model": TINY_MODEL,
            "training": {"max_steps": 3, "batch_tokens": 400, "precision": "float32", "threads": 1},
            "decoding": {"beam_size": 2, "max_length_offset": 2},
        }
    )
    model_dir = seq2seq.train(config, tmp_path / name)
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert [metric.name for metric in task.metrics] == [
        key for key in scores if key not in ("beam", "segments", "greedy")
    ]
    validations = [json.loads(line) for line in (model_dir / "validations.jsonl").read_text().splitlines()]
    assert validations and task.primary.name in validations[-1]
    assert seq2seq.load(model_dir).generate(["abc"])[0].text is not None
