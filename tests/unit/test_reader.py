"""The pointer reader (model.decoder.output: pointer): its boundary logits, the answer's position
in the data, answer-holding windows, span decoding, and a tiny reader that learns."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import seq2seqkit
from seq2seqkit.data.featurizers import Encoded, answer_span, window_around
from seq2seqkit.data.tokenizers import CharTokenizer, WordTokenizer
from seq2seqkit.data.vocab import join_fields
from seq2seqkit.decoding.span import best_spans
from seq2seqkit.errors import ConfigError
from seq2seqkit.model.frontends import FieldMatchEmbedding
from seq2seqkit.model.reader import PointerReader
from seq2seqkit.pipeline import ensemble
from seq2seqkit.plots import span_picture
from seq2seqkit.tasks import task_config

SEP = 3


def _reader() -> PointerReader:
    torch.manual_seed(0)
    frontend = FieldMatchEmbedding(20, 8, pad_id=0, separator_id=SEP, common=0)
    return PointerReader(frontend, SEP, hidden_size=6, num_layers=2, dropout=0.0).eval()


def test_boundary_logits_cover_the_paragraph_only() -> None:
    src = torch.tensor([[5, 6, SEP, 7, 8, 9, 10], [5, SEP, 11, 12, 0, 0, 0]])
    logits = _reader()(src, torch.tensor([7, 4])).features
    assert logits.shape == (2, 2, 7)
    finite = torch.isfinite(logits)
    assert finite[0, :, 3:].all() and not finite[0, :, :3].any()
    assert finite[1, :, 2:4].all() and not finite[1, :, :2].any() and not finite[1, :, 4:].any()


def test_padding_changes_no_logit() -> None:
    reader = _reader()
    alone = reader(torch.tensor([[5, SEP, 11, 12]]), torch.tensor([4])).features
    padded = reader(
        torch.tensor([[5, SEP, 11, 12, 0, 0], [5, 6, SEP, 7, 8, 9]]), torch.tensor([4, 6])
    ).features
    torch.testing.assert_close(padded[0, :, :4], alone[0], atol=1e-5, rtol=1e-5)


def test_best_spans_equal_the_brute_force_best() -> None:
    torch.manual_seed(1)
    log_probs = torch.log_softmax(torch.randn(4, 2, 9), dim=-1)
    starts = torch.rand(4, 9) < 0.7
    ends = torch.rand(4, 9) < 0.7
    for row, span in enumerate(best_spans(log_probs, starts, ends, max_words=3)):
        word = starts[row].long().cumsum(0)
        candidates = [
            (float(log_probs[row, 0, i] + log_probs[row, 1, j]), i, j)
            for i, j in itertools.product(range(9), repeat=2)
            if i <= j and starts[row, i] and ends[row, j] and int(word[j] - word[i]) < 3
        ]
        if not candidates:
            assert span is None
            continue
        score, i, j = max(candidates)
        assert span is not None and (span.start, span.end) == (i, j)
        assert span.score == pytest.approx(score)


def test_the_answer_is_found_as_the_paragraph_spells_it() -> None:
    tokenizer = WordTokenizer()
    labels = [
        "when",
        "?",
        "<sep>",
        "in",
        "280",
        "days",
        ",",
        "about",
        "2",
        ",",
        "then",
        "May",
        "12",
        ",",
        "2008",
        ".",
    ]
    encoded = Encoded(list(range(len(labels))), labels)
    assert answer_span(encoded, "2", tokenizer) == (8, 8)  # not inside 280
    assert answer_span(encoded, "may 12", tokenizer) == (11, 12)
    assert answer_span(encoded, "June", tokenizer) is None
    chars = CharTokenizer()
    spelled = chars.encode("q <sep> the red fox")
    assert answer_span(Encoded(list(range(len(spelled))), spelled), "red", chars) == (6, 8)


def test_a_training_window_holds_the_answer() -> None:
    labels = ["q", "<sep>", *(f"w{i}" for i in range(30))]
    encoded = Encoded(list(range(len(labels))), labels)
    for offset in (0.0, 0.5, 1.0):
        cut, (start, end) = window_around(encoded, 12, (20, 22), offset)
        assert len(cut.labels) == 12 and cut.labels[:2] == ["q", "<sep>"]
        assert cut.labels[start : end + 1] == ["w18", "w19", "w20"]


def _write_task(folder: Path) -> None:
    """Questions about a random list of words, answered by the one or two words after a named one,
    which half the questions spell in capitals (the normalised field match sees through that)."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(30)]
    for split, size in (("train", 1500), ("valid", 40), ("test", 40)):
        lines = []
        for _ in range(size):
            words = rng.sample(vocab, 10)
            k = rng.randrange(8)
            two = rng.random() < 0.5
            named = words[k].upper() if rng.random() < 0.5 else words[k]
            question = f"which two follow {named} ?" if two else f"what follows {named} ?"
            answer = " ".join(words[k + 1 : k + 3] if two else words[k + 1 : k + 2])
            lines.append(json.dumps({"question": question, "context": " ".join(words), "answer": answer}))
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny reader trained on ``_write_task``'s questions (a few seconds)."""
    folder = tmp_path_factory.mktemp("reader")
    _write_task(folder)
    config = task_config(
        {
            "task": "qa",
            "data": {
                "format": "jsonl", "src_fields": ["question", "context"], "tgt_field": "answer",
                **{split: str(folder / f"{split}.jsonl") for split in ("train", "valid", "test")},
                "src_tokenizer": {"type": "word"}, "tgt_tokenizer": {"type": "word"}, "shared_vocab": True,
                "long_sources": "window",
            },
            "model": {"embedding_size": 16, "dropout": 0.0, "decoder": {"output": "pointer"},
                      "encoder": {"hidden_size": 16, "num_layers": 1, "field_match": True,
                                  "field_match_normalized": True}},
            "training": {"batch_tokens": 1500, "lr": 0.01, "max_steps": 120, "validate_every": 120,
                         "precision": "float32", "threads": 1},
        }
    )  # fmt: skip
    return seq2seqkit.train(config, folder / "model")


