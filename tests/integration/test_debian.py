"""Real data: the Debian en-de corpus reads with its documented sizes, and a tiny model translates it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

import seq2seqkit
from seq2seqkit.data.readers import read_parallel
from seq2seqkit.tasks import task_config

SCRIPT = Path(sys.executable).parent / "seq2seqkit"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "seq2seqkit.cli"]


@pytest.mark.parametrize(("split", "lines"), [("train", 30095), ("valid", 472), ("test", 474)])
def test_documented_line_counts(debian_en_de: Path, split: str, lines: int) -> None:
    pairs = read_parallel(debian_en_de / f"{split}.en", debian_en_de / f"{split}.de")
    assert len(pairs) == lines
    assert all(pair.src and pair.tgt for pair in pairs)


def head(source: Path, target: Path, count: int) -> None:
    with source.open(encoding="utf-8") as lines:
        target.write_text("".join(itertools.islice(lines, count)), encoding="utf-8")


def test_tiny_translation_model_trains_and_generates_german(debian_en_de: Path, tmp_path: Path) -> None:
    for split, count in (("train", 2000), ("valid", 40)):
        for lang in ("en", "de"):
            head(debian_en_de / f"{split}.{lang}", tmp_path / f"{split}.{lang}", count)
    spm = {"type": "sentencepiece", "vocab_size": 400}
    config = task_config(
        {
            "task": "translation",
            "data": {
                "format": "parallel",
                "train": str(tmp_path / "train"),
                "valid": str(tmp_path / "valid"),
                "src_suffix": "en",
                "tgt_suffix": "de",
                "src_tokenizer": spm,
                "tgt_tokenizer": spm,
                "shared_vocab": True,
                "max_src_len": 60,
                "max_tgt_len": 60,
            },
            "model": {
                "embedding_size": 32,
                "dropout": 0.0,
                "encoder": {"hidden_size": 32, "num_layers": 1},
                "decoder": {"hidden_size": 64, "num_layers": 1},
            },
            "training": {"batch_tokens": 1500, "lr": 0.01, "max_steps": 60, "validate_every": 60,
                         "threads": 1, "precision": "float32"},
            "decoding": {"beam_size": 2, "max_length_ratio": 1.5, "max_length_offset": 5},
        }
    )  # fmt: skip
    model_dir = seq2seqkit.train(config, tmp_path / "model")
    assert (model_dir / "src.spm.model").is_file() and (model_dir / "tgt.spm.model").is_file()
    assert (model_dir / "src_vocab.txt").read_text() == (model_dir / "tgt_vocab.txt").read_text()

    inputs = (debian_en_de / "test.en").read_text(encoding="utf-8").splitlines()[:5]
    result = subprocess.run(
        [*COMMAND, "generate", str(model_dir)],
        input="\n".join(inputs) + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.split("\n")[:-1]
    assert len(outputs) == len(inputs)
    assert not any("\u2581" in line for line in outputs), "pieces are joined back into words"
    german = set((tmp_path / "train.de").read_text(encoding="utf-8").split())
    assert any(word in german for line in outputs for word in line.split()), outputs


def test_lead_baseline_rouge_on_the_summarization_test_split(debian_summarize: Path) -> None:
    """The first 10 words of each description as its summary: ROUGE-1/2/L 29.9 / 13.2 / 26.5 on
    test with rouge-score and stemming (the figures issue 13 states for this baseline)."""
    from seq2seqkit.metrics import rouge_1, rouge_2, rouge_l

    pairs = read_parallel(debian_summarize / "test.src", debian_summarize / "test.tgt")
    lead = [" ".join(pair.src.split()[:10]) for pair in pairs]
    references = [[pair.tgt] for pair in pairs]
    scores = [round(metric(lead, references), 1) for metric in (rouge_1, rouge_2, rouge_l)]
    assert (len(pairs), scores) == (817, [29.9, 13.2, 26.5])
