"""Every registered task builds, trains a few steps and scores itself with its own metrics, so a
task that is declared but not wired into a reader, a featurizer or its metrics cannot pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seq2seqkit
from conftest import tone_manifest  # this folder's
from seq2seqkit.cli import main
from seq2seqkit.errors import ConfigError
from seq2seqkit.tasks import TASKS, task_config

TINY_MODEL = {
    "embedding_size": 8,
    "dropout": 0.0,
    "encoder": {"hidden_size": 8, "num_layers": 1},
    "decoder": {"hidden_size": 16, "num_layers": 1},
}
TINY_TRANSFORMER = {
    "architecture": "transformer",
    "transformer": {"encoder_layers": 1, "decoder_layers": 1, "d_model": 8, "heads": 2, "ff_size": 16},
}


def tiny_data(task: str, directory: Path) -> dict[str, object]:
    """The data section of a tiny run of ``task``: its own generated or packaged data, a few
    SQuAD-layout questions, a manifest of tones, or a few JSONL pairs in a general format."""
    if task == "g2p":
        return {"max_src_len": 6}  # the shortest words of CMUdict: a small, fast training set
    if task == "asr":
        manifest = str(tone_manifest(directory))
        return {"train": manifest, "valid": manifest, "test": manifest}
    if task == "language_model":  # one sentence a line
        path = directory / "text.txt"
        path.write_text("".join(f"word {i} here\n" for i in range(30)))
        return {"train": str(path), "valid": str(path)}
    if TASKS[task].readers and task != "qa":
        return {}
    splits = {
        s: str(directory / f"{s}.{'json' if task == 'qa' else 'jsonl'}") for s in ("train", "valid", "test")
    }
    if task == "qa":
        qas = [{"question": f"what is {i}?", "answers": [{"text": f"it is {i}"}]} for i in range(20)]
        text = json.dumps({"data": [{"paragraphs": [{"context": "it is 1 and it is 2.", "qas": qas}]}]})
    else:
        text = "".join(
            json.dumps({"src": f"word {i} here", "tgt": f"wort {i} hier"}) + "\n" for i in range(30)
        )
    for path in splits.values():
        Path(path).write_text(text)
    return {"format": "squad" if task == "qa" else "jsonl", **splits}


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_trains_and_scores(name: str, architecture: str, tmp_path: Path) -> None:
    task = TASKS[name]
    raw = {
        "task": name,
        "data": tiny_data(name, tmp_path),
        "model": TINY_MODEL if architecture == "rnn" else TINY_TRANSFORMER,
        "training": {"max_steps": 3, "batch_tokens": 400, "precision": "float32", "threads": 1},
        "decoding": {"beam_size": 2, "max_length_offset": 2},
    }
    if name == "language_model":  # recurrent only; judged by perplexity, not by generated outputs
        if architecture == "transformer":
            with pytest.raises(ConfigError, match="model.decoder.context is an option of the RNN family"):
                task_config(raw)
            return
        model_dir = seq2seqkit.train(task_config(raw), tmp_path / name)
        assert "valid_ppl" in (model_dir / "validations.jsonl").read_text()
        assert not (model_dir / "test_scores.json").exists()
        return
    model_dir = seq2seqkit.train(task_config(raw), tmp_path / name)
    scores = json.loads((model_dir / "test_scores.json").read_text())
    assert [metric.name for metric in task.metrics] == [
        key for key in scores if key not in ("beam", "segments", "greedy")
    ]
    validations = [json.loads(line) for line in (model_dir / "validations.jsonl").read_text().splitlines()]
    assert validations and task.primary.name in validations[-1]
    some_input = str(tmp_path / "wav" / "0.wav") if name == "asr" else "abc"
    assert seq2seqkit.load(model_dir).generate([some_input])[0].text is not None


def test_generate_reads_json_lines_for_a_model_with_several_source_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = task_config(
        {
            "task": "qa",
            "data": {**tiny_data("qa", tmp_path), "shared_vocab": True},
            "model": {**TINY_MODEL, "encoder": {"hidden_size": 8, "num_layers": 1, "field_match": True}},
            "training": {"max_steps": 2, "batch_tokens": 400, "precision": "float32", "threads": 1},
            "decoding": {"beam_size": 1, "max_length_offset": 2},
        }
    )
    model_dir = seq2seqkit.train(config, tmp_path / "qa")
    assert "field" in dict(seq2seqkit.load(model_dir).model.encoder.embedding.named_children())
    capsys.readouterr()
    inputs = tmp_path / "questions.jsonl"
    inputs.write_text(json.dumps({"question": "what is 1?", "context": "it is 1."}) + "\n\n")
    assert main(["generate", str(model_dir), "--input", str(inputs)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # an answer per line, the empty one empty
    inputs.write_text(json.dumps({"question": "what is 1?"}) + "\n")
    assert main(["generate", str(model_dir), "--input", str(inputs)]) == 1
    assert f"{inputs}:1: field 'context' is missing" in capsys.readouterr().err

    # an untrained model's answers, constrained: pieces of the context, not of the question
    contexts = ["it is 1 and it is 2.", "is 21 it"]
    inputs.write_text("".join(json.dumps({"question": "what?", "context": c}) + "\n" for c in contexts))
    assert main(["generate", str(model_dir), "--input", str(inputs), "--span-constrained"]) == 0
    answers = capsys.readouterr().out.splitlines()
    assert all(answer and answer in context for answer, context in zip(answers, contexts, strict=True))
