"""Did a change cost speed? Two revisions of the toolkit, measured in turns on the same machine.

    .venv/bin/python bench/revisions.py --revision HEAD~2            # 300 steps, 4 rounds
    .venv/bin/python bench/revisions.py --revision e851dee --steps 200 --rounds 2
    .venv/bin/python bench/revisions.py --revision HEAD~1 --model runs/mt-debian-en-de  # decoding only

The older revision is checked out with ``git worktree`` into runs/revisions/ and runs from its own
sources with this checkout's virtual environment. Each round trains the matched model
(bench/matched-en-de.yaml) for --steps steps with each revision, in turns (A B, then B A, so that
neither always runs second), and reads training target tokens/s from the log (the mean of the
reports after the first, as bench/speed.py does). Then both revisions decode test.en with one
model (the older revision's first), greedy and beam 5 in bfloat16 where the CPU has it natively,
in the same turns. With --model, no training: both revisions decode that trained model (its
outputs are of a trained model's lengths, unlike those of a few hundred steps), with its own
decoding settings or --length-penalty. Printed: the median of each figure per revision, the ratio
this checkout / older revision, and whether the two revisions' outputs are the same. A ratio
within a few percent of 1 is noise on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from fixed_steps import checkout, for_revision  # bench/ is on the path of a script run from it

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "matched-en-de.yaml"
CLI = "import sys; from seq2seqkit.cli import main; sys.exit(main())"  # older revisions lack __main__.py
DECODE = """import hashlib, json, statistics, sys, time, torch
from pathlib import Path
from seq2seqkit.data.readers import read_parallel
from seq2seqkit.device import native_bfloat16
from seq2seqkit.pipeline import load
torch.set_num_threads(2)
pipeline = load(sys.argv[1])
pipeline.set_decoding(precision="bfloat16" if native_bfloat16() else "float32",
                      **({"length_penalty": float(sys.argv[2])} if len(sys.argv) > 2 else {}))
data = pipeline.config.data
test = Path(data.test)
sources = [p.src for p in read_parallel(test.with_name(f"{test.name}.{data.src_suffix}"),
                                        test.with_name(f"{test.name}.{data.tgt_suffix}"))]
figures = {}
for beam in (1, 5):
    pipeline.generate(sources[:16], beam=beam)
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        outputs = pipeline.generate(sources, beam=beam)
        runs.append(time.perf_counter() - started)
    figures[f"beam {beam} sent/s"] = len(sources) / statistics.median(runs)
    figures[f"beam {beam} outputs"] = hashlib.sha1("\\n".join(o.text for o in outputs).encode()).hexdigest()
print(json.dumps(figures))
"""  # read_parallel, load, set_decoding and generate as every revision has them


def train(source: Path, out: Path, steps: int) -> float:
    """Target tokens/s of ``steps`` training steps with the toolkit in ``source``."""
    shutil.rmtree(out, ignore_errors=True)
    overrides = [f"training.max_steps={steps}", "training.max_minutes=0", "training.validate_every=100000",
                 "training.log_every=50", "training.threads=2", "training.evaluate_test=false"]  # fmt: skip
    command = [sys.executable, "-c", for_revision(CLI, source), "train", str(CONFIG), "--output", str(out)]
    command += [arg for item in overrides for arg in ("--set", item)]
    env = {**os.environ, "PYTHONPATH": str(source)}
    subprocess.run(
        command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rates = [float(x) for x in re.findall(r" tok/s (\d+)", (out / "train.log").read_text(encoding="utf-8"))]
    return statistics.mean(rates[1:] or rates)


def decode(source: Path, model: Path, length_penalty: float | None) -> dict[str, float | str]:
    """Sentences/s of greedy and beam-5 decoding of ``model`` with the toolkit in ``source``, and
    a digest of each one's outputs."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    penalty = [] if length_penalty is None else [str(length_penalty)]
    result = subprocess.run(
        [sys.executable, "-c", for_revision(DECODE, source), str(model), *penalty],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--revision", required=True, help="the older revision to compare with")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--model", type=Path, help="decode this trained model instead of training")
    parser.add_argument("--length-penalty", type=float, help="instead of the model's decoding setting")
    args = parser.parse_args()
    runs = ROOT / "runs" / "revisions"
    old_tree = checkout(args.revision, runs)
    sources = {args.revision: old_tree / "src", "this checkout": ROOT / "src"}
    figures: dict[str, dict[str, list[float]]] = {label: {} for label in sources}
    digests: dict[str, set[str]] = {label: set() for label in sources}
    for round_ in range(0 if args.model else args.rounds):
        order = list(sources.items())
        for label, source in (
            order if round_ % 2 == 0 else order[::-1]
        ):  # A B, then B A: no side always second
            out = runs / f"{label.replace(' ', '-')}-{round_}"
            figures[label].setdefault("train tok/s", []).append(train(source, out, args.steps))
            print(
                f"round {round_ + 1}: {label} trained at {figures[label]['train tok/s'][-1]:,.0f} tok/s",
                file=sys.stderr,
            )
    model = args.model or runs / f"{args.revision}-0"
    for round_ in range(args.rounds):
        order = list(sources.items())
        for label, source in order if round_ % 2 == 0 else order[::-1]:
            for name, value in decode(source, model, args.length_penalty).items():
                if isinstance(value, str):
                    digests[label].add(f"{name} {value}")
                else:
                    figures[label].setdefault(name, []).append(value)
    (old, old_figures), (new, new_figures) = figures.items()
    for name, values in old_figures.items():
        before, after = statistics.median(values), statistics.median(new_figures[name])
        spread = (
            f"{', '.join(f'{v:,.0f}' for v in values)} vs {', '.join(f'{v:,.0f}' for v in new_figures[name])}"
        )
        print(
            f"{name}: {before:,.1f} ({old}) vs {after:,.1f} ({new}): ratio {after / before:.3f}  [{spread}]"
        )
    same = digests[old] == digests[new] and len(digests[new]) == 2  # one digest per beam, every round
    print(f"outputs: {'the same' if same else 'DIFFERENT'} in both revisions, greedy and beam 5")


if __name__ == "__main__":
    main()