def test_a_tiny_reader_learns_to_point(reader_dir: Path, tmp_path: Path) -> None:
    out = reader_dir
    scores = json.loads((out / "test_scores.json").read_text())
    assert scores["EM"] >= 90
    pipeline = seq2seqkit.load(out)
    source = join_fields(["which two follow W3 ?", "w7 w3 w11 w12 w5"])
    best = pipeline.generate([source])[0].hypotheses[0]
    assert best.text == "w11 w12"
    assert best.attention is not None and best.attention.shape == (2, 11)  # P_start, P_end
    torch.testing.assert_close(best.attention.sum(1), torch.ones(2))
    span_picture(best.attention, pipeline.source.encode(source).labels, best.text, tmp_path / "span.png")
    assert (tmp_path / "span.png").stat().st_size > 1000
    from fastapi.testclient import TestClient

    from seq2seqkit.serve.app import create_app

    with TestClient(create_app({"reader": pipeline})) as client:
        inputs = [{"question": "what follows w7 ?", "context": "w7 w3 w11 w12 w5"}]
        served = client.post("/v1/generate", json={"inputs": inputs}).json()
    assert served["outputs"][0]["hypotheses"][0]["text"] == "w3"
    with pytest.raises(ConfigError, match="no pointer readers"):
        ensemble([pipeline, pipeline])


