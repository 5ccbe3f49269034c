"""Generation for many inputs: length-sorted batches within a token budget, results in input order."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from seq2seqkit.data.batching import Batch, Features, collate, token_batches
from seq2seqkit.decoding.ctc import CTCPrefixScorer, ctc_greedy_search, ctc_rescore
from seq2seqkit.decoding.fusion import Fusion, LanguageModelScorer
from seq2seqkit.decoding.search import (
    Hypothesis,
    PrefixScorer,
    Sampler,
    Scorers,
    SourceSpans,
    Span,
    beam_search,
    greedy_search,
)
from seq2seqkit.errors import ConfigError
from seq2seqkit.model.encoder import EncoderOutput
from seq2seqkit.model.ensemble import Ensemble
from seq2seqkit.model.seq2seq import Seq2Seq

CTC_CANDIDATES = 32  # next tokens per hypothesis that joint decoding scores with CTC, at least


def generate_ids(
    model: Seq2Seq | Ensemble,
    sources: Sequence[Features],
    *,
    beam_size: int = 1,
    nbest: int = 1,
    length_penalty: float = 0.0,
    coverage_penalty: float = 0.0,
    max_length_ratio: float = 2.0,
    max_length_offset: int = 10,
    min_length: int = 0,
    max_length: int = 0,
    batch_tokens: int = 8000,
    dtype: torch.dtype | None = None,
    extended_ids: Sequence[Sequence[int]] | None = None,
    block_ngram_repeat: int = 0,
    spans: Sequence[Span] | None = None,
    method: str = "attention",
    ctc_weight: float = 0.3,
    sampler: Sampler | None = None,
    fusion: Fusion | None = None,
) -> list[list[Hypothesis]]:
    """The n-best hypotheses for each source (ids, or frames x features), in input order.

    With ``dtype`` (bfloat16, or float16 on a GPU) matmuls run in it (a copy of the weights, autocast
    for the activations); scores and cell states stay float32. ``extended_ids``: each source's ids
    over a copying model's extended vocabulary. An empty source gets one empty hypothesis, score 0.
    Output length, <eos> included, is capped at ceil(max_length_ratio * source length) +
    max_length_offset, and at ``max_length`` + 1 when that is set; <eos> comes after at least
    ``min_length`` tokens (within the cap); with ``block_ngram_repeat`` n > 0 no output holds the
    same n-gram twice; with ``spans`` (one per source) outputs are spans of whole words of the
    source. Beam search ranks by score / length penalty + coverage penalty (Wu et al., 2016);
    ``method`` (``decoding/ctc.py``): "attention", "ctc_greedy", "joint" (CTC prefix scores,
    ``ctc_weight``) or "rescore" (the n-best re-ranked); a ``sampler`` draws each token instead;
    ``fusion``: a language model's weighted log-probabilities join the search's scores."""
    if nbest > beam_size:
        raise ValueError(f"nbest ({nbest}) cannot exceed the beam size ({beam_size})")
    original, was_training = model, model.training
    device = next(model.parameters()).device
    model = _for_inference(model, dtype)
    fusion = None if fusion is None else fusion.for_inference(dtype)
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0, None)] for _ in sources]
    search = (beam_size, (length_penalty, coverage_penalty), nbest, (method, ctc_weight))
    todo = [i for i, src in enumerate(sources) if len(src) > 0]
    lengths = [len(sources[i]) for i in todo]
    # the budget counts source tokens whatever the beam: hypotheses share their source's memory, and
    # wide batches keep beam search's matmuls large (matched en-de beam 5: 2.93 s, 3.33 s at 1/5)
    for batch_positions in token_batches(lengths, lengths, batch_tokens):
        indices = [todo[p] for p in batch_positions]
        extended = None if extended_ids is None else ([extended_ids[i] for i in indices], None)
        batch = collate([sources[i] for i in indices], None, indices, extended)
        limits = [math.ceil(max_length_ratio * len(sources[i])) + max_length_offset for i in indices]
        allowed = None if spans is None else SourceSpans.of([spans[i] for i in indices], device)
        bounds = Bounds(_max_lengths(limits, max_length, model), min_length, block_ngram_repeat, allowed)
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            found = _decode(model, batch, bounds, *search, sampler=sampler, fusion=fusion)
        for i, hyps in zip(indices, found, strict=True):
            results[i] = hyps
    original.train(was_training)
    return results


def _for_inference(model: Seq2Seq | Ensemble, dtype: torch.dtype | None) -> Seq2Seq | Ensemble:
    """The model in evaluation mode, as a copy cast to ``dtype`` if given: cast once, because
    under inference mode autocast casts every weight at every step."""
    model.eval()
    return model if dtype is None else copy.deepcopy(model).to(dtype)


def _max_lengths(limits: list[int], max_length: int, model: Seq2Seq | Ensemble) -> torch.Tensor:
    """Each output's length limit, <eos> included: its own, within ``max_length`` + 1 if set and
    within the model's positions where they end (learned positions)."""
    if max_length:
        limits = [min(limit, max_length + 1) for limit in limits]
    if model.max_output_positions is not None:
        limits = [min(limit, model.max_output_positions) for limit in limits]
    return torch.tensor(limits, device=next(model.parameters()).device).clamp(min=1)


