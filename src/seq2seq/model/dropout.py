"""Dropout (Srivastava et al., 2014) with masks drawn from 64-bit random integers.

``torch.nn.Dropout`` on CPU draws one random number per element through ``bernoulli_``, about
7 ns each here: for the matched en-de model's ~3.6M dropped-or-kept activations per training
batch that was ~25 ms a step. One 64-bit random integer gives four 16-bit lanes, so the same mask
costs a quarter of the draws (4.3x faster for a 35 x 68 x 256 mask, measured). The drop
probability is rounded to a multiple of 1/65536, and kept values are scaled by the exact inverse
of the resulting keep probability, so the expectation is unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LANES = 65536  # values of a 16-bit lane


def dropout_mask(shape: tuple[int, ...], p: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A tensor of ``shape`` holding 0 with probability p and 1/(1-p) otherwise."""
    n = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    lanes = words.view(torch.int16)[:n].view(shape)  # uniform over -32768..32767
    dropped = round(p * LANES)
    return (lanes >= dropped - LANES // 2).to(dtype).mul_(LANES / (LANES - dropped))


class Dropout(nn.Module):
    """Drop-in for ``nn.Dropout``: identity in eval mode or at p = 0."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * dropout_mask(tuple(x.shape), self.p, x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"
