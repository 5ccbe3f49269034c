"""Encoder frontends: what turns a padded source batch into the vectors the encoder RNN reads.

A frontend maps ``src`` (batch, src_len, ...) to (batch, time, output_size) and says how source
lengths map to output lengths (a subsampler for audio frames shortens them; an embedding does
not). The encoder holds its frontend as ``embedding``, as ESPnet holds its subsampler as
``encoder.embed``, so a text model's weights keep their names.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class Frontend(Protocol):
    @property
    def output_size(self) -> int: ...

    def __call__(self, src: torch.Tensor) -> torch.Tensor: ...
    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor: ...


class TokenEmbedding(nn.Embedding):
    """Token ids (batch, src_len) -> embeddings (batch, src_len, embedding_size); <pad> embeds to 0."""

    def __init__(self, vocab_size: int, embedding_size: int, pad_id: int) -> None:
        super().__init__(vocab_size, embedding_size, padding_idx=pad_id)

    @property
    def output_size(self) -> int:
        return self.embedding_dim

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths
