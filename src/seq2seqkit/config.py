"""The one typed configuration: frozen dataclasses matching the YAML sections, validated once.

Unknown keys are rejected with a "did you mean" suggestion, values are checked against their
type, choices and range, and ``--set section.key=value`` overrides are applied before checking.
This module knows no task: ``tasks.task_config`` fills in a task's defaults and checks what the
task reads, and ``recipes.load_config`` reads a recipe through both, so the dependency runs one
way (tasks -> config). Only ``build.py`` and the training workflow read the config; components
take plain keyword arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from seq2seqkit.device import DEVICE_PATTERN
from seq2seqkit.errors import ConfigError


def bounded(default: Any, low: float | None = None, high: float | None = None) -> Any:
    """A field whose numeric value must lie in [low, high]."""
    return field(default=default, metadata={"low": low, "high": high})


@dataclass(frozen=True)
class SamplingConfig:
    """Subword regularization in training: each epoch segments the training text anew by sampling
    (Kudo, 2018, for unigram models: ``alpha`` smooths the segmentations' probabilities, and
    ``nbest_size`` -1 samples from all of them; Provilkov et al., 2020, BPE-dropout, for BPE models:
    ``alpha`` is the chance of leaving out a merge). alpha 0 is off. Validation, generation and the
    server segment deterministically."""

    alpha: float = bounded(0.0, 0.0, 1.0)
    nbest_size: int = bounded(-1, -1)  # unigram only


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["char", "word", "sentencepiece"] = "char"
    vocab_size: int = bounded(8000, 8)  # sentencepiece only
    model_type: Literal["bpe", "unigram"] = "bpe"  # sentencepiece only
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # sentencepiece only

    @property
    def segmenter(self) -> tuple[str, int, str]:
        """What the trained tokenizer depends on (not how training samples from it)."""
        return self.type, self.vocab_size, self.model_type


@dataclass(frozen=True)
class SyntheticConfig:
    task: Literal["copy", "reverse", "sort"] = "reverse"
    train_size: int = bounded(4000, 1)
    eval_size: int = bounded(200, 1)
    min_length: int = bounded(3, 1)
    max_length: int = bounded(10, 1)
    alphabet_size: int = bounded(10, 1, 26)


@dataclass(frozen=True)
class AudioConfig:
    """Log-mel filterbank features of audio sources (data.source: audio)."""

    sample_rate: int = bounded(16000, 1000)  # audio at other rates is resampled to this
    num_mel_bins: int = bounded(80, 1)
    frame_length_ms: float = bounded(25.0, 1.0)
    frame_shift_ms: float = bounded(10.0, 1.0)
    # mean and variance per bin: of the training set (stored in the model directory), of each
    # utterance, or none
    normalization: Literal["global", "utterance", "none"] = "global"
    # speed perturbation in training (Ko et al., 2015): each epoch plays each training utterance
    # at one of these speeds, drawn at random (seeded), e.g. [0.9, 1.0, 1.1]; empty = off
    speed_perturbation: tuple[float, ...] = ()


@dataclass(frozen=True)
class TrainSource:
    """One more source of training pairs, in data.format like data.train (back-translations, say)."""

    path: str = ""  # as data.train: a file, or for parallel text the path before .src / .tgt
    # how many times an epoch shows each pair, on average (an upsampling factor): 2 = twice,
    # 0.5 = a random half, drawn anew each epoch
    weight: float = bounded(1.0, 0.0)
    # a token put before each of its sources, e.g. "<BT>" (tagged back-translation, Caswell et
    # al., 2019); generation puts it only when asked (`generate --tag`); empty = none
    tag: str = ""


@dataclass(frozen=True)
class DataConfig:
    # parallel: {train,valid,test}.{src_suffix,tgt_suffix}; tsv / jsonl: the files themselves;
    # or a format of the task's own (g2p: cmudict, the CMU Pronouncing Dictionary; copy / reverse /
    # sort: synthetic, generated)
    format: str = "parallel"
    train: str = ""
    train_weight: float = bounded(1.0, 0.0)  # data.train's weight, as TrainSource.weight
    extra_train: tuple[TrainSource, ...] = ()  # more training sources, mixed in by their weights
    valid: str = ""
    test: str = ""
    src_suffix: str = "src"
    tgt_suffix: str = "tgt"
    src_field: str = "src"  # jsonl
    tgt_field: str = "tgt"  # jsonl
    # a source of several fields joined by <sep> (a question and its context): jsonl field names, or
    # for tsv the names of the first columns (the target is the next one); empty = one field
    src_fields: tuple[str, ...] = ()
    tsv_header: bool = False
    skip_bad_lines: bool = False  # skip (and count) empty or malformed pairs instead of failing
    max_src_len: int = bounded(200, 1)  # in tokens; see long_sources
    # a training source over max_src_len is dropped, cut to its start, or cut to the window of its
    # last field that best matches the first fields (a question's words in its context); generation
    # cuts inputs over decoding.max_input_len the same way (its start, when dropping). Counted.
    long_sources: Literal["drop", "start", "window"] = "drop"
    max_tgt_len: int = bounded(200, 1)
    src_tokenizer: TokenizerConfig = TokenizerConfig()
    tgt_tokenizer: TokenizerConfig = TokenizerConfig()
    shared_vocab: bool = False  # one vocabulary (and one joint SentencePiece model) for both sides
    # one SentencePiece model trained on both sides' text, but each side its own vocabulary of the
    # pieces it uses (as OpenNMT-py and Joey NMT build theirs over joint pieces)
    joint_sentencepiece: bool = False
    max_vocab_size: int | None = bounded(None, 5)
    min_freq: int = bounded(1, 1)
    # train on this share of the training pairs: a seeded subset, nested (a smaller share's pairs
    # are all in a larger one's), the same for every recipe (learning curves: analyze data-size)
    train_fraction: float = bounded(1.0, 0.0001, 1.0)
    # a source with several targets in the training split (a word's pronunciations): train on all
    # of them, or on its first only (the dictionary's main entry); scoring keeps every reference
    train_targets: Literal["all", "first"] = "all"
    synthetic: SyntheticConfig = SyntheticConfig()
    # text: sources are text; audio: sources are audio files (paths in the data, or arrays through
    # the Python API) read as log-mel frames, and max_src_len / max_input_len count frames
    source: Literal["text", "audio"] = "text"
    audio: AudioConfig = AudioConfig()

    @property
    def tags(self) -> tuple[str, ...]:
        """The tag tokens of the training sources (data.extra_train), each once."""
        return tuple(dict.fromkeys(extra.tag for extra in self.extra_train if extra.tag))


@dataclass(frozen=True)
class EncoderConfig:
    hidden_size: int = bounded(256, 1)  # per direction
    num_layers: int = bounded(2, 1)
    bidirectional: bool = True
    pooling: Literal["last", "mean", "max"] = "last"  # the context vector c = q(h_1..h_T)
    # a source of several fields (a question <sep> its paragraph): each token of the last field
    # also embeds whether it occurs in the first fields, DrQA's exact-match feature (Chen et al.,
    # 2017), so the encoder sees where the paragraph repeats the question
    field_match: bool = False
    # field_match on tokens' lower-cased text without SentencePiece's word-boundary mark ("▁The"
    # matches "the"), not on their ids
    field_match_normalized: bool = False


@dataclass(frozen=True)
class DecoderConfig:
    hidden_size: int = bounded(512, 1)
    num_layers: int = bounded(2, 1)
    # none: the decoder conditioned on nothing, a language model of the targets (task
    # language_model), for shallow fusion at decoding (decoding.lm)
    context: Literal["init", "every_step", "attention", "none"] = "attention"
    attention: Literal["bahdanau", "dot", "general", "concat"] = "general"
    input_feeding: bool = False
    tie_embeddings: bool = False
    # the attention also reads how much each source position was attended so far (See et al., 2017;
    # additive attention: bahdanau or concat)
    coverage: bool = False
    # location-aware attention (Chorowski et al., 2015; additive attention): the scores also read
    # location_filters convolutions (location_width positions wide) of the previous step's weights,
    # so the attention knows where it was: the alignment of speech moves forward, never jumps
    location: bool = False
    location_filters: int = bounded(10, 1)
    location_width: int = bounded(31, 1)
    # pointer-generator copy attention (See et al., 2017): copy source words, unknown ones included
    copy: bool = False
    # vocabulary: generate target tokens; pointer: a reader of "question <sep> paragraph" that
    # points at the answer's start and end in the paragraph (model/reader.py; the encoder's sizes)
    output: Literal["vocabulary", "pointer"] = "vocabulary"


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment (Park et al., 2019) on audio features in training: masks of up to
    freq_width bins and up to time_width frames (at most max_time_ratio of an utterance each)."""

    freq_masks: int = bounded(0, 0)
    freq_width: int = bounded(27, 1)
    time_masks: int = bounded(0, 0)
    time_width: int = bounded(40, 1)
    max_time_ratio: float = bounded(0.2, 0.0, 1.0)


