"""ONNX export of a model directory: the encoder and one decoder step as two graphs; search stays
outside them, in ``runtime.py``, which is copied beside them.

The output directory holds:

- ``encoder.onnx``: src (batch, src_len) int64 ids, or for a speech model (batch, frames, bins)
  float32 log-mel frames, and src_lengths (batch,) int64 -> the source
  entries the step reads (``memory``, ``keys``, ``mask`` with attention; ``context`` when it is fed
  at every step; a Transformer's ``keys``, every layer's cross-attention keys and values, and
  ``mask``) and the initial decoder state (``state_h``, ``state_c`` of an LSTM, ``state_feed`` with
  input feeding, ``state_coverage`` and ``state_previous`` (rows, src_len) with coverage and
  location-aware attention; a Transformer's key/value cache ``state_k0``, ``state_v0``, ... per layer, (rows,
  heads, steps, d_k), empty at first and one step longer after each step), every tensor batch first;
  a model with a CTC head adds ``ctc_log_probs`` (batch, positions, vocab) and ``ctc_lengths``
  (batch,), which ``runtime.py``'s joint CTC/attention search and CTC greedy decoding read.
- ``decoder_step.onnx``: prev_tokens (rows,) int64, the source entries (sources, ...), for a
  copying model (pointer-generator) ``extended_ids`` (sources, src_len), each source token's id
  over the target vocabulary extended by the source's unknown words, and the state (rows, ...) ->
  ``log_probs`` (rows, vocab), ``attention`` (rows, src_len) with attention, and
  ``next_state_*``. A copying model's vocab is the target vocabulary + src_len, room for every
  extended id (those no source word holds have probability 0). As in decoding/search.py, rows =
  sources x k: a source's k hypotheses are k consecutive rows sharing its entries (k = 1 in
  greedy search). Batch, sources, rows and source length are dynamic axes.
- ``encoder.int8.onnx``, ``decoder_step.int8.onnx`` with ``quantize="int8"``: the same graphs
  with int8 weights (onnxruntime's dynamic quantization; activations are quantized on the fly).
- ``top_k.onnx``: one TopK node, beam search's top k over the vocabulary.
- A pointer reader (``model.decoder.output: pointer``) is one graph instead, ``reader.onnx``
  (``reader.int8.onnx``): src (batch, src_len) ids of "question <sep> paragraph" and src_lengths
  -> ``log_probs`` (batch, 2, src_len), log P_start and log P_end over the source's positions,
  -inf off the paragraph; ``runtime.py`` takes the best span of whole words, as
  decoding/span.py does.
- ``runtime.json`` (tokenizers or audio features, decoding settings), ``runtime.py``, the model's
  ``config.yaml``, vocabularies, SentencePiece models and a speech model's normalisation
  statistics: ``runtime.py`` computes the log-mel frames with the libraries the package uses
  (soundfile, soxr, kaldi-native-fbank).
- ``lm/``: a language model fused into the search (decoding.lm, shallow fusion), exported alike.

The graphs are traced with torch's TorchScript-based exporter (``dynamo=False``). Measured with
torch 2.13: its default exporter (``dynamo=True``, which needs onnxscript) cannot trace packed
sequences at all, and this encoder, which runs each RNN over the padded batch instead, it exports
with the example's source length baked into the graph, so other lengths fail in onnxruntime; the
TorchScript-based one handles both with dynamic axes (bench/onnx_exporters.py, docs/scale.md).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from seq2seqkit import checkpoint
from seq2seqkit.build import separator_id
from seq2seqkit.config import Config
from seq2seqkit.decoding.generate import CTC_CANDIDATES
from seq2seqkit.errors import ConfigError, Seq2SeqError
from seq2seqkit.model.decoder import DecoderState
from seq2seqkit.model.encoder import EncoderOutput
from seq2seqkit.model.reader import PointerReader
from seq2seqkit.model.seq2seq import Seq2Seq, State
from seq2seqkit.model.transformer import TransformerDecoder, TransformerState
from seq2seqkit.pipeline import Pipeline, load

Quantize = Literal["int8"]
OPSET = 17
# (sources, src_len, ...); the other tensors are (rows or batch, ...)
POSITIONAL = {"memory", "keys", "mask", "extended_ids", "ctc_log_probs"}
TOP_K = "top_k.onnx"
LM_DIRECTORY = "lm"  # a fused language model's own export
GRAPHS: dict[str, tuple[str, ...]] = {
    "float32": ("encoder.onnx", "decoder_step.onnx"),
    "int8": ("encoder.int8.onnx", "decoder_step.int8.onnx"),
}
READER_GRAPHS: dict[str, tuple[str, ...]] = {"float32": ("reader.onnx",), "int8": ("reader.int8.onnx",)}


def check_exportable(config: Config) -> None:
    """Raise ConfigError naming the first setting that the graphs or ``runtime.py`` lack."""
    decoding = config.decoding
    unsupported = [
        (decoding.coverage_penalty > 0, "decoding.coverage_penalty"),
        (decoding.block_ngram_repeat > 0, "decoding.block_ngram_repeat"),
        (decoding.method == "rescore", "decoding.method rescore"),
    ]
    for used, name in unsupported:
        if used:
            raise ConfigError(f"ONNX export does not support {name} yet; export a model without it")


def source_entries(model: Seq2Seq) -> list[str]:
    """The encoder outputs a decoder step reads, by name."""
    if isinstance(model.decoder, TransformerDecoder):
        return ["keys", "mask"]
    if model.decoder.attention is not None:
        return ["memory", "keys", "mask"]
    return ["context"] if model.decoder.context == "every_step" else []


def state_names(model: Seq2Seq) -> list[str]:
    """The decoder state's tensors, by name."""
    if isinstance(model.decoder, TransformerDecoder):
        return [f"state_{kv}{layer}" for layer in range(len(model.decoder.stack)) for kv in "kv"]
    decoder = model.decoder
    names = ["state_h", "state_c"] if decoder.rnn_type == "lstm" else ["state_h"]
    optional = [
        (decoder.input_feeding, "state_feed"),
        (decoder.coverage, "state_coverage"),  # (rows, src_len): the attention so far
        (decoder.location, "state_previous"),  # (rows, src_len): the last step's attention
    ]
    return [*names, *(name for used, name in optional if used)]


