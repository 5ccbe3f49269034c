"""Greedy search, and beam search over (batch x beam) tensors held by a small ``Beams`` class.

Search talks to the model only through ``encode``, ``init_state``, ``step`` and the state's
``select``; it never asks which kind of model it runs. With beam size 1, beam search returns
exactly what greedy search returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.data.vocab import EOS_ID, PAD_ID, SOS_ID
from seq2seq.model.seq2seq import Seq2Seq


@dataclass
class Hypothesis:
    """token_ids: output ids without <eos>; score: sum of log-probabilities (<eos> included);
    attention: (len(token_ids) + 1, src_len) weights per output step (the last is for <eos>),
    or None for a model without attention."""

    token_ids: list[int]
    score: float
    attention: torch.Tensor | None


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """((5 + |Y|) / 6) ** alpha (Wu et al., 2016); alpha 0 ranks by raw log-probability."""
    return ((5.0 + length.float()) / 6.0) ** alpha


@torch.inference_mode()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, max_lengths: torch.Tensor
) -> list[Hypothesis]:
    """The most probable next token at every step, for a batch; stops at <eos> or max length."""
    batch = src.size(0)
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    prev = torch.full((batch,), SOS_ID, dtype=torch.long)
    scores = torch.zeros(batch)
    lengths = torch.zeros(batch, dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    outputs, attention = [], []
    for step in range(int(max_lengths.max())):
        log_probs, state, attn = model.step(prev, enc, state)
        log_probs = _allowed(log_probs.float(), at_limit=(step + 1 >= max_lengths) & ~finished)
        best, token = log_probs.max(dim=-1)
        token = token.masked_fill(finished, PAD_ID)
        scores += best.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        finished |= token == EOS_ID
        outputs.append(token)
        if attn is not None:
            attention.append(attn.float())
        prev = token
        if finished.all():
            break
    tokens = torch.stack(outputs, dim=1)
    stacked = torch.stack(attention, dim=1) if attention else None  # (B, T, S)
    return [
        _hypothesis(tokens[b], int(lengths[b]), float(scores[b]), stacked, b, int(src_lengths[b]))
        for b in range(batch)
    ]


def _allowed(log_probs: torch.Tensor, at_limit: torch.Tensor) -> torch.Tensor:
    """Never <pad> or <sos>; only <eos> where a hypothesis reached its maximum length."""
    log_probs[..., PAD_ID] = float("-inf")
    log_probs[..., SOS_ID] = float("-inf")
    if at_limit.any():
        eos = log_probs[at_limit][..., EOS_ID].clone()
        log_probs[at_limit] = float("-inf")
        log_probs[..., EOS_ID][at_limit] = eos
    return log_probs


def _hypothesis(
    tokens: torch.Tensor, length: int, score: float, attention: torch.Tensor | None, *index: int
) -> Hypothesis:
    """Cut one row of the search's tensors to its real length (``index`` = row..., src_len)."""
    *row, src_len = index
    ids = [t for t in tokens[:length].tolist() if t != EOS_ID]
    attn = None if attention is None else attention[tuple(row)][:length, :src_len]
    return Hypothesis(ids, score, attn)


class Beams:
    """The hypotheses of a batch's beams, as (batch, beam) tensors.

    A finished hypothesis stays in its beam, extended by padding at no cost, until every beam of
    the batch is done; ranking by length-penalized score happens only at the end.
    """

    def __init__(self, batch: int, beam_size: int, max_lengths: torch.Tensor) -> None:
        self.batch, self.k = batch, beam_size
        self.max_lengths = max_lengths.repeat_interleave(beam_size).view(batch, beam_size)
        self.scores = torch.full((batch, beam_size), float("-inf"))
        self.scores[:, 0] = 0.0  # at the start all beams hold the same hypothesis: keep one
        self.tokens = torch.full((batch, beam_size, 0), PAD_ID, dtype=torch.long)
        self.lengths = torch.zeros(batch, beam_size, dtype=torch.long)  # <eos> included
        self.finished = torch.zeros(batch, beam_size, dtype=torch.bool)
        self.attention: torch.Tensor | None = None  # (batch, beam, steps, src_len)
        self.offsets = torch.arange(batch).unsqueeze(1) * beam_size  # first row of each source

    @property
    def done(self) -> bool:
        return bool(self.finished.all())

    def advance(
        self, step: int, log_probs: torch.Tensor, attn: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extend every beam by its best k continuations (log_probs: (B*K, V)).

        Returns the rows (B*K,) of the previous state each new hypothesis continues, and the
        new last tokens (B*K,).
        """
        b, k = self.batch, self.k
        vocab = log_probs.size(-1)
        log_probs = log_probs.float().view(b, k, vocab)
        log_probs = _allowed(log_probs, at_limit=(step + 1 >= self.max_lengths) & ~self.finished)
        done_row = torch.full((vocab,), float("-inf"))
        done_row[PAD_ID] = 0.0
        log_probs[self.finished] = done_row

        candidates = (self.scores.unsqueeze(-1) + log_probs).view(b, k * vocab)
        self.scores, flat = candidates.topk(k, dim=-1)  # (B, K)
        origin, token = flat // vocab, flat % vocab

        was_finished = self.finished.gather(1, origin)
        history = self.tokens.gather(1, origin.unsqueeze(-1).expand_as(self.tokens))
        self.tokens = torch.cat([history, token.unsqueeze(-1)], dim=-1)
        self.lengths = self.lengths.gather(1, origin) + (~was_finished).long()
        self.finished = was_finished | (token == EOS_ID)
        if attn is not None:  # rows follow their hypotheses' origins
            step_attn = attn.float().view(b, k, 1, -1)
            joined = step_attn if self.attention is None else torch.cat([self.attention, step_attn], 2)
            self.attention = joined.gather(1, origin[..., None, None].expand_as(joined))
        return (self.offsets + origin).view(-1), token.view(-1)

    def best(self, alpha: float, nbest: int, src_lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """The ``nbest`` hypotheses of each source by score / length_penalty(alpha)."""
        ranked = self.scores / length_penalty(self.lengths, alpha)
        order = ranked.argsort(dim=-1, descending=True)[:, :nbest]
        # a short source may allow fewer than nbest hypotheses: never return the impossible ones
        possible = self.scores.gather(1, order) > float("-inf")
        possible[:, 0] = True
        return [
            [
                _hypothesis(
                    self.tokens[b, j],
                    int(self.lengths[b, j]),
                    float(self.scores[b, j]),
                    self.attention,
                    b,
                    j,
                    int(src_lengths[b]),
                )  # fmt: skip
                for j, ok in zip(order[b].tolist(), possible[b].tolist(), strict=True)
                if ok
            ]
            for b in range(self.batch)
        ]


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_lengths: torch.Tensor,
    beam_size: int,
    alpha: float = 0.0,
    nbest: int = 1,
) -> list[list[Hypothesis]]:
    """The ``nbest`` best hypotheses of each source (batch, src_len), best first."""
    batch = src.size(0)
    enc = model.encode(src, src_lengths)
    enc = enc.select(torch.arange(batch).repeat_interleave(beam_size))  # B*K rows
    state = model.init_state(enc)
    beams = Beams(batch, beam_size, max_lengths)
    prev = torch.full((batch * beam_size,), SOS_ID, dtype=torch.long)
    for step in range(int(max_lengths.max())):
        log_probs, state, attn = model.step(prev, enc, state)
        rows, prev = beams.advance(step, log_probs, attn)
        state = state.select(rows)
        if beams.done:
            break
    return beams.best(alpha, nbest, src_lengths)
