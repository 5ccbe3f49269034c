"""Model directories: a saved pipeline loads identically; pickles and damaged files are refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

import seq2seqkit
from seq2seqkit import checkpoint
from seq2seqkit.build import build_featurizers, build_model
from seq2seqkit.config import Config
from seq2seqkit.errors import ModelFileError
from seq2seqkit.pipeline import Pipeline
from seq2seqkit.tasks import read_split, task_config
from seq2seqkit.version import __version__

TEXTS = ["abc", "hello", "", "dcba", "aaaaaaaaaaaa"]


def make_config(rnn: str = "lstm", context: str = "attention", tie: bool = False) -> Config:
    return task_config(
        {
            "task": "reverse",
            "data": {"format": "synthetic", "synthetic": {"train_size": 50, "alphabet_size": 8}},
            "model": {
                "rnn_type": rnn,
                "embedding_size": 16,
                "dropout": 0.0,
                "encoder": {"hidden_size": 8, "num_layers": 1},
                "decoder": {"hidden_size": 16, "num_layers": 1, "context": context, "tie_embeddings": tie},
            },
            "decoding": {"beam_size": 3, "max_length_offset": 3},
        }
    )


def make_pipeline(config: Config) -> Pipeline:
    source, target = build_featurizers(config.data, read_split(config, "train"))
    model = build_model(config.model, len(source.vocab), len(target.vocab)).eval()
    return Pipeline(config, model, source, target)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    make_pipeline(make_config()).save(directory)
    return directory


def assert_same_outputs(a: Pipeline, b: Pipeline, **options) -> None:
    out_a, out_b = a.generate(TEXTS, **options), b.generate(TEXTS, **options)
    for x, y in zip(out_a, out_b, strict=True):
        assert x.source_tokens == y.source_tokens
        assert len(x.hypotheses) == len(y.hypotheses)
        for hx, hy in zip(x.hypotheses, y.hypotheses, strict=True):
            assert (hx.text, hx.tokens, hx.score) == (hy.text, hy.tokens, hy.score)
            assert (hx.attention is None) == (hy.attention is None)
            if hx.attention is not None:
                assert torch.equal(hx.attention, hy.attention)


@pytest.mark.parametrize(
    ("rnn", "context", "tie"),
    [("lstm", "attention", False), ("gru", "every_step", False), ("lstm", "init", True)],
)
def test_saved_pipeline_loads_identically(tmp_path: Path, rnn: str, context: str, tie: bool) -> None:
    original = make_pipeline(make_config(rnn, context, tie))
    original.save(tmp_path / "model")
    loaded = seq2seqkit.load(tmp_path / "model")

    assert loaded.config == original.config
    assert loaded.source.vocab.tokens == original.source.vocab.tokens
    assert loaded.target.vocab.tokens == original.target.vocab.tokens
    original_state, loaded_state = original.model.state_dict(), loaded.model.state_dict()
    assert original_state.keys() == loaded_state.keys()
    assert all(torch.equal(original_state[k], loaded_state[k]) for k in original_state)
    if tie:
        assert loaded.model.decoder.output_layer.weight is loaded.model.decoder.embedding.weight
    assert_same_outputs(original, loaded, beam=1)
    assert_same_outputs(original, loaded, beam=3, nbest=3)


class CreatesMarker:
    """Unpickling this object opens (creates) a file: what a malicious checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin", "weights.ckpt"])
def test_pickle_in_model_directory_is_refused_unopened(saved: Path, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": CreatesMarker(marker)})
    (saved / name).write_bytes(payload)

    with pytest.raises(ModelFileError, match=name):
        seq2seqkit.load(saved)
    assert not marker.exists(), "loading must not unpickle anything"

    pickle.loads(payload)  # the payload is live: unpickling it does create the marker
    assert marker.exists()


def test_pickle_given_as_weights_is_not_unpickled(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "elsewhere" / "model.pt"
    evil.parent.mkdir()
    evil.write_bytes(pickle.dumps(CreatesMarker(marker)))
    with pytest.raises(ModelFileError, match="model.pt"):
        seq2seqkit.load(saved, weights=evil)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:5], id="truncated-header"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: bytes(range(256)) * 8, id="garbage"),
        pytest.param(lambda data: b"\xff" * 8 + data[8:], id="bad-header-length"),
    ],
)
def test_damaged_weights_are_refused(saved: Path, damage) -> None:
    weights = saved / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        seq2seqkit.load(saved)