@dataclass(frozen=True)
class TransformerConfig:
    """The Transformer (Vaswani et al., 2017), for model.architecture: transformer: self-attention
    in the encoder; masked self-attention and cross-attention in the decoder; no recurrence."""

    encoder_layers: int = bounded(3, 1)
    decoder_layers: int = bounded(3, 1)
    d_model: int = bounded(256, 1)  # the embeddings' and every layer's size
    heads: int = bounded(4, 1)  # d_model / heads per head
    ff_size: int = bounded(1024, 1)  # the position-wise feed-forward network's inner size
    dropout: float = bounded(0.1, 0.0, 0.99)  # on embeddings + positions, sublayer outputs, FFN
    attention_dropout: float = bounded(0.1, 0.0, 0.99)  # on the attention weights
    # pre: x + Sublayer(LayerNorm(x)), trains without a long warmup; post: the paper's
    # LayerNorm(x + Sublayer(x))
    norm: Literal["pre", "post"] = "pre"
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_positions: int = bounded(1024, 1)  # learned positions: the longest input and output
    # one embedding matrix for source and target tokens (needs data.shared_vocab)
    share_embeddings: bool = False


@dataclass(frozen=True)
class ModelConfig:
    # rnn: the recurrent encoder-decoder (rnn_type, encoder, decoder); transformer: the
    # Transformer of the transformer section, through the same frontends, outputs and decoding
    architecture: Literal["rnn", "transformer"] = "rnn"
    rnn_type: Literal["lstm", "gru"] = "lstm"
    embedding_size: int = bounded(256, 1)
    dropout: float = bounded(0.2, 0.0, 0.99)
    # what the encoder reads through: token embeddings (text), or for audio frames either each
    # frame_stack consecutive frames side by side (stack: a frame_stack times lower frame rate) or
    # two strided convolutions that cut the frame rate by 4 into embedding_size (ESPnet's conv2d)
    frontend: Literal["embedding", "stack", "conv2d"] = "embedding"
    frame_stack: int = bounded(4, 1)  # stack
    frontend_channels: int = bounded(32, 1)  # conv2d
    spec_augment: SpecAugmentConfig = SpecAugmentConfig()
    # lambda of joint CTC-attention training (Kim et al., 2017): a CTC head on the encoder and the
    # loss lambda * CTC + (1 - lambda) * attention; 0 = no CTC head, 1 = CTC alone
    ctc_weight: float = bounded(0.0, 0.0, 1.0)
    encoder: EncoderConfig = EncoderConfig()
    decoder: DecoderConfig = DecoderConfig()
    transformer: TransformerConfig = TransformerConfig()


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = 1
    batch_tokens: int = bounded(4000, 1)  # padded tokens per batch (the longer side)
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = bounded(1e-3, 0.0)
    weight_decay: float = bounded(0.0, 0.0)
    scheduler: Literal["constant", "plateau", "warmup_cosine", "inverse_sqrt"] = "constant"
    warmup_steps: int = bounded(0, 0)
    min_lr: float = bounded(0.0, 0.0)
    plateau_factor: float = bounded(0.5, 0.0, 1.0)
    plateau_patience: int = bounded(2, 0)
    label_smoothing: float = bounded(0.1, 0.0, 0.99)
    clip_grad_norm: float = bounded(5.0, 0.0)  # 0 = no clipping
    teacher_forcing_ratio: float = bounded(1.0, 0.0, 1.0)
    coverage_loss_weight: float = bounded(1.0, 0.0)  # lambda of the coverage loss (with decoder.coverage)
    max_steps: int = bounded(0, 0)  # 0 = no limit
    max_epochs: int = bounded(0, 0)
    max_minutes: float = bounded(0.0, 0.0)
    validate_every: int = bounded(1000, 1)  # steps; training also validates when it stops
    early_stopping_patience: int = bounded(0, 0)  # validations without improvement; 0 = off
    # when training ends, the mean of the weights at the last N validations is validated too and
    # kept as the best weights if it scores higher (checkpoint averaging); 0 or 1 = off
    average_last: int = bounded(0, 0)
    log_every: int = bounded(100, 1)
    max_nonfinite_steps: int = bounded(10, 1)  # NaN/inf losses in a row (each skipped) before stopping
    # auto: the first GPU when CUDA is available, else the CPU; or cpu, cuda, cuda:N. Under torchrun
    # each process takes the GPU of its local rank.
    device: str = "auto"
    # the matmuls' dtype under autocast. auto: bfloat16 on a GPU that has it (else float16, with a
    # gradient scaler) and on a CPU that computes it natively (else float32)
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    threads: int = bounded(0, 0)  # 0 = torch's default
    tensorboard: bool = False
    evaluate_test: bool = True  # score the best model on the test split when training ends