def ctc_names(model: Seq2Seq) -> list[str]:
    """The CTC head's outputs of the encoder graph, by name (none without a head)."""
    return [] if model.ctc_head is None else ["ctc_log_probs", "ctc_lengths"]


class EncoderGraph(nn.Module):
    """src, src_lengths -> the source entries, the initial state and the CTC head's
    log-probabilities over the encoder's positions with their counts (see the module docstring)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.entries = source_entries(model)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        enc = self.model.encode(src, src_lengths)
        named = {"memory": enc.memory, "keys": enc.keys, "mask": enc.mask, "context": enc.context}
        entries = [tensor for tensor in (named[name] for name in self.entries) if tensor is not None]
        assert len(entries) == len(self.entries), "a model with attention has keys"
        ctc = () if self.model.ctc_head is None else (self.model.ctc_log_probs(enc), enc.mask.sum(1))
        return (*entries, *_flatten(self.model.init_state(enc)), *ctc)


def step_inputs(model: Seq2Seq) -> list[str]:
    """What a decoder step reads from the source: the encoder's entries, and a copying model's
    extended ids, which the runtime computes from the source's tokens."""
    return [*source_entries(model), *(["extended_ids"] if model.copy_gate is not None else [])]


class StepGraph(nn.Module):
    """prev_tokens, the step's source inputs, the state -> log_probs[, attention], the new state."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.entries = step_inputs(model)
        self.states = state_names(model)

    def forward(self, prev_tokens: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        entries = dict(zip(self.entries, tensors, strict=False))
        state = _unflatten(dict(zip(self.states, tensors[len(self.entries) :], strict=True)))
        unused = prev_tokens.new_zeros(0)  # what this variant's step never reads
        context, extended_ids = entries.get("context"), entries.get("extended_ids")
        enc = EncoderOutput(
            memory=entries.get("memory", unused),
            mask=entries.get("mask", unused),
            context=unused if context is None else _broadcast_to_rows(context, prev_tokens),
            keys=entries.get("keys"),
            extended_ids=None if extended_ids is None else _broadcast_to_rows(extended_ids, prev_tokens),
        )
        log_probs, new_state, attention = self.model.step(prev_tokens, enc, state)
        head = (log_probs,) if attention is None else (log_probs, attention)
        return (*head, *_flatten(new_state))


def _broadcast_to_rows(entries: torch.Tensor, prev_tokens: torch.Tensor) -> torch.Tensor:
    """Each row's entry, by broadcasting over (sources, k): EncoderOutput's repeat_interleave for
    the rows of a source would be traced with the example's k."""
    k = prev_tokens.view(entries.size(0), -1, *[1] * (entries.dim() - 1))
    return (entries.unsqueeze(1) + torch.zeros_like(k, dtype=entries.dtype)).flatten(0, 1)  # rows, ...


