"""Ensembles: several trained models decoding as one, from Python and from the command line."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import torch

import seq2seqkit
from conftest import COMMAND, reverse_config  # this folder's
from seq2seqkit.errors import ConfigError
from seq2seqkit.model.ensemble import Ensemble

WORDS = ["abcd", "hello", "xyzzy", "reverse"]


@pytest.fixture(scope="module")
def second_reverse_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny reverse model: the same data and vocabulary as ``reverse_model``, another seed."""
    return seq2seqkit.train(reverse_config(seed=7), tmp_path_factory.mktemp("ensemble") / "reverse-seed7")


def test_a_model_ensembled_with_itself_decodes_as_it_does(reverse_model: Path) -> None:
    single = seq2seqkit.load(reverse_model)
    twice = seq2seqkit.ensemble([seq2seqkit.load(reverse_model), seq2seqkit.load(reverse_model)])
    for beam in (1, 3):
        alone, together = single.generate(WORDS, beam=beam), twice.generate(WORDS, beam=beam)
        assert [o.text for o in together] == [o.text for o in alone]
        for a, b in zip(alone, together, strict=True):
            assert b.score == pytest.approx(a.score, abs=1e-4)


def test_ensemble_step_is_the_log_of_the_mean(reverse_model: Path, second_reverse_model: Path) -> None:
    members = [seq2seqkit.load(reverse_model).model, seq2seqkit.load(second_reverse_model).model]
    ensemble = Ensemble(members)
    src = torch.tensor([[4, 5, 6, 7], [5, 6, 0, 0]])
    lengths = torch.tensor([4, 2])
    prev = torch.tensor([1, 1])
    with torch.inference_mode():
        enc = ensemble.encode(src, lengths)
        log_probs, _, _ = ensemble.step(prev, enc, ensemble.init_state(enc))
        probs = [m.step(prev, e, m.init_state(e))[0].exp() for m, e in zip(members, enc.parts, strict=True)]
    assert not torch.allclose(probs[0], probs[1])  # two different models
    torch.testing.assert_close(log_probs, ((probs[0] + probs[1]) / 2).log())
    assert log_probs.exp().sum(-1).sub(1).abs().max() < 1e-5


def test_an_ensemble_needs_one_vocabulary(reverse_model: Path, fields_model: Path) -> None:
    with pytest.raises(ConfigError, match="identical tokenizers and vocabularies"):
        seq2seqkit.ensemble([seq2seqkit.load(reverse_model), seq2seqkit.load(fields_model)])


def test_generate_and_evaluate_an_ensemble(
    reverse_model: Path, second_reverse_model: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "words.txt"
    inputs.write_text("\n".join(WORDS) + "\n")
    models = [str(reverse_model), str(second_reverse_model)]
    generated = subprocess.run(
        [*COMMAND, "generate", *models, "--input", str(inputs), "--beam", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    both = seq2seqkit.ensemble([seq2seqkit.load(m) for m in models])
    assert generated.stdout.splitlines() == [o.text for o in both.generate(WORDS, beam=3)]
    evaluated = subprocess.run(
        [*COMMAND, "evaluate", "--model", models[0], "--model", models[1], "--split", "test", "--beam", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "exact match:" in evaluated.stdout
    score = float(evaluated.stdout.split("exact match:")[1].split()[0])
    assert 0 <= score <= 100 and not math.isnan(score)