@pytest.mark.parametrize("missing", ["config.yaml", "src_vocab.txt", "tgt_vocab.txt", "model.safetensors"])
def test_missing_file_is_refused(saved: Path, missing: str) -> None:
    (saved / missing).unlink()
    with pytest.raises(ModelFileError, match=missing):
        seq2seqkit.load(saved)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model directory"):
        seq2seqkit.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "text", ["model: [unclosed\n", "modle: {}\n", "model: {rnn_type: transformer}\n", "\xff\xfe"]
)
def test_damaged_or_foreign_config_is_refused(saved: Path, text: str) -> None:
    (saved / "config.yaml").write_bytes(text.encode("latin-1"))
    with pytest.raises(ModelFileError, match="config.yaml"):
        seq2seqkit.load(saved)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"rnn": "gru"}, id="gru-weights-shapes"),
        pytest.param({"context": "init"}, id="no-attention-keys"),
    ],
)
def test_weights_of_another_architecture_are_refused(saved: Path, other: dict) -> None:
    checkpoint.save_config(saved, make_config(**other))
    checkpoint.write_checksums(saved, ["config.yaml", "src_vocab.txt", "tgt_vocab.txt"])  # consistent files
    with pytest.raises(ModelFileError, match="model.safetensors"):
        seq2seqkit.load(saved)


def test_damaged_vocabulary_is_refused(saved: Path) -> None:
    (saved / "tgt_vocab.txt").write_text("a\nb\n", encoding="utf-8")  # no special symbols
    with pytest.raises(ModelFileError):
        seq2seqkit.load(saved)


def adam_after_steps(model: torch.nn.Module, steps: int) -> torch.optim.Adam:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        one_step(model, optimizer)
    optimizer.param_groups[0]["lr"] = 0.0042  # as the schedule would set it
    return optimizer


def one_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    src = torch.tensor([[4, 5, 6], [7, 8, 0]])
    features = model(src, torch.tensor([3, 2]), torch.tensor([[2, 6, 5], [2, 8, 7]])).features
    loss = model.logits(features).logsumexp(-1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_training_state_round_trip(tmp_path: Path) -> None:
    config = make_config()
    model = make_pipeline(config).model.train()
    optimizer = adam_after_steps(model, 3)
    state = {"progress": {"step": 3, "epoch": 0, "best_score": None}}
    checkpoint.save_training_state(tmp_path / "last", model, optimizer, state)
    next_draw = torch.rand(8)  # what the RNG gives right after the save

    torch.manual_seed(1234)  # a fresh process: other weights, another RNG state
    restored = make_pipeline(config).model.train()
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=0.01)
    payload = checkpoint.load_training_state(tmp_path / "last", restored, restored_optimizer)

    rng = payload.pop("rng")
    assert payload == state
    assert list(rng) == ["torch"]
    torch.set_rng_state(rng["torch"])
    assert torch.equal(torch.rand(8), next_draw)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    saved_opt, loaded_opt = optimizer.state_dict(), restored_optimizer.state_dict()
    # JSON turns the betas tuple into a list, which Adam reads the same way
    assert [{**g, "betas": tuple(g["betas"])} for g in loaded_opt["param_groups"]] == saved_opt[
        "param_groups"
    ]
    assert saved_opt["state"].keys() == loaded_opt["state"].keys()
    for index, moments in saved_opt["state"].items():
        assert moments.keys() == loaded_opt["state"][index].keys()
        for key, value in moments.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(loaded_opt["state"][index][key])), key

    one_step(model, optimizer)  # and the next update is the same
    one_step(restored, restored_optimizer)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), restored.parameters(), strict=True))