DecodingMethod = Literal["attention", "ctc_greedy", "joint", "rescore"]
DECODING_METHODS: tuple[str, ...] = get_args(DecodingMethod)


@dataclass(frozen=True)
class DecodingConfig:
    beam_size: int = bounded(5, 1)
    length_penalty: float = bounded(1.0, 0.0)  # alpha of Wu et al. (2016); 0 = raw log-prob
    # beta of Wu et al. (2016), beam search with attention; 0 = off
    coverage_penalty: float = bounded(0.0, 0.0)
    max_length_ratio: float = bounded(2.0, 0.0)  # max output = ratio * source length + offset
    max_length_offset: int = bounded(10, 0)
    batch_tokens: int = bounded(8000, 1)  # padded source tokens per batch, for any beam size
    # longer inputs are cut to this many tokens (with a warning); training pairs are filtered by
    # data.max_src_len instead, but an RNN reads inputs of any length
    max_input_len: int = bounded(400, 1)
    min_output_len: int = bounded(0, 0)  # tokens before <eos> is allowed
    max_output_len: int = bounded(0, 0)  # an absolute cap beside the ratio; 0 = the ratio alone
    block_ngram_repeat: int = bounded(0, 0)  # no n-gram of this many tokens twice in an output; 0 = off
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "float32"  # as training.precision
    # outputs are spans of the source's last field (an answer taken from its context): needs a
    # copying model or a shared vocabulary, so that output ids name source tokens
    span_constrained: bool = False
    # a model with a CTC head: attention (beam) search, CTC greedy (best path), joint: beam
    # search ranking each partial hypothesis by ctc_weight * CTC prefix score + (1 - ctc_weight) *
    # attention, or rescore: the attention beam's n-best re-ranked by the same weights
    method: DecodingMethod = "attention"
    max_answer_words: int = bounded(15, 1)  # a pointer reader's longest answer, in words
    ctc_weight: float = bounded(0.3, 0.0, 1.0)  # joint and rescore
    # shallow fusion (Gulcehre et al., 2015): a language model's directory (task language_model,
    # trained on this model's targets); the search ranks by score + lm_weight * log p_lm(y)
    lm: str = ""
    lm_weight: float = bounded(0.3, 0.0)


