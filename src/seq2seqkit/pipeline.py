"""Text in, text out: a trained network with its tokenizers and vocabularies (the public model).

model = seq2seqkit.load("runs/g2p")
outputs = model.generate(["hello"], beam=5)
outputs[0].text, outputs[0].score, outputs[0].hypotheses[0].attention

A speech model takes audio file paths, or arrays of samples with their rate:
seq2seqkit.load("runs/asr-an4").generate([waveform], sample_rate=16000)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seq2seqkit import checkpoint
from seq2seqkit.build import load_featurizers, model_for
from seq2seqkit.config import Config, config_from_dict
from seq2seqkit.data.audio import AudioInput, Waveform
from seq2seqkit.data.batching import collate
from seq2seqkit.data.featurizers import (
    Encoded,
    SourceFeaturizer,
    TextFeaturizer,
    context_start,
    shorten,
    tagged,
)
from seq2seqkit.data.vocab import UNK_ID
from seq2seqkit.decoding.fusion import Fusion
from seq2seqkit.decoding.generate import generate_ids
from seq2seqkit.decoding.search import Hypothesis as SearchHypothesis
from seq2seqkit.decoding.search import Sampler, Span
from seq2seqkit.decoding.span import read_spans
from seq2seqkit.device import autocast_dtype, resolve_device
from seq2seqkit.errors import ConfigError, ModelFileError
from seq2seqkit.model.ensemble import Ensemble
from seq2seqkit.model.reader import Network, PointerReader
from seq2seqkit.model.seq2seq import Seq2Seq

log = logging.getLogger(__name__)


@dataclass
class Hypothesis:
    """One output: detokenized text, its tokens, total log-probability, attention (output
    tokens + <eos>, source tokens) or None, and for a copying model asked for them the
    generation probabilities p_gen per output token + <eos> (1 - p_gen went to copying). A
    pointer reader's "attention" is its boundaries (2, source tokens): P_start and P_end."""

    text: str
    tokens: list[str]
    score: float
    attention: torch.Tensor | None
    copy_gate: torch.Tensor | None = None


@dataclass
class Output:
    """The n-best hypotheses for one input, best first."""

    source_tokens: list[str]
    hypotheses: list[Hypothesis]

    @property
    def text(self) -> str:
        return self.hypotheses[0].text

    @property
    def score(self) -> float:
        return self.hypotheses[0].score


