"""Exact resume: training N steps, stopping, and resuming gives the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

import seq2seqkit
from seq2seqkit import checkpoint
from seq2seqkit.config import Config
from seq2seqkit.tasks import task_config

COMMAND = [sys.executable, "-m", "seq2seqkit.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def raw_config(max_steps: int) -> dict[str, Any]:
    """Dropout and scheduled sampling make every step draw random numbers, so the RNG state matters."""
    return {
        "task": "reverse",
        "data": {
            "format": "synthetic",
            "synthetic": {
                "task": "reverse",
                "train_size": 300,
                "eval_size": 20,
                "max_length": 8,
                "alphabet_size": 6,
            },
        },
        "model": {
            "rnn_type": "lstm",
            "embedding_size": 16,
            "dropout": 0.3,
            "encoder": {"hidden_size": 16, "num_layers": 2},
            "decoder": {"hidden_size": 32, "num_layers": 2, "context": "attention", "input_feeding": True},
        },
        "training": {
            "seed": 3,
            "batch_tokens": 150,
            "lr": 0.01,
            "scheduler": "constant",
            "teacher_forcing_ratio": 0.7,
            "max_steps": max_steps,
            "validate_every": 7,
            "precision": "float32",
            "threads": 1,
            "evaluate_test": False,
        },
        "decoding": {"beam_size": 1},
    }


def config(max_steps: int) -> Config:
    return task_config(raw_config(max_steps))


def last_checkpoint(
    model_dir: Path,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    last = checkpoint.latest_checkpoint(model_dir)
    assert last is not None
    state = json.loads((last / "state.json").read_text())
    return load_file(str(last / "model.safetensors")), load_file(str(last / "optimizer.safetensors")), state


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def assert_same_checkpoints(straight_dir: Path, resumed_dir: Path, steps: int) -> None:
    straight, resumed = last_checkpoint(straight_dir), last_checkpoint(resumed_dir)
    assert_same_tensors(straight[0], resumed[0])  # weights
    assert_same_tensors(straight[1], resumed[1])  # optimizer moments and the RNG state
    progress = straight[2]["progress"], resumed[2]["progress"]
    assert progress[0]["step"] == progress[1]["step"] == steps
    for key in ("epoch", "batch_in_epoch", "target_tokens", "best_score", "best_step"):
        assert progress[0][key] == progress[1][key], key


def test_resume_equals_uninterrupted_training(tmp_path: Path) -> None:
    n = 20  # the first run stops in the middle of the second epoch (14 batches each)
    straight = seq2seqkit.train(config(2 * n), tmp_path / "straight")

    seq2seqkit.train(config(n), tmp_path / "resumed")
    assert last_checkpoint(tmp_path / "resumed")[2]["progress"]["step"] == n
    resumed = seq2seqkit.train(config(2 * n), tmp_path / "resumed", resume=True)

    assert_same_checkpoints(straight, resumed, 2 * n)
    assert last_checkpoint(resumed)[2]["progress"]["epoch"] >= 1, "the runs crossed an epoch boundary"
    assert_same_tensors(
        load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    )


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(seq2seqkit.Seq2SeqError, match="nothing to resume"):
        seq2seqkit.train(config(5), tmp_path / "empty", resume=True)


def test_resume_with_another_model_is_refused(tmp_path: Path) -> None:
    seq2seqkit.train(config(3), tmp_path / "run")
    raw = raw_config(6)
    raw["model"]["dropout"] = 0.1
    with pytest.raises(seq2seqkit.Seq2SeqError, match="differs"):
        seq2seqkit.train(task_config(raw), tmp_path / "run", resume=True)


def test_training_into_a_trained_directory_is_refused(tmp_path: Path) -> None:
    seq2seqkit.train(config(3), tmp_path / "run")
    with pytest.raises(seq2seqkit.Seq2SeqError, match="--resume"):
        seq2seqkit.train(config(3), tmp_path / "run")


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_resuming_completes(tmp_path: Path) -> None:
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw_config(max_steps=100_000)))
    model_dir = tmp_path / "interrupted"
    command = [*COMMAND, "train", str(config_path), "--output", str(model_dir)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    watchdog = threading.Timer(120, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        seen = []
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until the training loop runs (its first validation)
            seen.append(line)
            if line.startswith("validation at step"):
                break
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
    stderr_lines = (*seen, *rest.splitlines())

    assert proc.returncode == 130, "".join(stderr_lines)
    assert stdout == ""
    message = stderr_lines[-1]
    assert message.startswith("seq2seqkit:") and "--resume" in message
    assert not any("Traceback" in line for line in stderr_lines)
    step = int(re.search(r"interrupted at step (\d+)", message).group(1))
    assert last_checkpoint(model_dir)[2]["progress"]["step"] == step

    resume = [*command, "--resume", "--set", f"training.max_steps={step + 5}"]
    done = subprocess.run(resume, capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(model_dir)
    assert f"resumed at step {step}" in done.stderr
    assert last_checkpoint(model_dir)[2]["progress"]["step"] == step + 5

    # and the interrupted run ends where an uninterrupted one does
    straight = seq2seqkit.train(config(step + 5), tmp_path / "straight")
    assert_same_checkpoints(straight, model_dir, step + 5)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_an_unloadable_checkpoint(tmp_path: Path) -> None:
    """Kill -9 a real training process several times, at random moments (checkpoints are written
    every 2 steps, so some kills land mid-write); each time the latest checkpoint must load, and
    resuming must go on from it."""
    raw = raw_config(max_steps=100_000)
    raw["training"]["validate_every"] = 2
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    model_dir = tmp_path / "killed"
    command = [*COMMAND, "train", str(config_path), "--output", str(model_dir)]
    rng = random.Random(7)
    steps_seen = []
    for _ in range(4):
        resume = ["--resume"] if checkpoint.latest_checkpoint(model_dir) else []
        proc = subprocess.Popen(
            [*command, *resume], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV
        )
        assert proc.stderr is not None
        for line in proc.stderr:  # the training loop has started
            if line.startswith("training:"):
                break
        time.sleep(rng.uniform(0.2, 1.5))
        proc.kill()
        proc.wait(timeout=30)
        latest = checkpoint.latest_checkpoint(model_dir)
        assert latest is not None
        pipeline = seq2seqkit.load(model_dir)  # the best weights load and verify
        state = checkpoint.load_training_state(
            latest, pipeline.model, torch.optim.Adam(pipeline.model.parameters(), fused=True)
        )
        steps_seen.append(state["progress"]["step"])
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] > steps_seen[0], steps_seen
    done = subprocess.run(
        [*command, "--resume", "--set", f"training.max_steps={steps_seen[-1] + 3}"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"resumed at step {steps_seen[-1]}" in done.stderr