@dataclass(frozen=True)
class Config:
    name: str = "model"
    description: str = ""  # one line: `seq2seqkit recipes` lists it, the model card shows it
    # a registered task (seq2seqkit/tasks): translation, summarization, qa, asr, g2p, transduction,
    # copy, reverse, sort
    task: str = "translation"
    output_dir: str = "runs/model"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    decoding: DecodingConfig = DecodingConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and scalars (what YAML writes)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML recipe as nested dicts, merged over its ``base: other.yaml`` (relative to its folder)."""
    raw = _read_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be a file name, e.g. base: mt-debian-en-de.yaml")
    base_path = path.parent / base
    if base_path.resolve() in seen or len(seen) > 8:
        raise ConfigError(f"{path}: base configs form a cycle through {base_path}")
    return merge(read_recipe(base_path, (*seen, path.resolve())), raw)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return raw


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, recursively for sections present in both."""
    merged = _deep_copy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Set ``a.b.c=value`` (value parsed as YAML) in a copy of the nested dict."""
    merged = _deep_copy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. training.lr=3e-4")
        node = merged
        *parents, last = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        try:
            node[last] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            node[last] = value
    return merged


def _deep_copy(raw: Any) -> Any:
    return {k: _deep_copy(v) for k, v in raw.items()} if isinstance(raw, dict) else raw


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """The typed config of ``raw`` as it stands (no task defaults: see ``tasks.task_config``)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    config = _build(Config, raw, prefix="", source=source)
    _check_consistency(config, source)
    return config


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'} must be a section (a mapping)")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint} (allowed: {', '.join(fields)})")
        values[key] = _check_value(hints[key], value, fields[key], f"{prefix}{key}", source)
    return cls(**values)


