"""Checkpoint averaging: the mean of the weights at the last validations, validated when training
ends and kept only when it scores higher than the best single weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from test_training_guards import tiny_config  # this folder's

import seq2seqkit
from seq2seqkit import checkpoint


def test_average_weights_is_the_mean_of_the_files(tmp_path: Path) -> None:
    layers = [torch.nn.Linear(3, 2) for _ in range(3)]
    paths = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for layer, path in zip(layers, paths, strict=True):
        checkpoint.save_weights(path, layer)
    averaged = checkpoint.average_weights(paths)
    expected = torch.stack([layer.weight.detach() for layer in layers]).mean(0)
    torch.testing.assert_close(averaged["weight"], expected)


def test_training_validates_the_average_of_the_last_validations(tmp_path: Path) -> None:
    config = tiny_config(max_steps=24, validate_every=4, average_last=3, lr=0.01)
    out = seq2seqkit.train(config, tmp_path / "model")

    kept = sorted(path.name for path in (out / checkpoint.AVERAGING).iterdir())
    assert kept == [f"step-{step:09d}.safetensors" for step in (16, 20, 24)]
    record = json.loads((out / "averaged.json").read_text())
    assert record["steps"] == [16, 20, 24] and "exact match" in record
    best = load_file(str(out / checkpoint.WEIGHTS))
    mean = checkpoint.average_weights(sorted((out / checkpoint.AVERAGING).iterdir()))
    is_mean = all(torch.equal(best[name], mean[name]) for name in best)
    assert is_mean == record["kept"]
    validations = [json.loads(line) for line in (out / "validations.jsonl").open()]
    best_single = max(v["exact match"] for v in validations)
    assert record["kept"] == (record["exact match"] > best_single)
