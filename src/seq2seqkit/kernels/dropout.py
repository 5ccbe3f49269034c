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

LANES = 65536  # values of a 16-bit lane


def dropout_mask(
    shape: tuple[int, ...],
    p: float,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A tensor of ``shape`` holding 0 with probability p and 1/(1-p) otherwise."""
    n = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device)
    lanes = words.view(torch.int16)[:n].view(shape)  # uniform over -32768..32767
    dropped = round(p * LANES)
    return (lanes >= dropped - LANES // 2).to(dtype).mul_(LANES / (LANES - dropped))


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """x with each element zeroed with probability p, the rest scaled by 1/(1-p)."""
    return x * dropout_mask(tuple(x.shape), p, x.dtype, x.device)