class Pipeline:
    """A Seq2Seq network plus what turns its inputs into features and its output ids into text."""

    def __init__(
        self, config: Config, model: Network, source: SourceFeaturizer, target: TextFeaturizer
    ) -> None:
        self.config = config
        self.model = model
        self.source = source
        self.target = target
        self.truncated = 0  # inputs cut to decoding.max_input_len so far
        self.ensemble: Ensemble | None = None  # generate with these networks together (``ensemble``)
        self._language_model: tuple[str, Seq2Seq] | None = None  # decoding.lm, loaded: (path, network)

    def encode_source(self, text: str | AudioInput, tag: str = "") -> Encoded:
        """Features of one input (after the token ``tag``, one of the model's training tags, if
        given), cut to decoding.max_input_len positions; the first cut is logged, the rest counted
        in ``truncated`` (a test set's long lines should not flood the console)."""
        encoded = self.source.encode(text)  # type: ignore[arg-type]  # audio for an audio featurizer
        if tag:
            if tag not in self.config.data.tags or self.source.vocab is None:
                known = ", ".join(self.config.data.tags) or "none"
                raise ConfigError(f"tag {tag!r}: not one of this model's training tags ({known})")
            encoded = tagged(encoded, tag, self.source.vocab)
        limit = self.config.decoding.max_input_len
        if len(encoded.features) > limit:
            self.truncated += 1
            if self.truncated == 1:
                log.warning(
                    "input of %d tokens truncated to %d (decoding.max_input_len, data.long_sources "
                    "%s); further truncations are counted",
                    len(encoded.features),
                    limit,
                    self.config.data.long_sources,
                )
            encoded = shorten(encoded, limit, window=self.config.data.long_sources == "window")
        return encoded

    def set_decoding(self, **changes: Any) -> None:
        """Change decoding settings (e.g. precision="bfloat16") for this session; the model
        directory is not touched. Unknown or invalid settings raise ConfigError."""
        raw = self.config.to_dict()
        raw["decoding"].update(changes)
        self.config = config_from_dict(raw, source="decoding settings")

    def generate(
        self,
        texts: Sequence[str | AudioInput | Any],
        beam: int | None = None,
        nbest: int = 1,
        length_penalty: float | None = None,
        batch_tokens: int | None = None,
        copy_gates: bool = False,
        sample_rate: int | None = None,
        sampler: Sampler | None = None,
        tag: str = "",
    ) -> list[Output]:
        """Outputs for ``texts``, in order. Defaults come from the config's decoding section.
        ``copy_gates``: also each hypothesis's p_gen per step (a copying model; for pictures).
        A speech model reads audio file paths, or 1-D arrays of samples at ``sample_rate`` Hz.
        ``sampler``: draw each output (beam 1) instead of searching for the best; ``tag``: put
        this training tag (data.extra_train) before each input."""
        decoding = self.config.decoding
        if sampler is not None:
            self._check_sampling()
        device = next(self.model.parameters()).device
        sources = [self.encode_source(_as_audio(text, sample_rate), tag) for text in texts]
        if isinstance(self.model, PointerReader):
            return self._read(self.model, sources, batch_tokens or decoding.batch_tokens)
        # a copying model: each source's ids over the target vocabulary extended by its unknown words
        copying = self.model.copy_gate is not None
        no_extension: tuple[list[int], list[str]] = ([], [])
        extended = [self.target.vocab.encode_extended(s.labels) if copying else no_extension for s in sources]
        found = generate_ids(
            self.ensemble or self.model,
            [source.features for source in sources],
            beam_size=1 if sampler is not None else beam or decoding.beam_size,
            nbest=nbest,
            length_penalty=decoding.length_penalty if length_penalty is None else length_penalty,
            coverage_penalty=decoding.coverage_penalty,
            max_length_ratio=decoding.max_length_ratio,
            max_length_offset=decoding.max_length_offset,
            min_length=decoding.min_output_len,
            max_length=decoding.max_output_len,
            batch_tokens=batch_tokens or decoding.batch_tokens,
            dtype=autocast_dtype(device, decoding.precision),
            extended_ids=[ids for ids, _ in extended] if copying else None,
            block_ngram_repeat=decoding.block_ngram_repeat,
            spans=[self._span(s, ids) for s, (ids, _) in zip(sources, extended, strict=True)]
            if decoding.span_constrained
            else None,
            method=decoding.method,
            ctc_weight=decoding.ctc_weight,
            sampler=sampler,
            fusion=self.fusion(),
        )
        return self._outputs(sources, extended, found, copying and copy_gates)

    def _check_sampling(self) -> None:
        """Sampling draws from a generating model's attention decoder."""
        if isinstance(self.model, PointerReader):
            raise ConfigError("a pointer reader picks the best span of its paragraph; it does not sample")
        method = self.config.decoding.method
        if method != "attention":
            raise ConfigError(f"sampling draws from the attention decoder, not decoding.method {method!r}")
        if self.config.decoding.lm:
            raise ConfigError("sampling draws from the model alone: no language model (decoding.lm)")

    def fusion(self) -> Fusion | None:
        """decoding.lm's language model with its weight (loaded once, on the model's device), or None.
        It must be a language model over this model's own target tokenizer and vocabulary."""
        path = self.config.decoding.lm
        if not path:
            return None
        if self._language_model is None or self._language_model[0] != path:
            lm = load(path, device=str(next(self.model.parameters()).device))
            if lm.config.task != "language_model":
                raise ConfigError(
                    f"decoding.lm: {path} is a model of task {lm.config.task!r}, not a language model"
                )
            if lm.target.files("tgt") != self.target.files("tgt"):
                raise ConfigError(
                    f"decoding.lm: {path} has another target vocabulary or tokenizer than this model "
                    f"({len(lm.target.vocab)} against {len(self.target.vocab)} tokens): train it on "
                    "this model's targets with the same tgt_tokenizer"
                )
            assert isinstance(lm.model, Seq2Seq)
            self._language_model = (path, lm.model)
        return Fusion(self._language_model[1], self.config.decoding.lm_weight)

    def _outputs(
        self,
        sources: list[Encoded],
        extended: list[tuple[list[int], list[str]]],
        found: list[list[SearchHypothesis]],
        with_gates: bool,
    ) -> list[Output]:
        """The hypotheses as text (ids past the vocabulary are the source's unknown words), with a
        copying model's p_gen per step where asked."""
        outputs = []
        for source, (_, unknown), hyps in zip(sources, extended, found, strict=True):
            gates = self._copy_gates(source, [hyp.token_ids for hyp in hyps]) if with_gates else None
            converted = []
            for index, hyp in enumerate(hyps):
                tokens, text = self.target.decode(hyp.token_ids, unknown)
                gate = None if gates is None else gates[index, : len(hyp.token_ids) + 1]
                converted.append(Hypothesis(text, tokens, hyp.score, hyp.attention, gate))
            outputs.append(Output(source.labels, converted))
        return outputs

    def _read(self, reader: PointerReader, sources: list[Encoded], batch_tokens: int) -> list[Output]:
        """A pointer reader's outputs: the best span of each paragraph, as the paragraph's own text
        of it (one hypothesis each)."""
        assert isinstance(self.source, TextFeaturizer), "a pointer reader reads text"
        tokenizer = self.source.tokenizer
        edges = [tokenizer.word_edges(source.labels) for source in sources]
        features = [source.features for source in sources]
        spans = read_spans(reader, features, edges, self.config.decoding.max_answer_words, batch_tokens)
        outputs = []
        for source, span in zip(sources, spans, strict=True):
            tokens = [] if span is None else source.labels[span.start : span.end + 1]
            score, boundaries = (0.0, None) if span is None else (span.score, span.boundaries)
            outputs.append(
                Output(source.labels, [Hypothesis(tokenizer.decode(tokens), tokens, score, boundaries)])
            )
        return outputs

    def _span(self, source: Encoded, extended_ids: list[int]) -> Span:
        """Where an output may come from: the last field (a question's context), whole words; each
        position's id over the output vocabulary there, else -1 (a copying model's extended ids
        name every word, a shared vocabulary all but the unknown ones)."""
        labels = source.labels
        first = context_start(labels)
        ids = extended_ids if self.model.copy_gate is not None else self.target.vocab.encode(labels)
        assert isinstance(self.source, TextFeaturizer), "span-constrained decoding needs text sources"
        starts, ends = self.source.tokenizer.word_edges(labels)
        return Span(
            [-1 if index < first or ids[index] == UNK_ID else ids[index] for index in range(len(labels))],
            starts,
            ends,
        )

    @torch.no_grad()
    def _copy_gates(self, source: Encoded, outputs: list[list[int]]) -> torch.Tensor | None:
        """p_gen (len(outputs), steps) of each output of one source, re-read by teacher forcing
        (the same states the search went through); copied ids are read back as <unk>, as in search."""
        if not outputs or not len(source.features):
            return None
        known = len(self.target.vocab)
        device = next(self.model.parameters()).device
        plain = [[i if i < known else UNK_ID for i in ids] for ids in outputs]
        batch = collate([source.features] * len(outputs), plain, range(len(outputs)))
        was_training = self.model.training
        self.model.eval()
        gate = self.model(
            batch.src.to(device), batch.src_lengths.to(device), batch.tgt_in.to(device)
        ).copy_gate
        self.model.train(was_training)
        assert gate is not None
        return gate.float().cpu()

    def save(self, directory: Path) -> None:
        """Config, tokenizers, vocabularies and weights into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        checkpoint.save_config(directory, self.config)
        checkpoint.save_format(directory)
        files = {**self.source.files("src"), **self.target.files("tgt")}
        for name, data in files.items():
            checkpoint.atomic_write(directory / name, data)
        checkpoint.write_checksums(directory, [checkpoint.CONFIG, checkpoint.FORMAT, *files])
        checkpoint.save_weights(directory / checkpoint.WEIGHTS, self.model)


def _as_audio(source: Any, sample_rate: int | None) -> str | AudioInput:
    """A text or path as it is; an array of samples as a ``Waveform`` at ``sample_rate``."""
    if isinstance(source, (str, Path, Waveform)):
        return source
    if sample_rate is None:
        raise ValueError("generate(): pass sample_rate= with arrays of audio samples")
    return Waveform(source.numpy() if isinstance(source, torch.Tensor) else source, sample_rate)


def load(directory: str | Path, weights: str | Path | None = None, device: str = "auto") -> Pipeline:
    """Load a model directory (never unpickles anything) onto ``device`` (auto: a GPU when CUDA is
    available, else the CPU; wherever it was trained); ``weights`` picks another weights file."""
    directory = Path(directory)
    target_device = resolve_device(device)
    checkpoint.check_model_dir(directory)
    checkpoint.verify_checksums(directory)  # first: a damaged config is damage, not a wrong setting
    config = checkpoint.load_config_from_dir(directory)
    try:
        source, target = load_featurizers(config.data, directory)
    except FileNotFoundError as err:
        raise ModelFileError(f"{err.filename}: missing from the model directory") from None
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{directory}: damaged tokenizer or vocabulary ({err})") from None
    pipeline = Pipeline(
        config,
        model_for(config.model, source, target, target_device),
        source,
        target,
    )
    checkpoint.load_weights(Path(weights) if weights else directory / checkpoint.WEIGHTS, pipeline.model)
    pipeline.model.eval()
    return pipeline


def ensemble(pipelines: Sequence[Pipeline]) -> Pipeline:
    """Several trained models of one task as one (``model/ensemble.py``): the first one's config
    and featurizers, the mean of all their next-token probabilities. They must read and write
    through the same tokenizers and vocabularies (e.g. runs of one recipe with different seeds)."""
    first = pipelines[0]
    files = {**first.source.files("src"), **first.target.files("tgt")}
    if any({**p.source.files("src"), **p.target.files("tgt")} != files for p in pipelines[1:]):
        raise ConfigError("an ensemble's models need identical tokenizers and vocabularies")
    models = [p.model for p in pipelines if isinstance(p.model, Seq2Seq)]
    if len(models) < len(pipelines) or any(p.ensemble is not None for p in pipelines):
        raise ConfigError("an ensemble takes encoder-decoders: no pointer readers, no nested ensembles")
    if len({model.copy_gate is None for model in models}) > 1:
        raise ConfigError("an ensemble's models must all copy (pointer-generators) or none")
    method = first.config.decoding.method
    if method not in ("attention", "joint"):
        raise ConfigError(f"an ensemble decodes with decoding.method attention or joint, not {method}")
    if method == "joint" and any(model.ctc_head is None for model in models):
        raise ConfigError("joint decoding of an ensemble needs a CTC head in every model")
    pipeline = Pipeline(first.config, first.model, first.source, first.target)
    pipeline.ensemble = Ensemble(models)
    return pipeline
