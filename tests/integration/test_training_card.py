"""The model card, README.md, that training writes into the model directory: written when training
starts, rewritten when it ends with the figures the directory's other files hold."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest
import torch
from test_cli import run  # this folder's

import seq2seqkit
from conftest import reverse_config  # this folder's
from seq2seqkit.tasks import read_split
from seq2seqkit.training.trainer import Trainer

MAX_SRC_LEN = 7  # drops the training pairs of 8 letters: kept < read


def card_config() -> seq2seqkit.Config:
    config = reverse_config()
    return dataclasses.replace(
        config, name="tiny-reverse", data=dataclasses.replace(config.data, max_src_len=MAX_SRC_LEN)
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny reverse model (a few seconds), and its card as it was when the training loop started."""
    cards = []
    run_loop = Trainer.run

    def read_card_then_run(trainer: Trainer) -> None:
        cards.append((trainer.out / "README.md").read_text(encoding="utf-8"))
        run_loop(trainer)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "run", read_card_then_run)
        model_dir = seq2seqkit.train(card_config(), tmp_path_factory.mktemp("card") / "reverse")
    return model_dir, cards[0]


@pytest.fixture(scope="module")
def card(trained: tuple[Path, str]) -> str:
    return (trained[0] / "README.md").read_text(encoding="utf-8")


def test_the_card_written_at_the_start_says_training_has_not_finished(
    trained: tuple[Path, str], card: str
) -> None:
    _, first = trained
    assert first.startswith("# tiny-reverse\n")
    assert "**Training has not finished**" in first and "when training ends." in first
    assert "Training has not finished" not in card and "Training finished at step 80." in card


def test_the_card_names_the_task_and_the_parameter_count(trained: tuple[Path, str], card: str) -> None:
    model = seq2seqkit.load(trained[0]).model
    assert card.startswith("# tiny-reverse\n")
    assert "- **task**: `reverse`" in card
    assert "- **family**: LSTM encoder-decoder" in card
    assert f"- **parameters**: {sum(p.numel() for p in model.parameters()):,}\n" in card


def test_the_card_counts_the_pairs(trained: tuple[Path, str], card: str) -> None:
    config, pipeline = card_config(), seq2seqkit.load(trained[0])
    pairs = read_split(config, "train")
    kept = sum(len(pipeline.source.encode(p.src).features) <= MAX_SRC_LEN for p in pairs)
    assert 0 < kept < len(pairs) == 2000
    assert f"- **training pairs**: {len(pairs):,} read, {kept:,} kept ({len(pairs) - kept:,} dropped" in card
    assert "- **validation pairs**: 20\n" in card and "- **test pairs**: 20\n" in card


def test_the_card_holds_the_validation_and_test_scores(trained: tuple[Path, str], card: str) -> None:
    model_dir = trained[0]
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["beam"] == 3 and "| metric | beam 3 | greedy |" in card
    for name, value in scores.items():
        if name not in ("beam", "segments", "greedy"):
            assert f"| {name} | {value:.2f} | {scores['greedy'][name]:.2f} |" in card
    (best,) = [json.loads(line) for line in (model_dir / "validations.jsonl").read_text().splitlines()]
    best_line = f"- **best exact match**: {best['exact match']:.2f} at step 80 (epoch {best['epoch']}), of 1 "
    assert best_line in card


def test_the_card_reproduces_the_test_scores(trained: tuple[Path, str], card: str) -> None:
    model_dir = trained[0]
    assert f"seq2seqkit train {model_dir / 'config.yaml'} --output {model_dir}-retrained\n" in card
    (evaluate,) = [line for line in card.splitlines() if line.startswith("seq2seqkit evaluate ")]
    assert evaluate == f"seq2seqkit evaluate --model {model_dir} --split test --beam 3"
    result = run(*shlex.split(evaluate)[1:])
    assert result.returncode == 0, result.stderr
    expected = json.loads((model_dir / "test_scores.json").read_text())["exact match"]
    assert result.stdout.splitlines() == [f"exact match: {expected:.2f}"]


def test_the_card_describes_the_machine(card: str) -> None:
    assert f"- **torch**: {torch.__version__}\n" in card
    assert "- **precision**: float32 (training.precision: float32)" in card
    assert f"- **device**: {'cuda' if torch.cuda.is_available() else 'cpu'}" in card
    assert f"Written by seq2seqkit {seq2seqkit.__version__}." in card