def test_a_reader_exports_to_onnx_with_the_same_answers(reader_dir: Path, tmp_path: Path) -> None:
    """The ONNX graph and runtime.py's span search give the reader's answers and scores, over
    paragraphs of several lengths in one batch, with long ones cut to their best window."""
    pytest.importorskip("onnxruntime")
    from seq2seqkit.export import runtime
    from seq2seqkit.export.onnx import export_onnx

    pipeline = seq2seqkit.load(reader_dir)
    pipeline.set_decoding(max_input_len=14)  # the 20-word paragraphs below are windowed
    pipeline.save(tmp_path / "model")
    export_onnx(tmp_path / "model", tmp_path / "onnx", quantize="int8")
    rng = random.Random(1)
    sources = ["", "w3 w4 w5"]  # no input; no paragraph (no <sep>)
    for size in (2, 4, 10, 20):
        for _ in range(6):
            words = rng.sample([f"w{i}" for i in range(30)], size)
            k = rng.randrange(size - 1)
            named = words[k].upper() if size == 10 else words[k]
            question = f"{rng.choice(['which two follow', 'what follows'])} {named} ?"
            if size == 4:  # a question longer than the traced example's: its <sep> further on
                question = "so tell me now , " + question
            sources.append(join_fields([question, " ".join(words)]))
    expected = pipeline.generate(sources)
    exported = runtime.OnnxModel(tmp_path / "onnx").generate(sources)
    assert [o.text for o in exported] == [o.hypotheses[0].text for o in expected]
    assert exported[0].text == exported[1].text == ""
    scores = [o.hypotheses[0].score for o in expected]
    np.testing.assert_allclose([o.score for o in exported], scores, atol=1e-4)
    int8 = runtime.OnnxModel(tmp_path / "onnx", int8=True).generate(sources)
    same = sum(a.text == b.text for a, b in zip(int8, exported, strict=True))
    assert same >= 0.8 * len(sources), f"int8 changed {len(sources) - same} of {len(sources)} answers"


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_generative_qa_exports_to_onnx_with_the_same_answers(
    reader_dir: Path, tmp_path: Path, architecture: str
) -> None:
    """The generative baseline of the QA recipes (copy, field match, span-constrained decoding),
    RNN and Transformer, briefly trained on the reader's task: runtime.py's greedy and beam search
    give the package's answers."""
    pytest.importorskip("onnxruntime")
    from seq2seqkit.export import runtime
    from seq2seqkit.export.onnx import export_onnx

    model: dict = {"embedding_size": 16, "dropout": 0.0, "encoder": {"hidden_size": 16, "num_layers": 1}}
    if architecture == "transformer":
        sizes = {"encoder_layers": 1, "decoder_layers": 1, "d_model": 16, "heads": 2, "ff_size": 32}
        model = {"architecture": "transformer", "transformer": sizes, "encoder": {}}
    model["encoder"]["field_match"] = True
    model["decoder"] = {"copy": True}
    config = task_config(
        {
            "task": "qa",
            "data": {
                "format": "jsonl", "src_fields": ["question", "context"], "tgt_field": "answer",
                **{split: str(reader_dir.parent / f"{split}.jsonl") for split in ("train", "valid")},
                "src_tokenizer": {"type": "word"}, "tgt_tokenizer": {"type": "word"}, "shared_vocab": True,
            },
            "model": model,
            "training": {"batch_tokens": 1500, "lr": 0.01, "max_steps": 30, "validate_every": 30,
                         "precision": "float32", "threads": 1, "evaluate_test": False},
            "decoding": {"span_constrained": True, "beam_size": 3},
        }
    )  # fmt: skip
    model_dir = seq2seqkit.train(config, tmp_path / "model")
    export_onnx(model_dir, tmp_path / "onnx")
    pipeline, exported = seq2seqkit.load(model_dir), runtime.OnnxModel(tmp_path / "onnx")
    rng = random.Random(2)
    sources = []
    for size in (3, 6, 10):
        for _ in range(5):
            words = rng.sample([f"w{i}" for i in range(30)], size)
            question = (
                f"{rng.choice(['which two follow', 'what follows'])} {words[rng.randrange(size - 1)]} ?"
            )
            sources.append(join_fields([question, " ".join(words + ["unseen"])]))  # a word to copy
    for beam in (1, 3):
        expected = [o.text for o in pipeline.generate(sources, beam=beam)]
        assert [o.text for o in exported.generate(sources, beam=beam)] == expected
        assert all(answer and answer in source for answer, source in zip(expected, sources, strict=True))
    # pointer-generators ensemble: a model with itself answers as it does alone
    both = seq2seqkit.ensemble([pipeline, seq2seqkit.load(model_dir)])
    assert [o.text for o in both.generate(sources)] == [o.text for o in pipeline.generate(sources)]