@pytest.mark.parametrize(
    "victim",
    [
        "state.json",
        "optimizer.safetensors",
        "model.safetensors",
    ],
)
def test_incomplete_training_state_is_refused(tmp_path: Path, victim: str) -> None:
    model = make_pipeline(make_config()).model
    optimizer = adam_after_steps(model, 1)
    checkpoint.save_training_state(tmp_path / "last", model, optimizer, {"progress": {}})
    (tmp_path / "last" / victim).unlink()
    with pytest.raises(ModelFileError, match=victim):
        checkpoint.load_training_state(tmp_path / "last", model, optimizer)


@pytest.mark.parametrize("victim", ["state.json", "optimizer.safetensors"])
def test_damaged_training_state_is_refused(tmp_path: Path, victim: str) -> None:
    model = make_pipeline(make_config()).model
    optimizer = adam_after_steps(model, 1)
    checkpoint.save_training_state(tmp_path / "last", model, optimizer, {"progress": {}})
    path = tmp_path / "last" / victim
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ModelFileError):
        checkpoint.load_training_state(tmp_path / "last", model, optimizer)


def test_the_directory_records_its_format_revision_and_writer(saved: Path) -> None:
    record = json.loads((saved / "format.json").read_text())
    assert record == {
        "format_revision": checkpoint.FORMAT_REVISION,
        "written_by": f"seq2seqkit {__version__}",
    }


def test_a_newer_format_revision_is_refused_in_one_line(saved: Path) -> None:
    record = {"format_revision": checkpoint.FORMAT_REVISION + 1, "written_by": "seq2seqkit 9.0"}
    (saved / "format.json").write_text(json.dumps(record))
    checkpoint.write_checksums(saved, ["config.yaml", "format.json", "src_vocab.txt", "tgt_vocab.txt"])
    with pytest.raises(ModelFileError) as caught:
        seq2seqkit.load(saved)
    message = str(caught.value)
    assert "written by seq2seqkit 9.0 in model format revision 2" in message and "\n" not in message
    assert message.endswith("pip install --upgrade seq2seqkit")


def test_a_directory_from_before_format_revisions_loads(saved: Path) -> None:
    expected = seq2seqkit.load(saved).generate(["abc"])[0].text
    (saved / "format.json").unlink()
    checkpoint.write_checksums(saved, ["config.yaml", "src_vocab.txt", "tgt_vocab.txt"])
    assert seq2seqkit.load(saved).generate(["abc"])[0].text == expected


def test_saving_leaves_no_temporary_files(saved: Path) -> None:
    assert not list(saved.glob("*.tmp"))
    assert {p.name for p in saved.iterdir()} == {
        "config.yaml",
        "format.json",
        "src_vocab.txt",
        "tgt_vocab.txt",
        "model.safetensors",
        "checksums.json",
    }


@pytest.mark.parametrize("victim", ["model.safetensors", "config.yaml", "src_vocab.txt"])
def test_one_altered_byte_is_detected_at_load(saved: Path, victim: str) -> None:
    path = saved / victim
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # flips a bit inside the tensor data / the text: the file still parses
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{victim}: damaged or altered"):
        seq2seqkit.load(saved)


def test_truncated_weights_are_detected_at_load(saved: Path) -> None:
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="model.safetensors"):
        seq2seqkit.load(saved)


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_in_charge(tmp_path: Path) -> None:
    model = make_pipeline(make_config()).model
    optimizer = adam_after_steps(model, 1)
    first = checkpoint.save_checkpoint(tmp_path, 1, model, optimizer, {"progress": {"step": 1}})
    # a later checkpoint whose writing died before its pointer update: a half-written directory
    half = tmp_path / "checkpoints" / "step-000000002"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")
    assert checkpoint.latest_checkpoint(tmp_path) == first
    payload = checkpoint.load_training_state(first, model, optimizer)
    assert payload["progress"]["step"] == 1
    second = checkpoint.save_checkpoint(tmp_path, 2, model, optimizer, {"progress": {"step": 2}})
    assert checkpoint.latest_checkpoint(tmp_path) == second
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-000000002"]


def test_saved_config_is_the_resolved_config(saved: Path) -> None:
    assert checkpoint.load_config_from_dir(saved) == make_config()
