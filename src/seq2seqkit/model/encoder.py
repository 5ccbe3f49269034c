"""The recurrent encoder: frontend (token embedding) -> (bi)LSTM/GRU over a padded batch -> memory
and context.

The context vector is the c = q(h_1..h_T) of the classic encoder-decoder (Cho et al., 2014;
Sutskever et al., 2014): the last state, or mean or max pooling over the outputs.

Each layer and direction is its own single-layer RNN run over the padded batch, with the backward
direction reading every sequence reversed within its own length. This gives the same result as
packed sequences, but on CPU an LSTM over a padded batch runs as one fused oneDNN call while a packed
one falls back to a Python-level loop over time steps (about 10x slower, forward plus backward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from seq2seqkit.kernels import PLAIN, Ops
from seq2seqkit.model.dropout import Dropout
from seq2seqkit.model.frontends import Frontend
from seq2seqkit.model.rnn import RNNType, make_rnn

Pooling = Literal["last", "mean", "max"]


@dataclass
class EncoderOutput:
    """What the decoder reads from the source.

    memory: (batch, src_len, memory_size), zero at padding.
    mask: (batch, src_len) bool, True = real token.
    context: (batch, memory_size), the fixed-size summary c.
    keys: attention keys precomputed from memory, or None without attention.
    extended_ids: (batch, src_len) the source tokens' ids in the target vocabulary extended by the
    source's own unknown words (a copying model), or None.
    """

    memory: torch.Tensor
    mask: torch.Tensor
    context: torch.Tensor
    keys: torch.Tensor | None = None
    extended_ids: torch.Tensor | None = None

    def context_for(self, rows: int) -> torch.Tensor:
        """The context vector of each of ``rows`` decoder rows (rows, memory_size): in beam search
        a group of rows / batch consecutive rows (a source's hypotheses) shares one entry."""
        return _per_row(self.context, rows)

    def extended_ids_for(self, rows: int) -> torch.Tensor:
        """``extended_ids`` of each of ``rows`` decoder rows, grouped as in ``context_for``."""
        assert self.extended_ids is not None, "a copying model needs the source's extended ids"
        return _per_row(self.extended_ids, rows)

    def select(self, indices: torch.Tensor) -> EncoderOutput:
        """Rows ``indices`` of the batch (used to expand or reorder for beam search)."""
        return EncoderOutput(
            memory=self.memory.index_select(0, indices),
            mask=self.mask.index_select(0, indices),
            context=self.context.index_select(0, indices),
            keys=None if self.keys is None else self.keys.index_select(0, indices),
            extended_ids=None if self.extended_ids is None else self.extended_ids.index_select(0, indices),
        )


def _per_row(entries: torch.Tensor, rows: int) -> torch.Tensor:
    """``entries`` (sources, ...) for ``rows`` rows, each source's entry repeated for its group of
    rows / sources consecutive rows; the tensor itself when each source has one row."""
    group = rows // entries.size(0)
    return entries if group == 1 else entries.repeat_interleave(group, dim=0)


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` positions of x (batch, time, ...), leaving padding
    in place; applying it twice gives x back."""
    positions = torch.arange(x.size(1), device=x.device)[None, :]
    index = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
    return x.gather(1, index.view(*index.shape, *[1] * (x.dim() - 2)).expand_as(x))


class RecurrentEncoder(nn.Module):
    """Frontend + multi-layer (bi)directional RNN over a padded batch."""

    def __init__(
        self,
        *,
        frontend: Frontend,
        hidden_size: int,
        num_layers: int,
        rnn_type: RNNType,
        bidirectional: bool,
        dropout: float,
        pooling: Pooling,
        ops: Ops = PLAIN,
    ) -> None:
        super().__init__()
        self.embedding = frontend
        self.dropout = Dropout(dropout, ops)
        self.pooling = pooling
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        input_sizes = [frontend.output_size] + [self.output_size] * (num_layers - 1)
        self.forward_rnns = nn.ModuleList(
            make_rnn(rnn_type, size, hidden_size, 1, 0.0) for size in input_sizes
        )
        self.backward_rnns = nn.ModuleList(
            make_rnn(rnn_type, size, hidden_size, 1, 0.0) for size in input_sizes if bidirectional
        )

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (batch, src_len) token ids or (batch, src_len, features) floats, src_lengths
        (batch,) -> EncoderOutput over the frontend's output positions."""
        x = self.dropout(self.embedding(src))
        lengths = self.embedding.output_lengths(src_lengths.to(src.device))
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]
        for i, forward_rnn in enumerate(self.forward_rnns):
            if i > 0:
                x = self.dropout(x)  # between layers, as nn.LSTM's own dropout
            outputs = [forward_rnn(x)[0]]
            if self.backward_rnns:
                backward, _ = self.backward_rnns[i](reverse_within_lengths(x, lengths))
                outputs.append(reverse_within_lengths(backward, lengths))
            x = torch.cat(outputs, dim=-1)
        # padding positions hold states computed from padding: zero them (the memory's contract)
        memory = self.dropout(x * mask.unsqueeze(-1).to(x.dtype))
        return EncoderOutput(memory=memory, mask=mask, context=self._pool(x, mask, lengths))

    def _pool(self, outputs: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The context vector c = q(h_1..h_T) from the top layer's outputs, shape (batch, output_size)."""
        if self.pooling == "mean":
            summed = (outputs * mask.unsqueeze(-1)).sum(1)
            return summed / mask.sum(1, keepdim=True).clamp(min=1)
        if self.pooling == "max":
            return outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
        # last state: the forward direction ends at the last real token, the backward one at the first
        hidden = outputs.size(-1) // self.num_directions
        last = (lengths - 1).clamp(min=0)
        forward_last = outputs[torch.arange(outputs.size(0), device=outputs.device), last, :hidden]
        if self.num_directions == 1:
            return forward_last
        return torch.cat([forward_last, outputs[:, 0, hidden:]], dim=-1)


class NoSource(nn.Module):
    """The encoder of a language model (``model.decoder.context: none``): it reads nothing, and
    gives each row one empty memory position and a zero context vector c, so that the decoder's
    initial state tanh(W c + b) = tanh(b) is learned, the same for every output: p(y) instead of
    p(y | x)."""

    output_size = 1

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """Any src (batch, ...) -> EncoderOutput of batch rows that holds nothing from it."""
        batch = src.size(0)
        memory = torch.zeros(batch, 1, self.output_size, device=src.device)
        mask = torch.ones(batch, 1, dtype=torch.bool, device=src.device)
        return EncoderOutput(memory=memory, mask=mask, context=memory[:, 0])
