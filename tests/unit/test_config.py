"""Config: YAML in, typed and range-checked, overrides, and a ConfigError for every bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from seq2seqkit.config import (
    Config,
    DecoderConfig,
    EncoderConfig,
    ModelConfig,
    apply_overrides,
)
from seq2seqkit.errors import ConfigError
from seq2seqkit.recipes import load_config
from seq2seqkit.tasks import task_config

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "seq2seqkit" / "recipes"
MINIMAL = {"task": "reverse"}  # the default task, translation, needs a data.train path

YAML = """\
name: tiny
task: reverse
data:
  format: synthetic
  synthetic: {task: reverse, train_size: 100, max_length: 6}
model:
  rnn_type: gru
  embedding_size: 16
  encoder: {hidden_size: 8, num_layers: 1}
  decoder: {hidden_size: 16, attention: bahdanau}
training:
  lr: 0.005
  batch_tokens: 500
"""


def _yaml(tmp_path: Path, text: str = YAML) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        task_config(raw)
    return str(err.value)


def test_load_config(tmp_path: Path) -> None:
    config = load_config(_yaml(tmp_path))
    assert isinstance(config, Config)
    assert config.name == "tiny"
    assert config.data.synthetic.train_size == 100
    assert config.data.synthetic.max_length == 6
    assert config.data.synthetic.min_length == 3  # default kept
    assert config.model.rnn_type == "gru"
    assert config.model.encoder == EncoderConfig(hidden_size=8, num_layers=1)
    assert config.model.decoder.attention == "bahdanau"
    assert config.training.lr == 0.005
    assert config.training.batch_tokens == 500


def test_to_dict_round_trips(tmp_path: Path) -> None:
    config = load_config(_yaml(tmp_path))
    assert task_config(config.to_dict()) == config


def test_integer_for_a_float_becomes_a_float() -> None:
    lr = task_config({**MINIMAL, "training": {"lr": 1}}).training.lr
    assert lr == 1.0 and isinstance(lr, float)


def test_empty_file_gives_defaults_but_needs_training_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("data.train is required for data.format 'parallel'")):
        load_config(_yaml(tmp_path, ""))
    config = load_config(_yaml(tmp_path, ""), ["data.train=corpus/train"])
    assert config.data.train == "corpus/train"
    assert config.model == ModelConfig()


@pytest.mark.parametrize(
    ("raw", "unknown", "suggestion"),
    [
        ({"training": {"lrr": 0.1}}, "'training.lrr'", "'training.lr'"),
        (
            {"model": {"encoder": {"hiden_size": 4}}},
            "'model.encoder.hiden_size'",
            "'model.encoder.hidden_size'",
        ),
        ({"traning": {}}, "'traning'", "'training'"),
        ({"data": {"synthetic": {"tsk": "copy"}}}, "'data.synthetic.tsk'", "'data.synthetic.task'"),
    ],
)
def test_unknown_key_suggests_the_nested_key(raw: dict[str, Any], unknown: str, suggestion: str) -> None:
    message = _error({**MINIMAL, **raw})
    assert f"unknown key {unknown}; did you mean {suggestion}?" in message


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    message = _error({**MINIMAL, "decoding": {"zzzzzz": 1}})
    assert "did you mean" not in message
    assert "unknown key 'decoding.zzzzzz'" in message
    assert "beam_size" in message and "length_penalty" in message


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("training", "batch_tokens", "12", "training.batch_tokens must be int, got str '12'"),
        ("training", "batch_tokens", True, "training.batch_tokens must be int, got bool True"),
        ("training", "batch_tokens", 2.5, "training.batch_tokens must be int, got float 2.5"),
        ("training", "lr", "fast", "training.lr must be float, got str 'fast'"),
        ("training", "lr", False, "training.lr must be float, got bool False"),
        ("training", "tensorboard", 1, "training.tensorboard must be bool, got int 1"),
        ("training", "tensorboard", "yes", "training.tensorboard must be bool, got str 'yes'"),
        ("data", "train", 3, "data.train must be str, got int 3"),
        ("data", "max_vocab_size", "big", "data.max_vocab_size must be int, got str 'big'"),
    ],
)
def test_wrong_type_names_key_and_type(section: str, key: str, value: Any, expected: str) -> None:
    raw = {**MINIMAL, section: {**MINIMAL.get(section, {}), key: value}}
    assert expected in _error(raw)


def test_optional_int_accepts_none() -> None:
    assert task_config({**MINIMAL, "data": {"format": "synthetic", "max_vocab_size": None}})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"model": {"encoder": {"hidden_size": -3}}},
            "model.encoder.hidden_size = -3 is out of range (allowed: >= 1)",
        ),
        ({"model": {"embedding_size": 0}}, "model.embedding_size = 0 is out of range (allowed: >= 1)"),
        ({"model": {"dropout": 1.5}}, "model.dropout = 1.5 is out of range (allowed: between 0.0 and 0.99)"),
        ({"training": {"lr": -0.1}}, "training.lr = -0.1 is out of range (allowed: >= 0.0)"),
        (
            {"data": {"format": "synthetic", "synthetic": {"alphabet_size": 27}}},
            "data.synthetic.alphabet_size = 27 is out of range (allowed: between 1 and 26)",
        ),
        (
            {"data": {"format": "synthetic", "max_vocab_size": 4}},
            "data.max_vocab_size = 4 is out of range (allowed: >= 5)",
        ),
    ],
)
def test_out_of_range_names_key_and_range(raw: dict[str, Any], expected: str) -> None:
    assert expected in _error({**MINIMAL, **raw})


def test_range_bounds_are_inclusive() -> None:
    config = task_config({**MINIMAL, "model": {"dropout": 0.99}, "training": {"lr": 0.0}})
    assert config.model.dropout == 0.99 and config.training.lr == 0.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"model": {"rnn_type": "lstn"}},
            "model.rnn_type = 'lstn' is not allowed; did you mean 'lstm'? (allowed: lstm, gru)",
        ),
        ({"task": "g2"}, "task = 'g2' is not a registered task; did you mean 'g2p'?"),
        ({"model": {"decoder": {"attention": "luong"}}}, "model.decoder.attention = 'luong' is not allowed"),
        ({"training": {"scheduler": 3}}, "training.scheduler = 3 is not allowed"),
    ],
)
def test_literal_choices(raw: dict[str, Any], expected: str) -> None:
    message = _error({**MINIMAL, **raw})
    assert expected in message
    assert "(allowed: " in message


def test_every_literal_choice_is_accepted() -> None:
    for kind in ("bahdanau", "dot", "general", "concat"):
        config = task_config({**MINIMAL, "model": {"decoder": {"attention": kind}}})
        assert config.model.decoder.attention == kind


def test_section_must_be_a_mapping() -> None:
    assert "model.encoder must be a section (a mapping)" in _error({**MINIMAL, "model": {"encoder": 3}})
    assert "data must be a section (a mapping)" in _error({"data": None})


def test_overrides(tmp_path: Path) -> None:
    config = load_config(_yaml(tmp_path), ["training.lr=0.01", "model.encoder.num_layers=3"])
    assert config.training.lr == 0.01
    assert config.model.encoder.num_layers == 3
    assert config.model.encoder.hidden_size == 8  # siblings untouched


def test_overrides_parse_values_as_yaml_and_create_sections() -> None:
    raw = {"task": "sort", "data": {"format": "synthetic"}}
    merged = apply_overrides(
        raw, ["model.decoder.input_feeding=true", "name=my model", "data.max_vocab_size=null", "output_dir="]
    )
    assert raw == {"task": "sort", "data": {"format": "synthetic"}}, "the input is not modified"
    config = task_config(merged)
    assert config.model.decoder.input_feeding is True
    assert config.name == "my model"
    assert config.data.max_vocab_size is None
    assert config.output_dir == ""


def test_overrides_apply_in_order() -> None:
    merged = apply_overrides({}, ["training.lr=0.1", "training.lr=0.2"])
    assert merged == {"training": {"lr": 0.2}}


def test_override_value_that_is_not_yaml_stays_a_string() -> None:
    assert apply_overrides({}, ["name=[unclosed"]) == {"name": "[unclosed"}


@pytest.mark.parametrize("item", ["training.lr", "=3", ""])
def test_bad_override_syntax(item: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"--set {item!r}: expected key=value")):
        apply_overrides({}, [item])


def test_override_through_a_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match=re.escape("--set 'training.lr.x=1': 'lr' is not a section")):
        apply_overrides({"training": {"lr": 0.1}}, ["training.lr.x=1"])


def test_overridden_value_is_still_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("model.encoder.num_layers = 0 is out of range")):
        load_config(_yaml(tmp_path), ["model.encoder.num_layers=0"])
    with pytest.raises(ConfigError, match=re.escape("unknown key 'training.lrr'")):
        load_config(_yaml(tmp_path), ["training.lrr=0.1"])


def test_override_with_exponent_notation() -> None:
    assert task_config(apply_overrides(MINIMAL, ["training.lr=3e-4"])).training.lr == 3e-4


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "name: x\nmodel:\n  rnn_type: [lstm\n  dropout: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert re.match(rf"{re.escape(str(path))}:\d+: not valid YAML", str(err.value))


@pytest.mark.parametrize(
    ("text", "expected"), [("- a\n- b\n", "expected a mapping"), ("just text\n", "expected a mapping")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {expected}")):
        load_config(path)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'no.yaml'}: no such config file")):
        load_config(tmp_path / "no.yaml")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: cannot read")):
        load_config(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match=re.escape(f"{binary}: cannot read")):
        load_config(binary)


def test_errors_name_the_source_file(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "task: copy\ntraining: {lr: fast}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: training.lr must be float")):
        load_config(path)


def test_dot_attention_needs_matching_sizes() -> None:
    model = {
        "encoder": {"hidden_size": 8, "bidirectional": True},
        "decoder": {"hidden_size": 12, "attention": "dot"},
    }
    message = _error({**MINIMAL, "model": model})
    assert (
        "dot attention needs model.decoder.hidden_size (12) equal to the encoder output size (16)" in message
    )
    model["decoder"]["hidden_size"] = 16
    assert task_config({**MINIMAL, "model": model}).model.decoder.hidden_size == 16
    # without attention the sizes do not matter
    model["decoder"] = {"hidden_size": 12, "attention": "dot", "context": "init"}
    assert task_config({**MINIMAL, "model": model})


def test_tied_embeddings_need_matching_sizes() -> None:
    model = {"embedding_size": 32, "decoder": {"hidden_size": 64, "tie_embeddings": True}}
    message = _error({**MINIMAL, "model": model})
    assert "tie_embeddings needs model.decoder.hidden_size (64) == model.embedding_size (32)" in message
    model["decoder"]["hidden_size"] = 32
    assert task_config({**MINIMAL, "model": model}).model.decoder.tie_embeddings


def test_base_config_is_merged_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\ntask: copy\nmodel:\n  dropout: 0.3\n  decoder: {hidden_size: 64, context: attention}\n"
    )
    (tmp_path / "sub").mkdir()
    variant = tmp_path / "sub" / "variant.yaml"
    variant.write_text("base: ../base.yaml\nname: variant\nmodel:\n  decoder: {context: init}\n")
    config = load_config(variant, ["model.dropout=0.1"])
    assert config.name == "variant"
    assert config.model.decoder.context == "init"
    assert config.model.decoder.hidden_size == 64  # from the base, beside the overridden key
    assert config.model.dropout == 0.1  # --set wins over both files


def test_base_config_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml: no such config file"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [1]\n")
    with pytest.raises(ConfigError, match="base must be a file name"):
        load_config(tmp_path / "d.yaml")


def test_synthetic_lengths_must_be_ordered() -> None:
    raw = {"task": "sort", "data": {"synthetic": {"min_length": 8, "max_length": 4}}}
    assert "data.synthetic.min_length must not exceed max_length" in _error(raw)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_config(path)
    assert config.name


def test_configs_folder_is_not_empty() -> None:
    assert list(CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize(("section", "key"), [("training", "lr"), ("model", "dropout")])
def test_nan_is_out_of_range(section: str, key: str) -> None:
    with pytest.raises(ConfigError):
        task_config({**MINIMAL, section: {key: float("nan")}})


def test_huge_integer_for_a_float_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        task_config({**MINIMAL, "training": {"lr": 10**400}})


# ---- fuzz: random nested dicts give a Config or a ConfigError, nothing else ---------------------

KEYS = st.sampled_from(
    ["name", "task", "data", "model", "training", "decoding", "format", "train", "synthetic", "encoder",
     "decoder", "hidden_size", "num_layers", "attention", "tie_embeddings", "lr", "dropout", "beam_size",
     "rnn_type", "embedding_size", "bidirectional", "context", "min_length", "max_length", "lrr"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["synthetic", "parallel", "dot", "general", "gru", "init", "reverse", "g2p"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(KEYS | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
# values of the right type, often in range, so that many mutated configs stay valid
PLAUSIBLE = {
    bool: st.booleans(),
    int: st.integers(-2, 600),
    float: st.floats(-0.5, 2.0),
    str: st.sampled_from(["char", "sentencepiece", "unigram", "sort", "gru", "mean", "dot", "plateau", "x"]),
}
VALID = {
    **Config().to_dict(),
    "task": "reverse",
    "data": {**Config().to_dict()["data"], "format": "synthetic"},
}


def _paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of a nested dict, sections included."""
    out = []
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_paths(value, (*prefix, key)))
    return out


