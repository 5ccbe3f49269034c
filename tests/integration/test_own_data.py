"""``seq2seqkit train DATA`` end to end as a user runs it, and the warnings training prints."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seqkit.config import read_recipe

SCRIPT = Path(sys.executable).parent / "seq2seqkit"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "seq2seqkit.cli"]


def run(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A TSV of letters and their reversal, trained on for a few seconds with the chosen recipe."""
    folder = tmp_path_factory.mktemp("own")
    rng = random.Random(3)
    words = {"".join(rng.choices("abcdefgh", k=rng.randint(3, 7))) for _ in range(700)}
    data = folder / "letters.tsv"
    data.write_text("".join(f"{w}\t{w[::-1]}\n" for w in sorted(words)))
    out = folder / "model"
    result = run("train", data, "--minutes", "0.15", "--output", out, "--set", "training.threads=1")
    return data, out, result


def test_train_on_a_tsv_chooses_prints_and_writes_its_recipe(
    trained: tuple[Path, Path, subprocess.CompletedProcess],
) -> None:
    data, out, result = trained
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tokenizer (source): characters (short strings" in result.stdout
    assert "task: transduction, scored by exact match and chrF" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == str(out)
    recipe = read_recipe(out / "recipe.yaml")
    assert recipe["task"] == "transduction" and recipe["training"]["max_minutes"] == 0.15
    held_out = [len((out / "data" / f"{s}.tsv").read_text().splitlines()) for s in ("train", "valid", "test")]
    assert sum(held_out) == len(data.read_text().splitlines())
    scores = json.loads((out / "test_scores.json").read_text())
    assert {"exact match", "chrF"} <= set(scores)
    assert (out / "README.md").is_file()


def test_the_model_evaluates_and_generates_as_any_other(
    trained: tuple[Path, Path, subprocess.CompletedProcess],
) -> None:
    _, out, _ = trained
    evaluated = run("evaluate", "--model", out, "--split", "test")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "exact match" in evaluated.stdout
    generated = run("generate", out, stdin="abc\nhgfe\n")
    assert generated.returncode == 0 and len(generated.stdout.splitlines()) == 2


def test_the_written_recipe_reproduces_and_a_second_run_is_refused(
    trained: tuple[Path, Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    data, out, _ = trained
    again = run("train", out / "recipe.yaml", "--output", tmp_path / "again", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "task: transduction" in again.stdout
    flags = run("train", "toy_reverse", "--task", "qa", "--dry-run")
    assert flags.returncode == 1 and "--task applies to data, not to a recipe" in flags.stderr
    refused = run("train", data, "--output", out)
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == f"seq2seqkit: error: {out} already holds a trained model; choose another --output, or --resume it"
    )


def test_dry_run_trains_nothing_and_bad_data_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"w{i}x\tx{i}w\n" for i in range(300)))
    dry = run("train", data, "--dry-run", "--output", tmp_path / "m")
    assert dry.returncode == 0, dry.stderr
    assert "max_minutes: 10.0" in dry.stdout and not (tmp_path / "m").exists()
    (tmp_path / "one.tsv").write_text("only one column\n")
    bad = run("train", tmp_path / "one.tsv")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"seq2seqkit: error: {tmp_path / 'one.tsv'}:1: one column; a TSV of pairs needs the source "
        "column(s), a TAB, then the target"
    ]


def test_warnings_for_a_short_budget_and_dropped_pairs(tmp_path: Path) -> None:
    result = run(
        "train", "toy_reverse", "--output", tmp_path / "m",
        # an epoch of about 2,800 batches: far more than 3 seconds buy, however fast the machine
        "--set", "data.synthetic.train_size=40000", "--set", "data.max_src_len=6",
        "--set", "training.batch_tokens=50", "--set", "training.max_steps=0",
        "--set", "training.max_minutes=0.05", "--set", "training.evaluate_test=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: training.max_minutes 0.05 buys about" in result.stderr
    assert "warning: data.max_src_len 6 / data.max_tgt_len 200 drop" in result.stderr
