"""How training throughput scales with processes: the matched en-de model trained for a fixed number
of steps by one process and by torchrun with 2 (gloo on the CPU, NCCL on GPUs), in one run.

    .venv/bin/python bench/ddp_scaling.py                 # 150 steps each, on the CPU
    .venv/bin/python bench/ddp_scaling.py --steps 300 --device cuda --nproc 2

Runs (each in runs/ddp-scaling/NAME, replaced):
- ``1 process``: batch_tokens B with all the process's threads;
- ``1 process, 1 thread``: the same with one thread, the unit each torchrun process gets here;
- ``N processes, B/N each``: the same global batch (the same steps as the 1-process runs);
- ``N processes, B each``: N times the batch, as multi-GPU training is usually run.
Throughput is target tokens per second of training (state.json: tokens / elapsed; data preparation
and validation excluded). Efficiency: N-process tokens/s over N times the 1-thread process's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "matched-en-de.yaml"


def train(name: str, runs: Path, nproc: int, steps: int, batch: int, device: str, threads: int) -> float:
    """Target tokens/s of one training run."""
    out = runs / name.replace(" ", "-").replace(",", "").replace("/", "-")
    shutil.rmtree(out, ignore_errors=True)
    launcher = [sys.executable, "-m", "seq2seqkit"]
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        launcher += [f"--nproc_per_node={nproc}", "-m", "seq2seqkit"]
    command = [*launcher, "train", str(CONFIG), "--output", str(out), "--device", device]
    for key, value in {
        "max_steps": steps,
        "batch_tokens": batch,
        "validate_every": steps + 1,  # only the final validation, outside the clock
        "evaluate_test": False,
        "threads": threads,
    }.items():
        command += ["--set", f"training.{key}={value}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads or os.cpu_count())}
    subprocess.run(command, cwd=ROOT, check=True, env=env, stdout=subprocess.DEVNULL)
    latest = (out / "checkpoints" / "latest").read_text().strip()
    progress = json.loads((out / "checkpoints" / latest / "state.json").read_text())["progress"]
    return progress["target_tokens"] / progress["elapsed"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--batch-tokens", type=int, default=2048)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    runs = ROOT / "runs" / "ddp-scaling"
    runs.mkdir(parents=True, exist_ok=True)
    n, batch = args.nproc, args.batch_tokens
    per_process_threads = max(1, (os.cpu_count() or 1) // n)
    rates = {
        "1 process": train("1 process", runs, 1, args.steps, batch, args.device, 0),
        "1 process, 1 thread": train("1 process 1 thread", runs, 1, args.steps, batch, args.device, 1),
        f"{n} processes, {batch // n} tokens each": train(
            "n processes half", runs, n, args.steps, batch // n, args.device, per_process_threads
        ),
        f"{n} processes, {batch} tokens each": train(
            "n processes full", runs, n, args.steps, batch, args.device, per_process_threads
        ),
    }
    unit = rates["1 process, 1 thread"]
    print(f"{args.steps} steps of {CONFIG.name} on {args.device}, {os.cpu_count()} cores")
    print(f"{'run':<32} {'target tok/s':>12} {'vs 1 process':>13} {'efficiency':>11}")
    for name, rate in rates.items():
        efficiency = f"{rate / (n * unit):.2f}" if "processes" in name else ""
        print(f"{name:<32} {rate:>12,.0f} {rate / rates['1 process']:>12.2f}x {efficiency:>11}")


if __name__ == "__main__":
    main()