def _check_value(hint: Any, value: Any, spec: dataclasses.Field, name: str, source: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=f"{name}.", source=source)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):  # mappings
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {name} must be a list of mappings, got {value!r}")
        return tuple(_build(args[0], v, prefix=f"{name}[{i}].", source=source) for i, v in enumerate(value))
    if origin is tuple:  # tuple[str, ...], written as a YAML list
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, args[0]) for v in value):
            raise ConfigError(f"{source}: {name} must be a list of {args[0].__name__}, got {value!r}")
        return tuple(value)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint_text = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{source}: {name} = {value!r} is not allowed{hint_text} "
                f"(allowed: {', '.join(map(str, args))})"
            )
        return value
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        value = _as_float(value)
        ok = isinstance(value, float) and math.isfinite(value)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise ConfigError(f"{source}: {name} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    low, high = spec.metadata.get("low"), spec.metadata.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{source}: {name} = {value!r} is out of range (allowed: {allowed})")
    return value


def _as_float(value: Any) -> Any:
    """Numbers, and strings such as "3e-4" that YAML 1.1 leaves as text, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    try:
        return float(value)
    except (ValueError, OverflowError):
        return value


def _check_consistency(config: Config, source: str) -> None:
    """Rules that involve more than one key (those involving the task: ``tasks.task_config``)."""
    model, data = config.model, config.data
    dec = model.decoder
    if model.architecture == "transformer":
        _check_transformer(config, source)
    else:
        _check_rnn_sizes(model, source)
    if dec.location and not (dec.context == "attention" and dec.attention in ("bahdanau", "concat")):
        raise ConfigError(
            f"{source}: model.decoder.location needs context 'attention' with additive attention "
            "(bahdanau or concat)"
        )
    if dec.coverage and not (dec.context == "attention" and dec.attention in ("bahdanau", "concat")):
        raise ConfigError(
            f"{source}: model.decoder.coverage needs context 'attention' with additive attention "
            "('bahdanau' or 'concat'), whose scores it enters"
        )
    if config.decoding.span_constrained and not (dec.copy or data.shared_vocab):
        raise ConfigError(
            f"{source}: decoding.span_constrained needs model.decoder.copy or data.shared_vocab "
            "(output ids must name the source's tokens)"
        )
    if dec.copy and dec.context != "attention":
        raise ConfigError(
            f"{source}: model.decoder.copy needs context 'attention' (it copies where it attends)"
        )
    if data.joint_sentencepiece and not (
        data.src_tokenizer.type == "sentencepiece"
        and data.src_tokenizer.segmenter == data.tgt_tokenizer.segmenter
    ):
        raise ConfigError(
            f"{source}: data.joint_sentencepiece needs src_tokenizer and tgt_tokenizer to be the same "
            "sentencepiece settings"
        )
    _check_audio(config, source)
    _check_pointer(config, source)
    _check_language_model(config, source)
    _check_sampling(config, source)
    _check_speeds(config, source)
    _check_train_sources(config, source)
    if data.src_fields and data.format == "parallel":
        raise ConfigError(
            f"{source}: data.src_fields needs data.format tsv or jsonl (parallel text has one field)"
        )
    _check_settings(config, source)


def _check_language_model(config: Config, source: str) -> None:
    """A language model (context none) reads no source and has no CTC head or pointer; a model
    fused with one (decoding.lm) searches over its plain target vocabulary."""
    model, decoding = config.model, config.decoding
    if model.decoder.context == "none":
        conflicts = {
            "model.ctc_weight": model.ctc_weight > 0,
            "model.decoder.output pointer": model.decoder.output == "pointer",
            "data.source audio": config.data.source == "audio",
        }
        for key, conflicting in conflicts.items():
            if conflicting:
                raise ConfigError(f"{source}: {key} needs a source; model.decoder.context none reads none")
    if decoding.lm:
        conflicts = {
            "decoding.method ctc_greedy (no search)": decoding.method == "ctc_greedy",
            "model.decoder.copy (an extended vocabulary)": model.decoder.copy,
            "model.decoder.output pointer (no vocabulary)": model.decoder.output == "pointer",
        }
        for key, conflicting in conflicts.items():
            if conflicting:
                raise ConfigError(
                    f"{source}: decoding.lm fuses a language model into the search; not with {key}"
                )


def _check_pointer(config: Config, source: str) -> None:
    """A pointer reader reads a question and a paragraph of text, and generates nothing."""
    model = config.model
    if model.decoder.output != "pointer":
        return
    conflicts = {
        "model.architecture transformer": model.architecture == "transformer",
        "model.decoder.copy": model.decoder.copy,
        "model.ctc_weight": model.ctc_weight > 0,
        "data.source audio": config.data.source == "audio",
    }
    for name, conflict in conflicts.items():
        if conflict:
            raise ConfigError(
                f"{source}: model.decoder.output pointer (a span reader) does not go with {name}"
            )


def _check_sampling(config: Config, source: str) -> None:
    """Sampling segmentations needs SentencePiece, and a reader's spans its fixed segmentation."""
    for side in ("src_tokenizer", "tgt_tokenizer"):
        tokenizer: TokenizerConfig = getattr(config.data, side)
        if not tokenizer.sampling.alpha:
            continue
        if tokenizer.type != "sentencepiece":
            raise ConfigError(
                f"{source}: data.{side}.sampling needs type sentencepiece (it samples subword segmentations)"
            )
        if config.model.decoder.output == "pointer":
            raise ConfigError(f"{source}: data.{side}.sampling does not go with model.decoder.output pointer")


