"""Decoding a pointer reader: the best span of whole words of each source's paragraph.

The answer (i, j) maximises log P_start(i) + log P_end(j) over i <= j where a word starts at i,
one ends at j, and the span holds at most ``max_words`` words (DrQA's decoding, Chen et al., 2017,
on word boundaries). Sources go in length-sorted batches within a token budget, as in
``generate.py``; results come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from seq2seqkit.data.batching import Features, collate, pad, token_batches
from seq2seqkit.model.reader import PointerReader


class Span(NamedTuple):
    """The answer's first and last source positions and its log-probability; with ``read_spans``
    also the reader's boundaries (2, source length): P_start and P_end of each position."""

    start: int
    end: int
    score: float
    boundaries: torch.Tensor | None = None


def best_spans(
    log_probs: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, max_words: int
) -> list[Span | None]:
    """log_probs (batch, 2, S) of the start and end; starts, ends (batch, S) bool word edges ->
    each row's best span, or None where no word can be an answer."""
    word = starts.long().cumsum(1)  # the word number of each position
    first, last = log_probs[:, 0], log_probs[:, 1]
    scores = first.masked_fill(~starts, float("-inf")).unsqueeze(2) + last.masked_fill(
        ~ends, float("-inf")
    ).unsqueeze(1)  # (batch, i, j)
    length = word.unsqueeze(1) - word.unsqueeze(2)  # words after i's, up to j
    allowed = (length >= 0) & (length < max_words) & torch.ones_like(scores, dtype=torch.bool).triu()
    scores = scores.masked_fill(~allowed, float("-inf")).flatten(1)
    best, index = scores.max(dim=1)
    size = log_probs.size(-1)
    return [
        Span(int(i) // size, int(i) % size, float(s)) if s > float("-inf") else None
        for s, i in zip(best.tolist(), index.tolist(), strict=True)
    ]


def read_spans(
    model: PointerReader,
    sources: Sequence[Features],
    edges: Sequence[tuple[list[bool], list[bool]]],
    max_words: int = 15,
    batch_tokens: int = 8000,
) -> list[Span | None]:
    """The best span of each source (ids of "question <sep> paragraph") by the pointer reader
    ``model``, whose word edges (starts, ends) are in ``edges``; None for an empty source."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[Span | None] = [None] * len(sources)
    todo = [i for i, src in enumerate(sources) if len(src) > 0]
    lengths = [len(sources[i]) for i in todo]
    with torch.inference_mode():
        for positions in token_batches(lengths, lengths, batch_tokens):
            indices = [todo[p] for p in positions]
            batch = collate([sources[i] for i in indices], None, indices)
            logits = model.boundary_logits(batch.src.to(device), batch.src_lengths.to(device))
            starts = pad([[int(b) for b in edges[i][0]] for i in indices], 0).bool().to(device)
            ends = pad([[int(b) for b in edges[i][1]] for i in indices], 0).bool().to(device)
            log_probs = torch.log_softmax(logits, dim=-1)
            found = best_spans(log_probs, starts, ends, max_words)
            for row, (i, span) in enumerate(zip(indices, found, strict=True)):
                boundaries = log_probs[row, :, : len(sources[i])].exp().cpu()
                results[i] = None if span is None else span._replace(boundaries=boundaries)
    model.train(was_training)
    return results
