"""The recurrent encoder: embeddings -> (bi)LSTM/GRU over packed sequences -> memory and context.

The context vector is the c = q(h_1..h_T) of the classic encoder-decoder (Cho et al., 2014;
Sutskever et al., 2014): the last state, or mean or max pooling over the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNNType = Literal["lstm", "gru"]
Pooling = Literal["last", "mean", "max"]


def make_rnn(
    rnn_type: RNNType,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool = False,
) -> nn.LSTM | nn.GRU:
    """A batch-first LSTM or GRU; dropout applies between layers only."""
    rnn_class = nn.LSTM if rnn_type == "lstm" else nn.GRU
    return rnn_class(
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
    )


@dataclass
class EncoderOutput:
    """What the decoder reads from the source.

    memory: (batch, src_len, memory_size), zero at padding.
    mask: (batch, src_len) bool, True = real token.
    context: (batch, memory_size), the fixed-size summary c.
    keys: attention keys precomputed from memory, or None without attention.
    """

    memory: torch.Tensor
    mask: torch.Tensor
    context: torch.Tensor
    keys: torch.Tensor | None = None

    def select(self, indices: torch.Tensor) -> EncoderOutput:
        """Rows ``indices`` of the batch (used to expand or reorder for beam search)."""
        return EncoderOutput(
            memory=self.memory.index_select(0, indices),
            mask=self.mask.index_select(0, indices),
            context=self.context.index_select(0, indices),
            keys=None if self.keys is None else self.keys.index_select(0, indices),
        )


class RecurrentEncoder(nn.Module):
    """Embedding + multi-layer (bi)directional RNN over a padded batch."""

    def __init__(
        self,
        *,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        rnn_type: RNNType,
        bidirectional: bool,
        dropout: float,
        pooling: Pooling,
        pad_id: int,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(rnn_type, embedding_size, hidden_size, num_layers, dropout, bidirectional)
        self.pooling = pooling
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (batch, src_len) token ids, src_lengths (batch,) -> EncoderOutput."""
        mask = torch.arange(src.size(1), device=src.device)[None, :] < src_lengths[:, None]
        embedded = self.dropout(self.embedding(src))
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        memory = self.dropout(memory)
        return EncoderOutput(memory=memory, mask=mask, context=self._pool(memory, mask, final))

    def _pool(self, memory: torch.Tensor, mask: torch.Tensor, final: torch.Tensor | tuple) -> torch.Tensor:
        """The context vector c = q(h_1..h_T), shape (batch, output_size)."""
        if self.pooling == "mean":
            summed = (memory * mask.unsqueeze(-1)).sum(1)
            return summed / mask.sum(1, keepdim=True).clamp(min=1)
        if self.pooling == "max":
            return memory.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
        hidden = final[0] if isinstance(final, tuple) else final  # (layers * dirs, B, H)
        top = hidden[-self.num_directions :]  # the top layer's final state in each direction
        return torch.cat(list(top), dim=-1)