def _flatten(state: State) -> list[torch.Tensor]:
    """The state's tensors batch first, in ``state_names`` order."""
    if isinstance(state, TransformerState):
        return [tensor for pair in zip(state.keys, state.values, strict=True) for tensor in pair]
    hidden = state.hidden if isinstance(state.hidden, tuple) else (state.hidden,)
    tensors = [h.transpose(0, 1) for h in hidden]  # layers, B, H -> B, layers, H
    return [*tensors, *(t for t in (state.feed, state.coverage, state.previous) if t is not None)]


def _unflatten(named: dict[str, torch.Tensor]) -> State:
    """The state of the tensors ``_flatten`` gave, by their ``state_names``."""
    if "state_k0" in named:
        tensors = list(named.values())
        return TransformerState(keys=tensors[0::2], values=tensors[1::2])
    h = named["state_h"].transpose(0, 1)  # B, layers, H -> layers, B, H
    hidden = h if "state_c" not in named else (h, named["state_c"].transpose(0, 1))
    return DecoderState(
        hidden=hidden,
        feed=named.get("state_feed"),
        coverage=named.get("state_coverage"),
        previous=named.get("state_previous"),
    )


def export_onnx(
    model_dir: Path, output: Path, quantize: Quantize | None = None, decoding: dict[str, Any] | None = None
) -> Path:
    """Write the graphs, ``runtime.py`` and the files it reads into ``output``; returns it.
    ``decoding``: settings that replace the model's (``Pipeline.set_decoding``); a language model
    fused into the search (decoding.lm) is exported too, into ``output``/lm."""
    pipeline = load(model_dir)
    if decoding:
        pipeline.set_decoding(**decoding)
    check_exportable(pipeline.config)
    if pipeline.fusion() is not None:  # checks that it is a language model over our targets
        export_onnx(Path(pipeline.config.decoding.lm), output / LM_DIRECTORY, quantize)
    model = pipeline.model.cpu().eval()  # the graphs are traced on the CPU
    output.mkdir(parents=True, exist_ok=True)
    if isinstance(model, PointerReader):
        graphs = READER_GRAPHS
        _export_reader(model, separator_id(pipeline.source.vocab), output / graphs["float32"][0])
    else:
        graphs = GRAPHS
        encoder_path, step_path = (output / name for name in graphs["float32"])
        src, src_lengths = _example_sources(pipeline)
        encoded = _export_encoder(model, src, src_lengths, encoder_path)
        _export_step(model, encoded, src, step_path)
        _write_top_k(output / TOP_K)
    if quantize == "int8":
        for source, target in zip(graphs["float32"], graphs["int8"], strict=True):
            _quantize(output / source, output / target)
    kinds = ("float32", *([quantize] if quantize else []))
    _write_runtime_files(pipeline.config, model_dir, output, {kind: graphs[kind] for kind in kinds})
    return output


