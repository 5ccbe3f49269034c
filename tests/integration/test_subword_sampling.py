"""Subword regularization (data.*_tokenizer.sampling): each epoch a new, seeded segmentation of the
training pairs; validation and generation stay deterministic; resuming continues exactly."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import seq2seqkit
from seq2seqkit import checkpoint
from seq2seqkit.build import build_featurizers, model_for
from seq2seqkit.data.tokenizers import SentencePieceTokenizer, seed_sampling
from seq2seqkit.data.vocab import UNK_ID
from seq2seqkit.errors import ConfigError
from seq2seqkit.pipeline import Pipeline
from seq2seqkit.tasks import task_config
from seq2seqkit.workflow import _encode_training_data, _read_splits

WORDS = [
    "package", "library", "development", "files", "provides", "documentation", "server", "client",
    "module", "plugin",
]  # fmt: skip


def write_pairs(directory: Path) -> None:
    """Sentences of long words -> the same words reversed, in upper case: SentencePiece has long
    words to split in many ways."""
    rng = random.Random(5)
    for split, size in (("train", 400), ("valid", 20), ("test", 20)):
        rows = []
        for _ in range(size):
            words = rng.choices(WORDS, k=rng.randint(2, 6))
            rows.append(f"{' '.join(words)}\t{' '.join(reversed(words)).upper()}\n")
        (directory / f"{split}.tsv").write_text("".join(rows))


def raw_config(directory: Path, max_steps: int, alpha: float = 0.3) -> dict[str, Any]:
    spm = {"type": "sentencepiece", "vocab_size": 80, "sampling": {"alpha": alpha}}
    return {
        "task": "translation",
        "data": {
            "format": "tsv",
            **{split: str(directory / f"{split}.tsv") for split in ("train", "valid", "test")},
            "src_tokenizer": spm,
            "tgt_tokenizer": spm,
        },
        "model": {
            "embedding_size": 16,
            "dropout": 0.2,
            "encoder": {"hidden_size": 16},
            "decoder": {"hidden_size": 32, "attention": "general"},
        },
        "training": {
            "seed": 4,
            "batch_tokens": 300,
            "lr": 0.01,
            "scheduler": "constant",
            "max_steps": max_steps,
            "max_minutes": 0,
            "validate_every": 7,
            "precision": "float32",
            "threads": 1,
            "evaluate_test": False,
        },
        "decoding": {"beam_size": 1},
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    write_pairs(tmp_path)
    return tmp_path


def test_sampling_is_seeded_and_keeps_the_text() -> None:
    texts = [" ".join(random.Random(i).choices(WORDS, k=5)) for i in range(200)]
    tokenizer = SentencePieceTokenizer.train(texts, 60, "bpe")
    sampled = tokenizer.sampling(0.3, -1)
    seed_sampling(1)
    first = [sampled.encode(t) for t in texts]
    seed_sampling(1)
    assert [sampled.encode(t) for t in texts] == first
    assert all(tokenizer.decode(pieces) == text for pieces, text in zip(first, texts, strict=True))
    assert sum(p != tokenizer.encode(t) for p, t in zip(first, texts, strict=True)) > 100
    assert tokenizer.encode(texts[0]) == tokenizer.encode(texts[0])  # the tokenizer itself stays exact


def test_each_epoch_has_its_own_segmentation_of_the_same_pairs(data_dir: Path) -> None:
    config = task_config(raw_config(data_dir, 10))
    train_pairs = _read_splits(seq2seqkit.tasks.task_of(config), config)[0]
    source, target = build_featurizers(config.data, train_pairs)
    pipeline = Pipeline(config, model_for(config.model, source, target, None), source, target)
    pairs = _encode_training_data(pipeline, train_pairs)
    epochs = [pairs.for_epoch(e) for e in (0, 1, 0)]
    assert epochs[0].tgt == epochs[2].tgt and epochs[0].src == epochs[2].src  # seeded by the epoch
    assert epochs[0].tgt != epochs[1].tgt and epochs[0].tgt != pairs.tgt
    assert len(epochs[0].src) == len(epochs[1].src) == len(pairs.src) == len(train_pairs)
    # sampled pieces are in the vocabulary: the vocabulary holds every piece of the model
    assert not any(UNK_ID in ids for epoch in epochs for ids in epoch.tgt + epoch.src)
    # generation segments as before: the best segmentation
    assert pipeline.source.encode(train_pairs[0].src).labels == source.tokenizer.encode(train_pairs[0].src)


def test_resume_with_sampling_equals_uninterrupted_training(tmp_path: Path, data_dir: Path) -> None:
    n = 12  # 11 batches an epoch: the resumed run samples the second epoch again, then the third
    straight = seq2seqkit.train(task_config(raw_config(data_dir, 2 * n)), tmp_path / "straight")
    seq2seqkit.train(task_config(raw_config(data_dir, n)), tmp_path / "resumed")
    resumed = seq2seqkit.train(task_config(raw_config(data_dir, 2 * n)), tmp_path / "resumed", resume=True)
    assert "subword sampling (target)**: BPE-dropout, alpha 0.3" in (straight / "README.md").read_text()
    last = checkpoint.latest_checkpoint(straight), checkpoint.latest_checkpoint(resumed)
    assert last[0] is not None and last[1] is not None
    for name in (checkpoint.WEIGHTS, "optimizer.safetensors"):
        a, b = load_file(str(last[0] / name)), load_file(str(last[1] / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"src_tokenizer": {"type": "char", "sampling": {"alpha": 0.1}}}, "needs type sentencepiece"),
        ({"tgt_tokenizer": {"type": "sentencepiece", "sampling": {"alpha": 1.5}}}, "out of range"),
    ],
)
def test_sampling_config_errors(data_dir: Path, change: dict[str, Any], message: str) -> None:
    raw = raw_config(data_dir, 5)
    raw["data"] |= change
    with pytest.raises(ConfigError, match=message):
        task_config(raw)


def test_sampling_with_copy_gives_extended_ids_of_each_epoch(data_dir: Path) -> None:
    raw = raw_config(data_dir, 5)
    raw["data"]["shared_vocab"] = True
    raw["model"]["decoder"] |= {"copy": True}
    config = task_config(raw)
    train_pairs = _read_splits(seq2seqkit.tasks.task_of(config), config)[0]
    source, target = build_featurizers(config.data, train_pairs)
    pipeline = Pipeline(config, model_for(config.model, source, target, None), source, target)
    pairs = _encode_training_data(pipeline, train_pairs)
    epoch = pairs.for_epoch(0)
    assert epoch.src_extended is not None and epoch.tgt_extended is not None
    assert [len(s) for s in epoch.src_extended] == [len(s) for s in epoch.src]
    assert [len(t) for t in epoch.tgt_extended] == [len(t) for t in epoch.tgt]
    assert epoch.src_extended != pairs.src_extended  # segmented anew, extended ids with it
