"""Back-translation's pieces: sampled generation (generate --sample), several training sources mixed
by weight (data.extra_train), and tags marking synthetic sources, at generation only when asked."""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

import seq2seqkit
from conftest import COMMAND, FAST, TINY  # this folder's
from seq2seqkit.decoding.generate import generate_ids
from seq2seqkit.decoding.search import Sampler
from seq2seqkit.errors import ConfigError, DataError
from seq2seqkit.tasks import task_config
from seq2seqkit.workflow import _encode_training_data, _read_splits, weighted_indices


def test_sampler_draws_from_the_distribution_and_top_k_1_is_the_argmax() -> None:
    probs = torch.tensor([[0.6, 0.25, 0.1, 0.05]])
    log_probs = probs.log().expand(20000, 4).contiguous()
    scores, tokens = Sampler(seed=0).pick(log_probs)
    shares = torch.bincount(tokens, minlength=4).float() / tokens.numel()
    assert torch.allclose(shares, probs[0], atol=0.015)
    assert torch.allclose(scores, probs[0].log()[tokens])  # the model's own log-probability
    _, top2 = Sampler(top_k=2, seed=0).pick(log_probs)
    assert set(top2.tolist()) == {0, 1}
    _, top1 = Sampler(top_k=1).pick(log_probs[:50])
    assert top1.tolist() == [0] * 50
    _, cold = Sampler(temperature=0.05, seed=0).pick(log_probs[:200])
    assert cold.tolist() == [0] * 200


def test_sampled_generation_is_seeded_and_differs_from_search(reverse_model: Path) -> None:
    model = seq2seqkit.load(reverse_model, device="cpu")
    words = ["abcdef", "bcadefg", "gfedcba", "aabbcc", "cdefab", "fedcab", "abcabc", "ggaabb"]

    def sampled(seed: int, top_k: int = 0) -> list[str]:
        sampler = Sampler(top_k, 1.0, seed)
        return [o.text for o in model.generate(words, sampler=sampler)]

    greedy = [o.text for o in model.generate(words, beam=1)]
    assert sampled(3) == sampled(3)
    assert sampled(3) != sampled(4)
    assert sampled(3) != greedy
    assert sampled(5, top_k=1) == greedy
    sources = [model.encode_source(w).features for w in words]
    with pytest.raises(ValueError, match="one output per source"):
        generate_ids(model.model, sources, beam_size=3, sampler=Sampler())


def test_generate_sample_on_the_command_line(reverse_model: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*COMMAND, "generate", str(reverse_model), *args],
            input="abcdef\nbcadefg\ngfedcba\naabbcc\n",
            capture_output=True,
            text=True,
            timeout=120,
        )

    first, again = run("--sample", "--seed", "7"), run("--sample", "--seed", "7", "--top-k", "0")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout and len(first.stdout.splitlines()) == 4
    for args, fragment in (
        (("--sample", "--beam", "4"), "leave out --beam"),
        (("--sample", "--top-k", "-1"), "--top-k must be at least 0"),
        (("--sample", "--temperature", "0"), "--temperature must be positive"),
        (("--top-k", "5"), "--top-k needs --sample"),
        (("--tag", "<BT>"), "not one of this model's training tags (none)"),
    ):
        result = run(*args)
        assert result.returncode != 0 and fragment in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_weights_fill_their_share_of_each_epoch() -> None:
    weights = [2.0] * 100 + [0.5] * 60 + [1.0] * 30 + [0.01] * 10
    first = weighted_indices(weights, random.Random("a"))
    counts = Counter(first)
    assert sum(counts[i] for i in range(100)) == 200 and all(counts[i] == 2 for i in range(100))
    assert sum(counts[i] for i in range(100, 160)) == 30
    assert all(counts[i] == 1 for i in range(160, 190))
    assert sum(counts[i] for i in range(190, 200)) == 1  # a tiny weight still shows one pair
    second = weighted_indices(weights, random.Random("b"))
    assert {i for i in first if 100 <= i < 160} != {i for i in second if 100 <= i < 160}
    assert first == weighted_indices(weights, random.Random("a"))


