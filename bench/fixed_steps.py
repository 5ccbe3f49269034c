"""Is BLEU unchanged by the speed work? Train the same config for the same number of steps with
an older revision of the toolkit and with this checkout, and compare their test scores.

    .venv/bin/python bench/fixed_steps.py                   # 9a35715 (before the speed work), 2000 steps
    .venv/bin/python bench/fixed_steps.py --revision HEAD~3 --steps 800

The older revision is checked out with ``git worktree`` into runs/fixed-steps/ and trains from
its own sources with this checkout's virtual environment. The config (bench/fixed-steps-en-de.yaml:
the matched model, in keys that both revisions read) trains with the same seed, data and batches.
Each revision then decodes test.en with its own model and code in float32, greedy and beam 5 (the
checkpoint layouts differ: the encoder's weights were split per layer and direction), and this
checkout scores both with sacrebleu. bfloat16 training is not bit-reproducible, so two runs of the
same code differ too: the difference is a check against a gross change, not a proof of equality
(the unit tests check the fast paths against the reference computations number for number).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from seq2seqkit.metrics import bleu, chrf

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "bench" / "fixed-steps-en-de.yaml"
BEFORE_SPEED_WORK = "9a35715"  # the last commit before "Encoder runs each layer and direction ..."
DECODE = """import json, sys, torch
from pathlib import Path
from seq2seqkit.data.readers import read_parallel
from seq2seqkit.pipeline import load
torch.set_num_threads(2)
pipeline = load(sys.argv[1])
data = pipeline.config.data
test = read_parallel(Path(f"{data.test}.{data.src_suffix}"), Path(f"{data.test}.{data.tgt_suffix}"))
outputs = pipeline.generate([p.src for p in test], beam=int(sys.argv[2]))
with open(sys.argv[3], "w", encoding="utf-8") as f:
    json.dump({"hypotheses": [o.text for o in outputs], "references": [p.tgt for p in test]}, f)
"""  # generate and read_parallel as every revision has them


def checkout(revision: str, runs: Path) -> Path:
    """``revision`` checked out with git worktree into runs/src-REVISION (once)."""
    tree = runs / f"src-{revision}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True)
    return tree


def for_revision(code: str, source: Path) -> str:
    """``code`` written for this checkout, made to import the package of the revision in ``source``
    (named seq2seq before the release's rename)."""
    return code if (source / "seq2seqkit").is_dir() else code.replace("seq2seqkit", "seq2seq")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--revision", default=BEFORE_SPEED_WORK, help="the older revision to compare with")
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    runs = ROOT / "runs" / "fixed-steps"
    old_tree = checkout(args.revision, runs)
    models = {}
    for label, source in ((args.revision, old_tree / "src"), ("this checkout", ROOT / "src")):
        out = runs / f"{label.replace(' ', '-')}-{args.steps}"
        if not (out / "train.log").exists() or "finished at step" not in (out / "train.log").read_text():
            shutil.rmtree(out, ignore_errors=True)
            print(f"training {args.steps} steps with {label} -> {out}", file=sys.stderr)
            overrides = [f"training.max_steps={args.steps}", f"training.validate_every={args.steps}",
                         "training.threads=2", "training.evaluate_test=false"]  # fmt: skip
            # the entry point by hand: older revisions have no __main__.py
            cli = for_revision("import sys; from seq2seqkit.cli import main; sys.exit(main())", source)
            command = [sys.executable, "-c", cli, "train", str(CONFIG), "--output", str(out)]
            command += [arg for item in overrides for arg in ("--set", item)]
            env = {**os.environ, "PYTHONPATH": str(source)}
            subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        models[label] = (source, out)
    for beam in (1, 5):
        scores = {}
        for label, (source, out) in models.items():
            # the revision's own code decodes its model, in a process of its own
            decoded = out / f"test-beam{beam}.json"
            command = [sys.executable, "-c", for_revision(DECODE, source), str(out), str(beam), str(decoded)]
            subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(source)}, check=True)
            test = json.loads(decoded.read_text(encoding="utf-8"))
            hypotheses, references = test["hypotheses"], [[r] for r in test["references"]]
            scores[label] = (bleu(hypotheses, references), chrf(hypotheses, references))
        (old, (old_bleu, old_chrf)), (new, (new_bleu, new_chrf)) = scores.items()
        print(f"beam {beam}: BLEU {old_bleu:.2f} ({old}) vs {new_bleu:.2f} ({new}), difference "
              f"{new_bleu - old_bleu:+.2f}; chrF {old_chrf:.2f} vs {new_chrf:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
