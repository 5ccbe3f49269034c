"""Training on 2 processes (torchrun, gloo on the CPU): the same steps as one process with twice the
batch, exact resume, one writer, and a signal to one process stopping all with one checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_resume import assert_same_checkpoints, last_checkpoint, raw_config  # this folder's

import seq2seqkit
from seq2seqkit import checkpoint
from seq2seqkit.data.batching import BatchSampler
from seq2seqkit.tasks import read_split, task_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def torchrun(tmp_path: Path, raw: dict[str, Any], out: Path, *extra: str) -> subprocess.Popen:
    config = tmp_path / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "seq2seqkit", "train", str(config), "--output", str(out), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def run_two(tmp_path: Path, raw: dict[str, Any], out: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = torchrun(tmp_path, raw, out, *extra)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_two_processes_step_as_one_process_with_twice_the_batch(tmp_path: Path) -> None:
    raw = raw_config(max_steps=12)
    raw["model"]["dropout"] = 0.0  # no random draws: the two runs differ only in how they batch
    raw["training"]["teacher_forcing_ratio"] = 1.0
    raw["training"]["batch_tokens"] = 8  # per process; some batches hold a single (long) example
    config = task_config({**raw, "training": {**raw["training"], "batch_tokens": 16}})
    pairs = read_split(config, "train")
    lengths = [len(p.src) for p in pairs], [len(p.tgt) for p in pairs]
    assert any(len(b) == 1 for b in BatchSampler(*lengths, 16, 3).epoch(0)), "a rank must get no example"

    one = seq2seqkit.train(config, tmp_path / "one")
    run = run_two(tmp_path, raw, tmp_path / "two")

    assert run.stdout.splitlines() == [str(tmp_path / "two")]  # printed once
    weights, two_weights = last_checkpoint(one)[0], last_checkpoint(tmp_path / "two")[0]
    for name, tensor in weights.items():
        torch.testing.assert_close(two_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    progress = last_checkpoint(one)[2]["progress"], last_checkpoint(tmp_path / "two")[2]["progress"]
    for key in ("step", "epoch", "batch_in_epoch", "target_tokens"):
        assert progress[0][key] == progress[1][key], key


def test_two_process_run_resumes_exactly_with_one_writer(tmp_path: Path) -> None:
    n = 14  # dropout and scheduled sampling draw random numbers on both processes
    run_two(tmp_path, raw_config(2 * n), tmp_path / "straight")
    run_two(tmp_path, raw_config(n), tmp_path / "resumed")
    run = run_two(tmp_path, raw_config(2 * n), tmp_path / "resumed", "--resume")

    assert f"resumed at step {n}" in run.stderr
    assert_same_checkpoints(tmp_path / "straight", tmp_path / "resumed", 2 * n)
    rng = load_file(str(checkpoint_dir(tmp_path / "straight") / "optimizer.safetensors"))
    assert not torch.equal(rng["rng.torch"], rng["rng.torch.rank1"]), "each process its own dropout"
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "validations.jsonl").open()]
    assert steps == [7, 14, 21, 28]  # one writer: each validation once
    log = (tmp_path / "straight" / "train.log").read_text()
    assert log.count("finished at step") == 1 and "x 2 processes" in log


def checkpoint_dir(model_dir: Path) -> Path:
    latest = checkpoint.latest_checkpoint(model_dir)
    assert latest is not None
    return latest


@pytest.mark.slow
def test_a_signal_to_one_process_stops_both_with_one_checkpoint(tmp_path: Path) -> None:
    raw = raw_config(max_steps=100_000)
    proc = torchrun(tmp_path, raw, tmp_path / "run")
    try:
        deadline = time.monotonic() + 60
        while checkpoint_or_none(tmp_path / "run") is None:  # training runs (its first validation)
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        os.kill(worker_pids(proc.pid)[-1], signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()

    assert proc.returncode == 0, stderr
    messages = [line for line in stderr.splitlines() if line.startswith("seq2seqkit:")]
    assert len(messages) == 1 and "--resume" in messages[0], stderr
    assert "Traceback" not in stderr
    step = int(re.search(r"interrupted at step (\d+)", messages[0]).group(1))
    assert last_checkpoint(tmp_path / "run")[2]["progress"]["step"] == step


def checkpoint_or_none(model_dir: Path) -> Path | None:
    return checkpoint.latest_checkpoint(model_dir)


def worker_pids(parent: int) -> list[int]:
    """The processes torchrun started (its children), in start order."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children)