class Bounds(NamedTuple):
    """What every output of a batch must satisfy."""

    max_lengths: torch.Tensor  # (batch,) <eos> included
    min_length: int
    block_ngram_repeat: int
    spans: SourceSpans | None  # outputs are spans of the source


def _decode(
    model: Seq2Seq | Ensemble,
    batch: Batch,
    bounds: Bounds,
    beam_size: int,
    penalties: tuple[float, float],
    nbest: int,
    ctc: tuple[str, float],
    sampler: Sampler | None = None,
    fusion: Fusion | None = None,
) -> list[list[Hypothesis]]:
    """One batch decoded by ``ctc``'s method (and joint decoding's CTC weight), with ``fusion``'s
    language model in the search."""
    method, ctc_weight = ctc
    if sampler is not None and (beam_size > 1 or method != "attention" or fusion is not None):
        raise ValueError("sampling draws one output per source: beam size 1, method 'attention', no LM")
    device = bounds.max_lengths.device
    lm = None if fusion is None else _fused(fusion, batch.src.size(0), device)
    if method == "attention":
        return _search(model, batch, bounds, beam_size, penalties, nbest, lm, sampler=sampler)
    if method == "joint":
        # CTC scores for the decoder's best candidates only (ESPnet's pre-beam): every character
        # of a character vocabulary, the best 2 x beam of a large one; an ensemble's encoding
        # (Members) gives the mean of its members' CTC distributions
        def scorer_for(enc: Any, rows_per_source: int) -> CTCPrefixScorer:
            log_probs, candidates = model.ctc_log_probs(enc), max(CTC_CANDIDATES, 2 * beam_size)
            return CTCPrefixScorer(log_probs, enc.mask.sum(1), rows_per_source, ctc_weight, candidates)

        with_lm = scorer_for if lm is None else _chained(scorer_for, lm)
        return _search(model, batch, bounds, beam_size, penalties, nbest, with_lm)
    if not isinstance(model, Seq2Seq):
        raise ConfigError(f"decoding.method {method} decodes one network, not an ensemble")
    if method == "ctc_greedy":
        return [[h] for h in ctc_greedy_search(model, batch.src.to(device), batch.src_lengths.to(device))]
    found = _search(model, batch, bounds, beam_size, penalties, beam_size, lm)  # the whole beam, rescored
    rescored = ctc_rescore(model, batch.src.to(device), batch.src_lengths.to(device), found, ctc_weight)
    return [hyps[:nbest] for hyps in rescored]


ScorerFor = Callable[[EncoderOutput, int], PrefixScorer]  # (encoding, rows per source) -> scorer


def _fused(fusion: Fusion, sources: int, device: torch.device) -> ScorerFor:
    """The language model's scorer for a search over ``sources`` sources."""
    return lambda enc, rows_per_source: LanguageModelScorer(fusion, sources * rows_per_source, device)


def _chained(first: ScorerFor, then: ScorerFor) -> ScorerFor:
    """Both scorers, ``then`` reading what ``first`` gave."""
    return lambda enc, rows_per_source: Scorers([first(enc, rows_per_source), then(enc, rows_per_source)])


def _search(
    model: Seq2Seq | Ensemble,
    batch: Batch,
    bounds: Bounds,
    beam_size: int,
    penalties: tuple[float, float],
    nbest: int,
    scorer_for: ScorerFor | None = None,
    sampler: Sampler | None = None,
) -> list[list[Hypothesis]]:
    """Greedy (beam 1) or beam search over one batch, on the device of the maximum lengths;
    penalties: the length and coverage penalties' alpha and beta; ``scorer_for``: a prefix
    scorer's joint scores rank the hypotheses (beam search, whose beam 1 is greedy search);
    ``sampler``: greedy search draws each token instead."""
    max_lengths, min_length, block, spans = bounds
    device = max_lengths.device
    src, src_lengths = batch.src.to(device), batch.src_lengths.to(device)
    extended = None if batch.src_extended is None else batch.src_extended.to(device)
    if beam_size == 1 and scorer_for is None:
        found = greedy_search(
            model, src, src_lengths, max_lengths, min_length, extended, block, spans, sampler
        )
        return [[h] for h in found]
    return beam_search(
        model,
        src,
        src_lengths,
        max_lengths,
        beam_size,
        penalties[0],
        nbest,
        min_length,
        extended,
        block,
        penalties[1],
        spans,
        scorer_for,
    )