PATHS = _paths(VALID)


@st.composite
def mutated_valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid config with one to three keys set to random values (or random keys added)."""
    raw = _deep_copy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        if draw(st.integers(0, 3)) == 0:
            path = (*path[:-1], draw(KEYS))
        node = raw
        for part in path[:-1]:
            node = node[part] if isinstance(node.get(part), dict) else node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            old = node.get(path[-1])
            plausible = PLAUSIBLE.get(type(old), VALUES)
            node[path[-1]] = draw(plausible if draw(st.integers(0, 3)) else VALUES)
    return raw


def _deep_copy(tree: Any) -> Any:
    return {k: _deep_copy(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


@settings(max_examples=200, deadline=None, derandomize=True)
@given(raw=st.dictionaries(KEYS, VALUES, max_size=6) | mutated_valid_configs())
def test_fuzz_task_config_only_raises_config_error(raw: dict[str, Any]) -> None:
    try:
        config = task_config(raw)
    except ConfigError as err:
        assert str(err).startswith("config: ")
        event("ConfigError")
    else:
        assert isinstance(config, Config)
        event("Config")


def test_mutation_base_is_valid() -> None:
    assert task_config(VALID).data.format == "synthetic"


def test_decoder_config_defaults_are_consistent() -> None:
    """The default model is valid on its own: 2 x 256 encoder outputs feed a 512 decoder."""
    assert task_config(MINIMAL).model.decoder == DecoderConfig()


def test_joint_sentencepiece_needs_the_same_sentencepiece_settings_on_both_sides() -> None:
    spm = {"type": "sentencepiece", "vocab_size": 100}
    data = {"train": "corpus/train", "joint_sentencepiece": True, "src_tokenizer": spm}
    with pytest.raises(ConfigError, match="data.joint_sentencepiece needs src_tokenizer and tgt_tokenizer"):
        task_config({"data": data})
    assert task_config({"data": {**data, "tgt_tokenizer": spm}}).data.joint_sentencepiece


def test_task_defaults_fill_in_what_the_file_leaves_unset() -> None:
    g2p = task_config({"task": "g2p"})
    assert (g2p.data.format, g2p.data.src_tokenizer.type, g2p.data.tgt_tokenizer.type) == (
        "cmudict",
        "char",
        "word",
    )
    sort = task_config({"task": "sort", "data": {"src_tokenizer": {"type": "word"}}})
    assert sort.data.synthetic.task == "sort" and sort.data.src_tokenizer.type == "word"  # the file wins


def test_data_format_must_belong_to_the_task() -> None:
    message = _error({"task": "translation", "data": {"format": "cmudict", "train": "x"}})
    assert (
        "data.format = 'cmudict' is not a format of task 'translation' (allowed: parallel, tsv, jsonl)"
        in message
    )
    assert "did you mean 'jsonl'?" in _error({"task": "g2p", "data": {"format": "jsonll"}})


def test_several_source_fields_are_a_list_of_names_and_survive_saving() -> None:
    raw = {"data": {"format": "jsonl", "train": "t.jsonl", "src_fields": ["question", "context"]}}
    config = task_config(raw)
    assert config.data.src_fields == ("question", "context")
    again = task_config(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config
    assert "data.src_fields must be a list of str" in _error(
        {"data": {**raw["data"], "src_fields": "question"}}
    )
    parallel = {"data": {"train": "x", "src_fields": ["a", "b"]}}
    assert "data.src_fields needs data.format tsv or jsonl" in _error(parallel)
    one_field = {"data": {"train": "x"}, "model": {"encoder": {"field_match": True}}}
    assert "model.encoder.field_match needs a source of several data.src_fields" in _error(one_field)
    normalised_only = {"data": raw["data"], "model": {"encoder": {"field_match_normalized": True}}}
    assert "field_match_normalized needs model.encoder.field_match" in _error(normalised_only)


def test_minimum_output_length_must_not_exceed_the_maximum() -> None:
    raw = {**MINIMAL, "decoding": {"min_output_len": 5, "max_output_len": 3}}
    assert "decoding.min_output_len must not exceed decoding.max_output_len" in _error(raw)
    assert task_config({**MINIMAL, "decoding": {"min_output_len": 5}}).decoding.max_output_len == 0


def test_location_needs_additive_attention() -> None:
    message = _error({**MINIMAL, "model": {"decoder": {"attention": "dot", "location": True}}})
    assert "model.decoder.location needs context 'attention' with additive attention" in message
    assert task_config({**MINIMAL, "model": {"decoder": {"attention": "concat", "location": True}}})


def test_coverage_needs_additive_attention() -> None:
    message = _error({**MINIMAL, "model": {"decoder": {"attention": "general", "coverage": True}}})
    assert "model.decoder.coverage needs context 'attention' with additive attention" in message
    config = task_config({**MINIMAL, "model": {"decoder": {"attention": "bahdanau", "coverage": True}}})
    assert config.model.decoder.coverage and config.training.coverage_loss_weight == 1.0


def test_copy_needs_attention() -> None:
    message = _error({**MINIMAL, "model": {"decoder": {"context": "init", "copy": True}}})
    assert "model.decoder.copy needs context 'attention'" in message


def test_a_language_model_is_context_none_and_reads_no_source() -> None:
    lm = {"task": "language_model", "data": {"train": "corpus.txt"}}
    config = task_config(lm)
    assert config.model.decoder.context == "none" and config.data.format == "text"
    assert "goes with task language_model and only with it" in _error(
        {**MINIMAL, "model": {"decoder": {"context": "none"}}}
    )
    assert "here task 'language_model' has context 'attention'" in _error(
        {**lm, "model": {"decoder": {"context": "attention"}}}
    )
    assert "model.ctc_weight needs a source" in _error({**lm, "model": {"ctc_weight": 0.5}})
    assert "is an option of the RNN family" in _error({**lm, "model": {"architecture": "transformer"}})


def test_a_fused_language_model_needs_a_search_over_the_plain_vocabulary() -> None:
    assert task_config({**MINIMAL, "decoding": {"lm": "runs/lm"}}).decoding.lm_weight == 0.3
    copying = {**MINIMAL, "model": {"decoder": {"attention": "bahdanau", "copy": True}}}
    assert "not with model.decoder.copy" in _error({**copying, "decoding": {"lm": "runs/lm"}})
    assert "decoding.lm_weight" in _error({**MINIMAL, "decoding": {"lm": "runs/lm", "lm_weight": -1}})
    best_path = {"model": {"ctc_weight": 0.5}, "decoding": {"method": "ctc_greedy", "lm": "runs/lm"}}
    assert "not with decoding.method ctc_greedy" in _error({**MINIMAL, **best_path})


def test_span_constrained_decoding_needs_output_ids_that_name_source_tokens() -> None:
    message = _error({**MINIMAL, "decoding": {"span_constrained": True}})
    assert "decoding.span_constrained needs model.decoder.copy or data.shared_vocab" in message
    shared = {**MINIMAL, "data": {"shared_vocab": True}, "decoding": {"span_constrained": True}}
    assert task_config(shared).decoding.span_constrained


def test_long_sources_policy_is_checked() -> None:
    assert "data.long_sources" in _error({**MINIMAL, "data": {"long_sources": "middle"}})


TRANSFORMER = {"task": "reverse", "model": {"architecture": "transformer"}}


@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("model", {"decoder": {"input_feeding": True}}, "model.decoder.input_feeding"),
        ("model", {"decoder": {"context": "init"}}, "model.decoder.context"),
        ("model", {"decoder": {"coverage": True, "attention": "bahdanau"}}, "model.decoder.coverage"),
        ("model", {"encoder": {"pooling": "mean"}}, "model.encoder.pooling"),
        ("training", {"teacher_forcing_ratio": 0.5}, "training.teacher_forcing_ratio"),
    ],
)
def test_rnn_only_options_are_refused_with_a_transformer(section: str, values: dict, key: str) -> None:
    raw = {**TRANSFORMER, section: {**TRANSFORMER.get(section, {}), **values}}  # type: ignore[dict-item]
    assert _error(raw) == f"config: {key} is an option of the RNN family, not of architecture transformer"


def test_transformer_sizes_and_positions_are_checked() -> None:
    model = {"architecture": "transformer", "transformer": {"d_model": 30, "heads": 4}}
    assert "d_model (30) must be a multiple of heads (4)" in _error({"task": "reverse", "model": model})
    model = {"architecture": "transformer", "transformer": {"share_embeddings": True}}
    assert "share_embeddings needs data.shared_vocab" in _error({"task": "reverse", "model": model})
    learned = {"architecture": "transformer", "transformer": {"positions": "learned", "max_positions": 100}}
    assert "exceeds model.transformer.max_positions (100) of learned positions" in _error(
        {"task": "reverse", "model": learned}
    )
    small = {"max_src_len": 50, "max_tgt_len": 50}
    config = task_config(
        {"task": "reverse", "model": learned, "data": small, "decoding": {"max_input_len": 90}}
    )
    assert config.model.transformer.positions == "learned"
    tied = task_config(
        {**TRANSFORMER, "model": {"architecture": "transformer", "decoder": {"tie_embeddings": True}}}
    )
    assert tied.model.decoder.tie_embeddings  # a Transformer ties d_model to d_model: no size rule