def _check_speeds(config: Config, source: str) -> None:
    """Speeds for audio sources, within reason, and not with subword sampling (each makes its
    own epoch of the training pairs)."""
    data = config.data
    speeds = data.audio.speed_perturbation
    if not speeds:
        return
    if data.source != "audio":
        raise ConfigError(f"{source}: data.audio.speed_perturbation needs data.source audio")
    if not all(0.5 <= speed <= 2.0 for speed in speeds):
        raise ConfigError(
            f"{source}: data.audio.speed_perturbation speeds must lie in [0.5, 2], got {list(speeds)}"
        )
    if data.tgt_tokenizer.sampling.alpha:
        raise ConfigError(
            f"{source}: data.audio.speed_perturbation does not go with data.tgt_tokenizer.sampling"
        )


# the vocabulary's specials and field separator (data/vocab.py, which the config does not import)
RESERVED_TOKENS = ("<pad>", "<unk>", "<sos>", "<eos>", "<sep>")


def _check_train_sources(config: Config, source: str) -> None:
    """Positive weights, a path for each extra source, and tags that are one token a text
    source can carry (a pointer reader's positions leave no room for one)."""
    data = config.data
    if data.train_weight <= 0:
        raise ConfigError(f"{source}: data.train_weight must be positive, got {data.train_weight:g}")
    for i, extra in enumerate(data.extra_train):
        key = f"data.extra_train[{i}]"
        if not extra.path:
            raise ConfigError(f"{source}: {key}.path is required (a file, or the path before .src / .tgt)")
        if extra.weight <= 0:
            raise ConfigError(f"{source}: {key}.weight must be positive, got {extra.weight:g}")
        if not extra.tag:
            continue
        if data.source == "audio" or config.model.decoder.output == "pointer":
            raise ConfigError(f"{source}: {key}.tag needs text sources and a decoder that generates")
        if extra.tag.split() != [extra.tag] or extra.tag in RESERVED_TOKENS:
            raise ConfigError(f"{source}: {key}.tag = {extra.tag!r} must be one token, such as '<BT>'")


