"""Learning curves (analyze data-size): nested seeded subsets, one run per recipe and share, a table
and a picture, and a sweep that goes on where it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import seq2seqkit
from seq2seqkit.data.readers import Pair
from seq2seqkit.recipes import load_config
from seq2seqkit.workflow import nested_subset

COMMAND = [sys.executable, "-m", "seq2seqkit", "analyze", "data-size"]
SMALL = [
    "--set", "data.synthetic.train_size=400", "--set", "data.synthetic.eval_size=20",
    "--set", "training.validate_every=10", "--set", "training.threads=1",
]  # fmt: skip


def test_subsets_are_nested_seeded_and_in_file_order() -> None:
    pairs = [Pair(f"s{i}", f"t{i}") for i in range(1000)]
    tenth, half = nested_subset(pairs, 0.1), nested_subset(pairs, 0.5)
    assert len(tenth) == 100 and len(half) == 500
    assert set(tenth) < set(half)
    assert tenth == nested_subset(pairs, 0.1)
    assert tenth == sorted(tenth, key=lambda p: int(p.src[1:]))
    assert tenth != pairs[:100]  # a shuffle, not the file's first lines


def test_sweep_trains_scores_draws_and_goes_on_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    # an interrupted sweep: the 0.25 run stopped at step 5, before its test
    stopped = load_config(
        "toy_reverse",
        [
            *SMALL[1::2],
            "data.train_fraction=0.25",
            "training.max_steps=5",
            "training.max_minutes=0",
            "training.evaluate_test=false",
        ],
    )
    seq2seqkit.train(stopped, out / "toy_reverse" / "0.25")
    done = subprocess.run(
        [*COMMAND, "toy_reverse", "--fractions", "0.25,1", "--steps", "15", "--output", str(out), *SMALL],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[1/2] toy_reverse on 0.25 of its training pairs: resuming" in done.stderr
    assert "resumed at step 5" in done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()[:3]]
    assert rows[0] == ["recipe", "fraction", "pairs", "steps", "exact match"]
    assert [row[:4] for row in rows[1:]] == [
        ["toy_reverse", "0.25", "100", "15"],
        ["toy_reverse", "1", "400", "15"],
    ]
    for row in rows[1:]:
        assert 0.0 <= float(row[4]) <= 100.0
    scores = json.loads((out / "toy_reverse" / "1" / "test_scores.json").read_text())
    assert f"{scores['exact match']:.2f}" == rows[2][4]
    assert (out / "data_size.png").stat().st_size > 10_000
    assert (out / "data_size.tsv").read_text().splitlines()[1:] == done.stdout.splitlines()[1:3]

    again = subprocess.run(
        [*COMMAND, "toy_reverse", "--fractions", "0.25,1", "--steps", "15", "--output", str(out), *SMALL],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(done before)") == 2 and "training in" not in again.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--fractions", "0,0.5", "--steps", "5"], "--fractions must lie in (0, 1]"),
        (["--fractions", "a", "--steps", "5"], "--fractions must be numbers"),
        (["--steps", "-1"], "--steps must be positive"),
    ],
)
def test_bad_arguments_get_one_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    done = subprocess.run(
        [*COMMAND, "toy_reverse", *arguments, "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"seq2seqkit: error: {message}")
