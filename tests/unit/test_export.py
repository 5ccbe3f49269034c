"""ONNX export: the graphs compute what the PyTorch model computes, at any batch size and source
length; the runtime's greedy and beam search give the strings ``Pipeline.generate`` gives, without
importing torch; unsupported models and bad arguments are one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import seq2seqkit
from seq2seqkit.build import build_featurizers, build_model
from seq2seqkit.pipeline import Pipeline
from seq2seqkit.tasks import read_split, task_config

ort = pytest.importorskip("onnxruntime")

from seq2seqkit.export import runtime  # noqa: E402  (after the skip: it imports onnxruntime)
from seq2seqkit.export.onnx import GRAPHS, export_onnx  # noqa: E402

SCRIPT = Path(sys.executable).parent / "seq2seqkit"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "seq2seqkit.cli"]
TEXTS = ["abc", "hello", "", "dcba", "aaaaaaaaaaaa", "bad cafe", "ff"]
# (rnn_type, encoder, decoder): the variants the built-in recipes use, and a few more
VARIANTS = {
    "lstm-general-bi-2layers": ("lstm", {"num_layers": 2}, {"num_layers": 2, "attention": "general"}),
    "gru-general-feeding": ("gru", {}, {"attention": "general", "input_feeding": True}),
    "lstm-dot-feeding": ("lstm", {}, {"attention": "dot", "input_feeding": True}),
    "lstm-bahdanau": ("lstm", {}, {"attention": "bahdanau"}),
    "gru-every-step": ("gru", {"bidirectional": False}, {"context": "every_step"}),
    "lstm-init-mean": ("lstm", {"pooling": "mean"}, {"context": "init"}),
    "transformer": ("transformer", {}, {}),  # model.architecture: transformer, TRANSFORMER's sizes
    # pointer-generators, whose target vocabulary lacks half of the letters
    "lstm-bahdanau-copy": ("lstm", {}, {"attention": "bahdanau", "copy": True}),
    "transformer-copy": ("transformer", {}, {"copy": True}),
    # the summarization recipe's coverage (See et al., 2017), and location-aware attention: attention
    # sums and the last step's attention in the state
    "lstm-bahdanau-copy-coverage": ("lstm", {}, {"attention": "bahdanau", "copy": True, "coverage": True}),
    "gru-bahdanau-location": ("gru", {}, {"attention": "bahdanau", "location": True}),
}
# the variants whose step reads only the encoder's outputs and an RNN's hidden state and feed
RNN_VARIANTS = [
    name
    for name in VARIANTS
    if not name.startswith("transformer") and "copy" not in name and "location" not in name
]
TRANSFORMER = {
    "encoder_layers": 2,
    "decoder_layers": 2,
    "d_model": 16,
    "heads": 2,
    "ff_size": 32,
    "dropout": 0.0,
}


def make_config(rnn: str, encoder: dict[str, Any], decoder: dict[str, Any]) -> Any:
    model = {
        "rnn_type": rnn,
        "embedding_size": 16,
        "dropout": 0.0,
        "encoder": {"hidden_size": 8, "num_layers": 1, **encoder},
        "decoder": {"hidden_size": 16, "num_layers": 1, **decoder},
    }
    if rnn == "transformer":
        model = {"architecture": "transformer", "transformer": TRANSFORMER, "decoder": decoder}
    # a copying model's vocabulary: the 4 specials and 4 of the 8 letters
    limit = {"max_vocab_size": 8} if decoder.get("copy") else {}
    return task_config(
        {
            "task": "reverse",
            "data": {"format": "synthetic", "synthetic": {"train_size": 50, "alphabet_size": 8}, **limit},
            "model": model,
            "decoding": {"beam_size": 3, "max_length_offset": 3},
        }
    )


def saved_model(directory: Path, rnn: str, encoder: dict, decoder: dict) -> Pipeline:
    """A randomly initialized model saved to ``directory``, its weights scaled up so that its
    outputs are peaked and varied rather than nearly uniform."""
    config = make_config(rnn, encoder, decoder)
    source, target = build_featurizers(config.data, read_split(config, "train"))
    model = build_model(config.model, len(source.vocab), len(target.vocab)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    pipeline = Pipeline(config, model, source, target)
    pipeline.save(directory)
    return pipeline


@pytest.fixture(scope="module", params=["rnn", "transformer"])
def trained(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Pipeline, runtime.OnnxModel]:
    """A tiny model that has started to learn to reverse letters, and its export (a few seconds):
    an LSTM with input feeding, or a Transformer."""
    model: dict[str, Any] = {
        "embedding_size": 16,
        "dropout": 0.0,
        "encoder": {"hidden_size": 16, "num_layers": 1},
        "decoder": {"hidden_size": 32, "num_layers": 1, "input_feeding": True},
    }
    if request.param == "transformer":
        model = {"architecture": "transformer", "transformer": {**TRANSFORMER, "d_model": 32, "heads": 4}}
    config = task_config(
        {
            "task": "reverse",
            "data": {"synthetic": {"train_size": 2000, "eval_size": 20, "min_length": 3, "max_length": 8}},
            "model": model,
            "training": {
                "precision": "float32",
                "threads": 1,
                "batch_tokens": 800,
                "max_steps": 60,
                "validate_every": 60,
                "lr": 0.01,
                "evaluate_test": False,
            },
            "decoding": {"beam_size": 5, "length_penalty": 1.0},
        }
    )
    directory = tmp_path_factory.mktemp("export")
    model_dir = seq2seqkit.train(config, directory / "model")
    export_onnx(model_dir, directory / "onnx")
    return seq2seqkit.load(model_dir), runtime.OnnxModel(directory / "onnx")


def assert_step_equal(
    graphs: runtime.Graphs, pipeline: Pipeline, enc: Any, state: Any, prev: torch.Tensor
) -> None:
    """One decoder step of the graph equals PyTorch's (rows = sources x k)."""
    with torch.no_grad():
        log_probs, next_state, attention = pipeline.model.step(prev, enc, state)
    entries = {"memory": enc.memory, "keys": enc.keys, "mask": enc.mask, "context": enc.context}
    onnx_state = {"state_h": state.hidden[0] if isinstance(state.hidden, tuple) else state.hidden}
    if isinstance(state.hidden, tuple):
        onnx_state["state_c"] = state.hidden[1]
    onnx_state = {name: value.transpose(0, 1) for name, value in onnx_state.items()}
    if state.feed is not None:
        onnx_state["state_feed"] = state.feed
    inputs = {name: entries[name].numpy() for name in graphs.decoder_inputs if name in entries}
    found, found_state, found_attention = graphs.step(
        prev.numpy(), inputs, {name: value.numpy() for name, value in onnx_state.items()}
    )
    np.testing.assert_allclose(found, log_probs, atol=1e-5)
    assert (found_attention is None) == (attention is None)
    if attention is not None:
        np.testing.assert_allclose(found_attention, attention, atol=1e-5)
    hidden = next_state.hidden if isinstance(next_state.hidden, tuple) else (next_state.hidden,)
    np.testing.assert_allclose(found_state["state_h"], hidden[0].transpose(0, 1), atol=1e-5)
    if len(hidden) == 2:
        np.testing.assert_allclose(found_state["state_c"], hidden[1].transpose(0, 1), atol=1e-5)
    assert ("state_feed" in found_state) == (next_state.feed is not None)
    if next_state.feed is not None:
        np.testing.assert_allclose(found_state["state_feed"], next_state.feed, atol=1e-5)


