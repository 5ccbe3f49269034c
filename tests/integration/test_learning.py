"""Training learns: tiny models solve synthetic tasks, with attention and with a fixed context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seq2seqkit
from seq2seqkit.config import Config
from seq2seqkit.evaluation import evaluate
from seq2seqkit.plots import attention_heatmap
from seq2seqkit.tasks import read_split, task_config, task_of


def synthetic_config(
    task: str, context: str, *, max_length: int, encoder_hidden: int, steps: int, rnn: str = "lstm"
) -> Config:
    return task_config(
        {
            "task": task,
            "data": {
                "format": "synthetic",
                "synthetic": {
                    "task": task,
                    "train_size": 2000,
                    "eval_size": 200,
                    "min_length": 2,
                    "max_length": max_length,
                    "alphabet_size": 6,
                },
            },
            "model": {
                "rnn_type": rnn,
                "embedding_size": 16,
                "dropout": 0.0,
                "encoder": {"hidden_size": encoder_hidden, "num_layers": 1, "bidirectional": True},
                "decoder": {"hidden_size": 64, "num_layers": 1, "context": context, "attention": "general"},
            },
            "training": {
                "seed": 1,
                "batch_tokens": 300,
                "lr": 0.01,
                "scheduler": "warmup_cosine",
                "warmup_steps": 10,
                "max_steps": steps,
                "validate_every": 100,
                "label_smoothing": 0.0,
                "precision": "float32",
                "threads": 1,
            },
            "decoding": {"beam_size": 1},
        }
    )


def test_reverse_with_attention(tmp_path: Path) -> None:
    config = synthetic_config("reverse", "attention", max_length=6, encoder_hidden=32, steps=200)
    model_dir = seq2seqkit.train(config, tmp_path / "reverse")

    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["segments"] == 200
    assert scores["exact match"] >= 95.0
    # the saved model, reloaded, scores the same on the test split
    pipeline = seq2seqkit.load(model_dir)
    result = evaluate(pipeline, read_split(config, "test"), task_of(config), beam=1)
    assert result.scores["exact match"] == scores["exact match"]
    assert pipeline.generate(["abcdef"], beam=1)[0].text == "fedcba"


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_copy_without_attention(tmp_path: Path, rnn: str) -> None:
    """The source reaches the decoder only as one context vector c, fed at every step (Cho et al.)."""
    config = synthetic_config("copy", "every_step", max_length=4, encoder_hidden=64, steps=400, rnn=rnn)
    model_dir = seq2seqkit.train(config, tmp_path / "copy")

    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["exact match"] >= 95.0
    assert seq2seqkit.load(model_dir).model.decoder.attention is None


def test_best_validation_weights_are_the_model(tmp_path: Path) -> None:
    """Each validation is logged; the best weights are the ones saved as the model."""
    config = synthetic_config("reverse", "attention", max_length=5, encoder_hidden=32, steps=120)
    model_dir = seq2seqkit.train(config, tmp_path / "reverse")
    records = [json.loads(line) for line in (model_dir / "validations.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [100, 120]
    best = max(r["exact match"] for r in records)
    pipeline = seq2seqkit.load(model_dir)
    result = evaluate(pipeline, read_split(config, "valid"), task_of(config), beam=1)
    assert result.scores["exact match"] == best
    assert records[-1]["valid_loss"] < 1.0


def test_reverse_with_coverage_attention(tmp_path: Path) -> None:
    """Bahdanau attention with coverage and its loss (See et al., 2017) learns reversal too."""
    raw = synthetic_config("reverse", "attention", max_length=6, encoder_hidden=32, steps=200).to_dict()
    raw["model"]["decoder"].update(attention="bahdanau", coverage=True)
    model_dir = seq2seqkit.train(task_config(raw), tmp_path / "coverage")
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["exact match"] >= 90.0


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_copy_attention_copies_words_the_vocabulary_lacks(tmp_path: Path, architecture: str) -> None:
    """A pointer-generator (See et al., 2017) with a vocabulary of only 4 of the 6 letters learns
    to copy: the 2 unknown letters come out verbatim, which a plain softmax can only write as <unk>.
    The Transformer's copy distribution is its last layer's cross-attention, heads averaged."""
    if architecture == "rnn":
        raw = synthetic_config("copy", "attention", max_length=5, encoder_hidden=32, steps=300).to_dict()
    else:
        raw = transformer_config("copy", steps=600).to_dict()
    raw["data"]["max_vocab_size"] = 8  # the 4 specials and 4 letters
    raw["model"]["decoder"]["copy"] = True
    model_dir = seq2seqkit.train(task_config(raw), tmp_path / "copy")
    pipeline = seq2seqkit.load(model_dir)
    known = set(pipeline.target.vocab.tokens[4:])
    unknown = sorted(set("abcdef") - known)
    assert len(unknown) == 2
    word = "".join([unknown[0], *sorted(known)[:2], unknown[1]])
    assert pipeline.generate([word], beam=1)[0].text == word
    best = pipeline.generate([word], beam=3, copy_gates=True)[0].hypotheses[0]
    assert best.text == word and best.copy_gate is not None
    # p_gen per step: the unknown letters (first and last) could only have been copied
    assert best.copy_gate.shape == (len(word) + 1,)
    assert best.copy_gate[0] < 0.5 and best.copy_gate[len(word) - 1] < 0.5
    picture = tmp_path / "attention.png"
    attention_heatmap(best.attention, list(word), best.tokens, picture, copy_gate=best.copy_gate)
    assert picture.stat().st_size > 0
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["exact match"] >= 90.0


def transformer_config(task: str, steps: int) -> Config:
    """A tiny Transformer (model.architecture: transformer) on a synthetic task."""
    raw = synthetic_config(task, "attention", max_length=6, encoder_hidden=32, steps=steps).to_dict()
    raw["model"] = {
        "architecture": "transformer",
        "transformer": {
            "encoder_layers": 2,
            "decoder_layers": 2,
            "d_model": 32,
            "heads": 4,
            "ff_size": 64,
            "dropout": 0.0,
            "attention_dropout": 0.0,
        },
        "decoder": {"tie_embeddings": True},
    }
    raw["training"] |= {"lr": 3e-3, "warmup_steps": 50}
    return task_config(raw)


@pytest.mark.parametrize("task", ["reverse", "copy"])
def test_a_tiny_transformer_learns(tmp_path: Path, task: str) -> None:
    config = transformer_config(task, steps=800)
    model_dir = seq2seqkit.train(config, tmp_path / task)
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert scores["exact match"] >= 95.0, scores
    pipeline = seq2seqkit.load(model_dir)
    expected = "fedcba" if task == "reverse" else "abcdef"
    assert pipeline.generate(["abcdef"], beam=1)[0].text == expected
    assert pipeline.generate(["abcdef"], beam=4)[0].text == expected
