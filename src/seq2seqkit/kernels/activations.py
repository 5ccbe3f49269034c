"""tanh through the sigmoid: tanh(x) = 2 sigmoid(2x) - 1.

``torch.tanh`` runs through MKL's vector math library, which on this AMD CPU takes 6x longer than
PyTorch's own sigmoid kernel (0.58 vs 0.09 ms for 1,450 x 256 floats, measured).
"""

from __future__ import annotations

import torch


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x), computed in float32: a bfloat16 sigmoid near 0.5 would leave 2s - 1 steps of 2^-7,
    where tanh itself keeps bfloat16's relative precision near 0."""
    return (torch.sigmoid(x.float() * 2) * 2 - 1).to(x.dtype)


def tanh_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``tanh`` written into ``out`` (same dtype as x)."""
    return torch.sigmoid(x * 2, out=out).mul_(2).sub_(1)