@pytest.mark.parametrize("variant", RNN_VARIANTS)
def test_graphs_equal_pytorch_at_another_batch_and_length(tmp_path: Path, variant: str) -> None:
    pipeline = saved_model(tmp_path / "model", *VARIANTS[variant])
    export_onnx(tmp_path / "model", tmp_path / "onnx")
    graphs = runtime.Graphs(*(tmp_path / "onnx" / name for name in GRAPHS["float32"]))
    # the export traced 2 sources of length 5 and 2 rows per source; run 3 sources of length 9
    src = torch.tensor(
        [[5, 6, 7, 8, 9, 4, 5, 6, 7], [4, 4, 5, 0, 0, 0, 0, 0, 0], [9, 8, 7, 6, 5, 4, 0, 0, 0]]
    )
    src_lengths = torch.tensor([9, 3, 6])
    entries, _ = graphs.encode(src.numpy(), src_lengths.numpy())
    with torch.no_grad():
        enc = pipeline.model.encode(src, src_lengths)
        state = pipeline.model.init_state(enc)
    expected = {"memory": enc.memory, "keys": enc.keys, "mask": enc.mask, "context": enc.context}
    for name, value in entries.items():
        np.testing.assert_allclose(value, expected[name], atol=1e-5, err_msg=name)
    assert_step_equal(graphs, pipeline, enc, state, torch.tensor([2, 7, 5]))  # greedy: 1 row each
    rows = torch.arange(3).repeat_interleave(4)  # beam search: 4 rows per source
    assert_step_equal(graphs, pipeline, enc, state.select(rows), torch.tensor([2, 7, 5, 6] * 3))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_greedy_and_beam_equal_pipeline_for_every_variant(tmp_path: Path, variant: str) -> None:
    pipeline = saved_model(tmp_path / "model", *VARIANTS[variant])
    model = runtime.OnnxModel(export_onnx(tmp_path / "model", tmp_path / "onnx"))
    for beam in (1, 3):
        expected = pipeline.generate(TEXTS, beam=beam)
        found = model.generate(TEXTS, beam=beam)
        assert [o.text for o in found] == [o.text for o in expected], beam
        np.testing.assert_allclose([o.score for o in found], [o.score for o in expected], atol=1e-4)


