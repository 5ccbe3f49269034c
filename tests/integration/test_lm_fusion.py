"""Language models (task language_model) and shallow fusion (decoding.lm): a tiny LM learns the
targets of the reverse task, weight 0 decodes exactly as without it, a weight adds exactly that
share of the LM's log-probability to each output's score, and wrong models are one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

import seq2seqkit
from conftest import COMMAND, FAST, reverse_config  # this folder's
from seq2seqkit.data.vocab import EOS_ID, SOS_ID
from seq2seqkit.decoding.search import Sampler
from seq2seqkit.errors import ConfigError
from seq2seqkit.model.seq2seq import Seq2Seq
from seq2seqkit.tasks import read_split, task_config

WORDS = ["abcdef", "bcadefg", "gfedcba", "aabbcc", "cdefab", "fedcab"]


def train_lm(directory: Path, lines: dict[str, list[str]], steps: int = 60) -> Path:
    """A language model of ``lines`` (by split), characters, tiny."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, texts in lines.items():
        (directory / f"{split}.txt").write_text("\n".join(texts) + "\n")
    config = task_config(
        {
            "task": "language_model",
            "data": {"train": str(directory / "train.txt"), "valid": str(directory / "valid.txt"),
                     "tgt_tokenizer": {"type": "char"}},
            "model": {"embedding_size": 16, "dropout": 0.0, "decoder": {"hidden_size": 32, "num_layers": 1}},
            "training": {**FAST, "max_steps": steps, "validate_every": 20, "lr": 0.01},
        }
    )  # fmt: skip
    return seq2seqkit.train(config, directory / "lm")


@pytest.fixture(scope="module")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LM of the reverse task's own training targets (so the vocabularies match)."""
    config = reverse_config()
    lines = {split: [pair.tgt for pair in read_split(config, split)] for split in ("train", "valid")}
    return train_lm(tmp_path_factory.mktemp("lm"), lines)


def test_a_language_model_learns_and_is_picked_by_perplexity(language_model: Path) -> None:
    records = [json.loads(line) for line in (language_model / "validations.jsonl").read_text().splitlines()]
    perplexities = [record["valid_ppl"] for record in records]
    assert len(perplexities) == 3
    assert perplexities[-1] < perplexities[0] < 20  # 7 letters and <eos>: it learns their shares
    card = (language_model / "README.md").read_text()
    assert "LSTM language model" in card and "best valid_ppl" in card
    assert not (language_model / "test_scores.json").exists()


@torch.no_grad()
def forced_log_prob(network: Seq2Seq, source: list[int], output: list[int]) -> float:
    """log p(output <eos> | source) under ``network``, step by step."""
    src = torch.tensor([source])
    enc = network.encode(src, torch.tensor([len(source)]))
    state = network.init_state(enc)
    total = 0.0
    for prev, token in zip([SOS_ID, *output], [*output, EOS_ID], strict=True):
        log_probs, state, _ = network.step(torch.tensor([prev]), enc, state)
        total += float(log_probs[0, token])
    return total


def test_fusion_weight_0_is_plain_decoding_and_a_weight_adds_its_share(
    reverse_model: Path, language_model: Path
) -> None:
    model = seq2seqkit.load(reverse_model, device="cpu")
    plain = {beam: model.generate(WORDS, beam=beam) for beam in (1, 3)}
    model.set_decoding(lm=str(language_model), lm_weight=0.0)
    for beam, outputs in plain.items():
        fused = model.generate(WORDS, beam=beam)
        assert [o.text for o in fused] == [o.text for o in outputs]
        assert [o.score for o in fused] == pytest.approx([o.score for o in outputs], abs=1e-4)

    model.set_decoding(lm_weight=0.5)
    lm = seq2seqkit.load(language_model, device="cpu").model
    assert isinstance(model.model, Seq2Seq) and isinstance(lm, Seq2Seq)
    for beam in (1, 3):  # beam search reorders the LM's states with its hypotheses
        for word, output in zip(WORDS, model.generate(WORDS, beam=beam, nbest=beam), strict=True):
            for hypothesis in output.hypotheses:
                ids = model.target.vocab.encode(hypothesis.tokens)
                expected = forced_log_prob(model.model, model.encode_source(word).features, ids)
                expected += 0.5 * forced_log_prob(lm, [0], ids)
                assert hypothesis.score == pytest.approx(expected, abs=1e-3)


def test_a_wrong_language_model_is_a_one_line_error(
    reverse_model: Path, language_model: Path, tmp_path: Path
) -> None:
    model = seq2seqkit.load(reverse_model, device="cpu")
    model.set_decoding(lm=str(reverse_model))
    with pytest.raises(ConfigError, match="task 'reverse', not a language model"):
        model.generate(WORDS)
    other = train_lm(tmp_path, {"train": ["xyz", "zzy"], "valid": ["xy"]}, steps=2)
    model.set_decoding(lm=str(other))
    with pytest.raises(ConfigError, match="another target vocabulary or tokenizer"):
        model.generate(WORDS)
    model.set_decoding(lm=str(language_model))
    with pytest.raises(ConfigError, match="no language model"):
        model.generate(WORDS, sampler=Sampler())


def test_generate_and_evaluate_take_a_language_model(reverse_model: Path, language_model: Path) -> None:
    def run(command: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*COMMAND, command, *args], input="\n".join(WORDS) + "\n", capture_output=True, text=True
        )

    plain = run("generate", str(reverse_model), "--beam", "2")
    fused = run("generate", str(reverse_model), "--beam", "2", "--lm", str(language_model), "--lm-weight=0")
    assert plain.returncode == fused.returncode == 0 and plain.stdout == fused.stdout
    scored = run("evaluate", "--model", str(reverse_model), "--split", "valid", "--lm", str(language_model))
    assert scored.returncode == 0 and "exact" in scored.stdout.lower(), scored.stderr
    for args, message in (
        (("--lm-weight", "-1"), "lm_weight"),
        (("--lm", str(reverse_model / "nowhere")), "nowhere"),
    ):
        bad = run("generate", str(reverse_model), "--lm", str(language_model), *args)
        assert bad.returncode != 0 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
