"""Training refuses unusable output directories up front and stops cleanly on a diverging loss."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import seq2seqkit
from seq2seqkit import checkpoint, workflow
from seq2seqkit.config import Config
from seq2seqkit.tasks import task_config


def tiny_config(**training: object) -> Config:
    return task_config(
        {
            "task": "reverse",
            "data": {"format": "synthetic", "synthetic": {"train_size": 200, "eval_size": 20}},
            "model": {
                "embedding_size": 8,
                "dropout": 0.0,
                "encoder": {"hidden_size": 8, "num_layers": 1},
                "decoder": {"hidden_size": 16, "num_layers": 1},
            },
            "training": {"batch_tokens": 200, "precision": "float32", "threads": 1, **training},
            "decoding": {"beam_size": 1},
        }
    )


def test_an_output_path_that_cannot_be_a_directory_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(seq2seqkit.Seq2SeqError, match="cannot write the model directory"):
        seq2seqkit.train(tiny_config(max_steps=2), tmp_path / "file.txt" / "model")


def test_a_full_disk_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(workflow.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    with pytest.raises(seq2seqkit.Seq2SeqError, match="MB free"):
        seq2seqkit.train(tiny_config(max_steps=2), tmp_path / "model")
    assert checkpoint.latest_checkpoint(tmp_path / "model") is None


def test_nonfinite_losses_are_skipped_then_stop_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build_loss = workflow.build_loss
    calls = {"n": 0}

    class DivergingLoss:  # finite for 6 calls, then NaN for good
        def __init__(self, model, **options):
            self.real = real_build_loss(model, **options)

        def __call__(self, *args, **kwargs):
            calls["n"] += 1
            value = self.real(*args, **kwargs)
            return value if calls["n"] <= 6 else value * float("nan")

        def nll(self, *args):
            return self(*args)

    monkeypatch.setattr(workflow, "build_loss", DivergingLoss)
    out = tmp_path / "model"
    config = tiny_config(max_steps=100, validate_every=5, max_nonfinite_steps=3)
    with pytest.raises(seq2seqkit.Seq2SeqError, match="3 non-finite losses in a row"):
        seq2seqkit.train(config, out)
    latest = checkpoint.latest_checkpoint(out)
    assert latest is not None and latest.name == "step-000000005"
    model = seq2seqkit.load(out).model
    state = checkpoint.load_training_state(latest, model, torch.optim.Adam(model.parameters()))
    assert state["progress"]["step"] == 5
    assert all(torch.isfinite(p).all() for p in model.parameters())