@pytest.mark.parametrize("beam", [1, 5])
def test_trained_model_outputs_equal_pipeline(trained: tuple[Pipeline, runtime.OnnxModel], beam: int) -> None:
    """Strings identical, greedy and beam 5 (the documented tolerance: none, on these tests)."""
    pipeline, model = trained
    texts = [*TEXTS, "abcdefgh", "hgfedcba", "a", "cab cab"]
    expected = pipeline.generate(texts, beam=beam, nbest=min(beam, 3))
    found = model.generate(texts, beam=beam, nbest=min(beam, 3))
    assert any(len(o.text) > 2 for o in expected), "the model should output something"
    for e, f in zip(expected, found, strict=True):
        assert [h[0] for h in f.hypotheses] == [h.text for h in e.hypotheses]
        np.testing.assert_allclose([h[1] for h in f.hypotheses], [h.score for h in e.hypotheses], atol=1e-4)


def test_runtime_runs_without_torch(trained: tuple[Pipeline, runtime.OnnxModel], tmp_path: Path) -> None:
    """The exported directory's runtime.py, run with torch and seq2seqkit made unimportable."""
    pipeline, model = trained
    directory = model.directory
    script = textwrap.dedent(
        f"""
        import runpy, sys
        sys.modules["torch"] = None  # any import of torch now fails
        sys.modules["seq2seqkit"] = None
        sys.argv = ["runtime.py", {str(directory)!r}, "--beam", "5"]
        runpy.run_path({str(directory / "runtime.py")!r}, run_name="__main__")
        """
    )
    texts = ["abc", "", "hgfedcba", "cab cab"]
    result = subprocess.run(
        [sys.executable, "-c", script], input="\n".join(texts) + "\n", capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == [o.text for o in pipeline.generate(texts, beam=5)]


def test_int8_graphs_decode(trained: tuple[Pipeline, runtime.OnnxModel], tmp_path: Path) -> None:
    pipeline, model = trained
    export_onnx(model.directory.parent / "model", tmp_path / "onnx", quantize="int8")
    for name in GRAPHS["int8"]:
        assert (tmp_path / "onnx" / name).stat().st_size < (
            tmp_path / "onnx" / name.replace(".int8", "")
        ).stat().st_size
    quantized = runtime.OnnxModel(tmp_path / "onnx", int8=True)
    outputs = quantized.generate(["abcdef", "", "hello"], beam=5)
    assert [o.text for o in outputs][1] == ""
    assert all(np.isfinite(o.score) for o in outputs)


def run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, timeout=180)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seq2seqkit: error:"), result.stderr
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


def test_cli_export(trained: tuple[Pipeline, runtime.OnnxModel], tmp_path: Path) -> None:
    pipeline, model = trained
    result = run("export", model.directory.parent / "model", "--format", "onnx", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    expected = {
        *GRAPHS["float32"],
        "runtime.py",
        "runtime.json",
        "config.yaml",
        "src_vocab.txt",
        "tgt_vocab.txt",
    }
    assert expected <= names


def test_cli_export_missing_model_dir(tmp_path: Path) -> None:
    assert_one_line_error(run("export", tmp_path / "nowhere", "--output", tmp_path / "out"), "nowhere")


def test_cli_export_refuses_ngram_blocking(tmp_path: Path) -> None:
    config = make_config("lstm", {}, {"attention": "bahdanau", "copy": True, "coverage": True})
    source, target = build_featurizers(config.data, read_split(config, "train"))
    model = build_model(config.model, len(source.vocab), len(target.vocab))
    pipeline = Pipeline(config, model, source, target)
    pipeline.set_decoding(block_ngram_repeat=2)
    pipeline.save(tmp_path / "model")
    result = run("export", tmp_path / "model", "--output", tmp_path / "out")
    assert_one_line_error(result, "decoding.block_ngram_repeat", "ONNX export does not support")