def write_sources(directory: Path) -> None:
    """Genuine pairs (words -> the words reversed) and a synthetic source of other words."""
    rng = random.Random(2)
    for name, letters, size in (("train", "abcdef", 60), ("valid", "abcdef", 8), ("synthetic", "uvwxyz", 40)):
        rows = []
        for _ in range(size):
            words = ["".join(rng.choices(letters, k=3)) for _ in range(rng.randint(2, 4))]
            rows.append(f"{' '.join(words)}\t{' '.join(reversed(words))}\n")
        (directory / f"{name}.tsv").write_text("".join(rows))


def mixed_config(directory: Path, **extra: Any) -> dict[str, Any]:
    source = {"path": str(directory / "synthetic.tsv"), "weight": 0.5, "tag": "<BT>", **extra}
    return {
        "task": "translation",
        "data": {
            "format": "tsv",
            "train": str(directory / "train.tsv"),
            "valid": str(directory / "valid.tsv"),
            "train_weight": 2,
            "extra_train": [source],
            "src_tokenizer": {"type": "word"},
            "tgt_tokenizer": {"type": "word"},
        },
        "model": TINY,
        "training": {**FAST, "max_steps": 3, "evaluate_test": False},
        "decoding": {"beam_size": 1},
    }


def test_a_tag_marks_the_synthetic_pairs_only_and_generation_only_when_asked(tmp_path: Path) -> None:
    write_sources(tmp_path)
    config = task_config(mixed_config(tmp_path))
    model_dir = seq2seqkit.train(config, tmp_path / "model")
    assert (model_dir / "src_vocab.txt").read_text().split("\n")[4] == "<BT>"  # after the 4 specials
    assert "<BT>" not in (model_dir / "tgt_vocab.txt").read_text().split("\n")
    card = (model_dir / "README.md").read_text()
    assert "synthetic.tsv`, weight 0.5, each source after the tag `<BT>`" in card
    assert "**weight of the train split**: 2" in card

    pipeline = seq2seqkit.load(model_dir, device="cpu")
    train_pairs, _, _ = _read_splits(seq2seqkit.tasks.task_of(config), config)
    assert [(p.weight, p.tag) for p in train_pairs] == [(2.0, "")] * 60 + [(0.5, "<BT>")] * 40
    epoch = _encode_training_data(pipeline, train_pairs).for_epoch(3)
    assert len(epoch.src) == 2 * 60 + 20
    tag_id = pipeline.source.vocab.index["<BT>"]
    firsts = Counter(src[0] == tag_id for src in epoch.src)
    assert firsts == {False: 120, True: 20}
    assert all(tag_id not in src[1:] for src in epoch.src)

    assert pipeline.encode_source("abc def").labels == ["abc", "def"]
    assert pipeline.encode_source("abc def", "<BT>").labels == ["<BT>", "abc", "def"]
    with pytest.raises(ConfigError, match=r"'<XX>': not one of this model's training tags \(<BT>\)"):
        pipeline.generate(["abc"], tag="<XX>")
    assert len(pipeline.generate(["abc def"], tag="<BT>")) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weight": 0}, r"data.extra_train\[0\].weight must be positive, got 0"),
        ({"weight": -2}, r"data.extra_train\[0\].weight = -2.0 is out of range"),
        ({"tag": "<B T>"}, r"data.extra_train\[0\].tag = '<B T>' must be one token"),
        ({"tag": "<sep>"}, r"must be one token"),
        ({"path": ""}, r"data.extra_train\[0\].path is required"),
        ({"wieght": 1}, r"unknown key 'data.extra_train\[0\].wieght'; did you mean"),
    ],
)
def test_bad_training_sources_are_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        task_config(mixed_config(tmp_path, **change))


def test_a_bad_main_weight_and_a_missing_source_file_are_named(tmp_path: Path) -> None:
    write_sources(tmp_path)
    raw = mixed_config(tmp_path)
    raw["data"]["train_weight"] = 0
    with pytest.raises(ConfigError, match="data.train_weight must be positive, got 0"):
        task_config(raw)
    config = task_config(mixed_config(tmp_path, path=str(tmp_path / "missing.tsv")))
    with pytest.raises(DataError, match=r"missing.tsv: no such file"):
        _read_splits(seq2seqkit.tasks.task_of(config), config)