def _example_sources(pipeline: Pipeline) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sources of different lengths to trace with: ids within any vocabulary, in two fields
    of different lengths where the vocabulary has <sep> (the field-match feature must not trace
    the separator's position as a constant); for speech frames of noise, long enough for any
    subsampler."""
    if pipeline.source.vocab is None:
        frames = torch.randn(2, 41, pipeline.source.input_size, generator=torch.Generator().manual_seed(0))
        return frames, torch.tensor([41, 33])
    separator = separator_id(pipeline.source.vocab)
    if separator is not None:
        return _two_fields(separator), torch.tensor([7, 4])
    src = torch.tensor([[4, 5, 6, 7, 8], [9, 4, 5, 0, 0]]).clamp(max=len(pipeline.source.vocab) - 1)
    return src, torch.tensor([5, 3])


def _two_fields(separator: int) -> torch.Tensor:
    """Two sources of "question <sep> paragraph", of 7 and 4 tokens, the second padded."""
    return torch.tensor([[4, 5, separator, 6, 4, 7, 8], [9, separator, 5, 9, 0, 0, 0]])


class ReaderGraph(nn.Module):
    """src, src_lengths -> log P_start, log P_end (batch, 2, src_len) of a pointer reader."""

    def __init__(self, reader: PointerReader) -> None:
        super().__init__()
        self.reader = reader

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.reader.boundary_logits(src, src_lengths), dim=-1)


def _export_reader(reader: PointerReader, separator: int | None, path: Path) -> None:
    """Export the reader's graph, traced on two sources of "question <sep> paragraph" whose
    fields differ in length (the separator's position must not be traced as a constant)."""
    if separator is None:
        raise ConfigError("a pointer reader's source vocabulary has no <sep>: it cannot be exported")
    src = _two_fields(separator)
    axes = {
        "src": {0: "batch", 1: "src_len"},
        "src_lengths": {0: "batch"},
        "log_probs": {0: "batch", 2: "src_len"},
    }
    inputs = (src, torch.tensor([7, 4]))
    _export(ReaderGraph(reader), inputs, path, ["src", "src_lengths"], ["log_probs"], axes)


def _export_encoder(
    model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, path: Path
) -> list[torch.Tensor]:
    """Export the encoder graph; returns its outputs for the example."""
    encoder = EncoderGraph(model)
    names = [*source_entries(model), *state_names(model), *ctc_names(model)]
    axes = {name: _axes(name, model, "batch") for name in names}
    # a speech model's frames are subsampled: its entries have fewer positions than it has frames
    length = "frames" if src.is_floating_point() else "src_len"
    inputs = {"src": {0: "batch", 1: length}, "src_lengths": {0: "batch"}}
    _export(encoder, (src, src_lengths), path, list(inputs), names, {**inputs, **axes})
    with torch.no_grad():
        return list(encoder(src, src_lengths))


def _axes(name: str, model: Seq2Seq, first: str) -> dict[int, str]:
    """The dynamic axes of a tensor the graphs exchange: the first (batch, sources or rows), the
    source length of the source entries, the steps of a Transformer's cache."""
    if name.startswith(("state_", "next_state_")) and isinstance(model.decoder, TransformerDecoder):
        return {0: first, 2: "steps"}  # rows, heads, steps, d_k
    if name.endswith(("_coverage", "_previous")):
        return {0: first, 1: "src_len"}  # rows, src_len
    if name == "keys" and isinstance(model.decoder, TransformerDecoder):
        return {0: first, 4: "src_len"}  # sources, layers, 2, heads, src_len, d_k
    return {0: first, 1: "src_len"} if name in POSITIONAL else {0: first}


def _export_step(model: Seq2Seq, encoded: list[torch.Tensor], src: torch.Tensor, path: Path) -> None:
    """Export the step graph, traced with 2 rows per source (as beam search has k per source),
    from the state after one step (a cache of one position: its length must not be traced as 0);
    ``encoded``: the encoder graph's outputs for ``src``."""
    entries, inputs, states = source_entries(model), step_inputs(model), state_names(model)
    sources = encoded[0].size(0)
    from_source = encoded[: len(entries)]
    if model.copy_gate is not None:  # src's ids, with an unknown word (extended id) at position 2
        vocab = model.output_layer.out_features
        from_source.append(src.clamp(max=vocab - 1).index_fill(1, torch.tensor([2]), vocab))
    initial = encoded[len(entries) : len(entries) + len(states)]  # not the CTC head's outputs after it
    state = [t.repeat_interleave(2, dim=0) for t in initial]
    prev = torch.full((2 * sources,), 2)  # <sos>
    with torch.no_grad():
        state = list(StepGraph(model)(prev, *from_source, *state)[-len(states) :])
    heads = ["log_probs", "attention"] if "mask" in entries else ["log_probs"]  # mask: attention
    next_states = [f"next_{name}" for name in states]
    by_row = {0: "rows"}
    axes = {
        "prev_tokens": by_row,
        **{name: _axes(name, model, "sources") for name in inputs},
        **{name: _axes(name, model, "rows") for name in [*states, *next_states]},
        # a copying model's vocabulary is extended by the source's length
        "log_probs": by_row if model.copy_gate is None else {0: "rows", 1: "vocab"},
        "attention": {0: "rows", 1: "src_len"},
    }
    axes = {name: axis for name, axis in axes.items() if name != "attention" or "attention" in heads}
    names, outputs = ["prev_tokens", *inputs, *states], [*heads, *next_states]
    _export(StepGraph(model), (prev, *from_source, *state), path, names, outputs, axes)


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-level shape arithmetic
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _write_top_k(path: Path) -> None:
    """A one-node graph for beam search's top k over the vocabulary: onnxruntime's TopK is
    several times faster than numpy's argpartition there (8k pieces: 8.5 ms a step)."""
    from onnx import TensorProto, helper, save

    rows = helper.make_tensor_value_info("values", TensorProto.FLOAT, ["rows", "vocab"])
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [1])
    values = helper.make_tensor_value_info("top_values", TensorProto.FLOAT, ["rows", "k"])
    indices = helper.make_tensor_value_info("top_indices", TensorProto.INT64, ["rows", "k"])
    node = helper.make_node("TopK", ["values", "k"], ["top_values", "top_indices"], axis=-1, largest=1)
    graph = helper.make_graph([node], "top_k", [rows, k], [values, indices])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), str(path))