def _check_audio(config: Config, source: str) -> None:
    """Audio sources go through an audio frontend, text through embeddings; CTC needs a head."""
    model, data = config.model, config.data
    if (data.source == "audio") != (model.frontend != "embedding"):
        raise ConfigError(
            f"{source}: data.source {data.source!r} needs model.frontend "
            f"{'stack or conv2d' if data.source == 'audio' else 'embedding'}"
        )
    if data.source == "audio" and (model.decoder.copy or config.decoding.span_constrained):
        raise ConfigError(f"{source}: copying and span-constrained decoding need text sources")
    if model.encoder.field_match and len(data.src_fields) < 2:
        raise ConfigError(f"{source}: model.encoder.field_match needs a source of several data.src_fields")
    if model.encoder.field_match_normalized and not model.encoder.field_match:
        raise ConfigError(f"{source}: model.encoder.field_match_normalized needs model.encoder.field_match")
    if config.decoding.method != "attention" and model.ctc_weight == 0:
        raise ConfigError(
            f"{source}: decoding.method {config.decoding.method!r} needs a CTC head (model.ctc_weight > 0)"
        )
    if model.ctc_weight == 1 and config.decoding.method != "ctc_greedy":
        raise ConfigError(
            f"{source}: model.ctc_weight 1 trains the CTC head alone; "
            "decode it with decoding.method ctc_greedy"
        )


def _check_rnn_sizes(model: ModelConfig, source: str) -> None:
    """Sizes of the recurrent family that must agree."""
    memory = model.encoder.hidden_size * (2 if model.encoder.bidirectional else 1)
    dec = model.decoder
    if dec.context == "attention" and dec.attention == "dot" and memory != dec.hidden_size:
        raise ConfigError(
            f"{source}: dot attention needs model.decoder.hidden_size ({dec.hidden_size}) equal to "
            f"the encoder output size ({memory}); use attention 'general' or change the sizes"
        )
    if dec.tie_embeddings and dec.hidden_size != model.embedding_size:
        raise ConfigError(
            f"{source}: model.decoder.tie_embeddings needs model.decoder.hidden_size "
            f"({dec.hidden_size}) == model.embedding_size ({model.embedding_size})"
        )


# options of the recurrent family that a Transformer does not have, with their RNN-only values
RNN_ONLY = {
    "model.decoder.context": lambda c: c.model.decoder.context != "attention",
    "model.decoder.input_feeding": lambda c: c.model.decoder.input_feeding,
    "model.decoder.coverage": lambda c: c.model.decoder.coverage,
    "model.decoder.location": lambda c: c.model.decoder.location,
    "model.encoder.pooling": lambda c: c.model.encoder.pooling != "last",
    "training.teacher_forcing_ratio": lambda c: c.training.teacher_forcing_ratio < 1,
}


def _check_transformer(config: Config, source: str) -> None:
    """A Transformer: no RNN-only option set, heads dividing d_model, lengths within its positions."""
    for key, is_set in RNN_ONLY.items():
        if is_set(config):
            raise ConfigError(
                f"{source}: {key} is an option of the RNN family, not of architecture transformer"
            )
    t = config.model.transformer
    if t.d_model % t.heads:
        raise ConfigError(
            f"{source}: model.transformer.d_model ({t.d_model}) must be a multiple of heads ({t.heads})"
        )
    if t.share_embeddings and not config.data.shared_vocab:
        raise ConfigError(f"{source}: model.transformer.share_embeddings needs data.shared_vocab")
    lengths = {"data.max_tgt_len + 1": config.data.max_tgt_len + 1}
    if config.data.source == "text":  # audio positions come after the frontend's subsampling
        lengths |= {
            "data.max_src_len": config.data.max_src_len,
            "decoding.max_input_len": config.decoding.max_input_len,
        }
    too_long = [f"{name} ({value})" for name, value in lengths.items() if value > t.max_positions]
    if t.positions == "learned" and too_long:
        raise ConfigError(
            f"{source}: {too_long[0]} exceeds model.transformer.max_positions ({t.max_positions}) "
            "of learned positions"
        )


def _check_settings(config: Config, source: str) -> None:
    """Rules on the training, decoding and synthetic data settings."""
    if not DEVICE_PATTERN.fullmatch(config.training.device):
        raise ConfigError(
            f"{source}: training.device = {config.training.device!r} is not one of auto, cpu, cuda, cuda:N"
        )
    decoding = config.decoding
    if decoding.max_output_len and decoding.min_output_len > decoding.max_output_len:
        raise ConfigError(f"{source}: decoding.min_output_len must not exceed decoding.max_output_len")
    synthetic = config.data.synthetic
    if synthetic.min_length > synthetic.max_length:
        raise ConfigError(f"{source}: data.synthetic.min_length must not exceed max_length")
