"""Scores of one trained model on a split under several decoding settings (one line each), to
choose a recipe's decoding options on the validation set: n-gram blocking, the coverage and
length penalties, output length bounds.

    .venv/bin/python bench/decoding_options.py runs/summarize-debian --split valid \\
        --try block_ngram_repeat=3 --try coverage_penalty=0.2 --try length_penalty=0.6

Each --try is one setting of the model's decoding section (KEY=VALUE[,KEY=VALUE...]) scored
against the model's own settings, with the beam of those settings.
"""

from __future__ import annotations

import argparse
import time

import yaml

import seq2seqkit
from seq2seqkit.evaluation import evaluate
from seq2seqkit.tasks import read_split, task_of


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="a trained model directory")
    parser.add_argument("--split", choices=["valid", "test"], default="valid")
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]")
    args = parser.parse_args()
    pipeline = seq2seqkit.load(args.model)
    task = task_of(pipeline.config)
    pairs = read_split(pipeline.config, args.split)
    print(f"{args.model}, {args.split} split, {len(pairs)} pairs, beam {pipeline.config.decoding.beam_size}")
    for setting in ["", *args.tries]:
        changes = dict(_parse(item) for item in setting.split(",") if item)
        trial = seq2seqkit.load(args.model)
        if changes:
            trial.set_decoding(**changes)
        start = time.perf_counter()
        result = evaluate(trial, pairs, task, beam=trial.config.decoding.beam_size)
        name = setting or "as configured"
        print(f"{name:40s} {result.summary()}  ({time.perf_counter() - start:.0f} s)", flush=True)


def _parse(item: str) -> tuple[str, object]:
    key, _, value = item.partition("=")
    return key.strip(), yaml.safe_load(value)


if __name__ == "__main__":
    main()