def _quantize(source: Path, target: Path) -> None:
    """int8 weights for the matmuls, RNNs and embeddings; activations quantized per call."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise Seq2SeqError("--quantize int8 needs onnxruntime: pip install 'seq2seqkit[onnx]'") from None
    logging.disable(logging.WARNING)  # its advice to pre-process, printed through the root logger
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def _write_runtime_files(
    config: Config, model_dir: Path, output: Path, graphs: dict[str, tuple[str, ...]]
) -> None:
    """Vocabularies, tokenizer models, config, runtime.json and runtime.py beside the graphs."""
    for path in model_dir.iterdir():
        if path.name.endswith(("_vocab.txt", ".spm.model", "_cmvn.json")) or path.name == checkpoint.CONFIG:
            shutil.copyfile(path, output / path.name)
    decoding, audio = config.decoding, config.data.audio
    settings = {
        "source": config.data.source,  # text, or audio
        "audio": {
            "sample_rate": audio.sample_rate,
            "bins": audio.num_mel_bins,
            "frame_ms": audio.frame_length_ms,
            "shift_ms": audio.frame_shift_ms,
            "normalization": audio.normalization,
        },
        "src_tokenizer": config.data.src_tokenizer.type,
        "tgt_tokenizer": config.data.tgt_tokenizer.type,
        "output": config.model.decoder.output,  # vocabulary, or pointer: a reader's spans
        "graphs": graphs,
        **({} if config.model.decoder.output == "pointer" else {"top_k": TOP_K}),
        "decoding": {
            "beam_size": decoding.beam_size,
            "length_penalty": decoding.length_penalty,
            "max_length_ratio": decoding.max_length_ratio,
            "max_length_offset": decoding.max_length_offset,
            "min_output_len": decoding.min_output_len,
            "max_output_len": decoding.max_output_len,
            "batch_tokens": decoding.batch_tokens,
            "max_input_len": decoding.max_input_len,
            "window": config.data.long_sources == "window",
            "max_answer_words": decoding.max_answer_words,
            "span_constrained": decoding.span_constrained,  # outputs: spans of the last field
            "method": decoding.method,  # attention, joint (CTC prefix scores) or ctc_greedy
            "ctc_weight": decoding.ctc_weight,
            "ctc_candidates": CTC_CANDIDATES,
            # shallow fusion: the language model exported into LM_DIRECTORY, and its weight
            "lm": LM_DIRECTORY if decoding.lm else "",
            "lm_weight": decoding.lm_weight,
        },
    }
    (output / "runtime.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(Path(__file__).with_name("runtime.py"), output / "runtime.py")
