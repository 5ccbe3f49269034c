"""Dropout as a module (Srivastava et al., 2014), drawing its masks through the kernel switch."""

from __future__ import annotations

import torch
from torch import nn

from seq2seqkit.kernels import PLAIN, Ops


class Dropout(nn.Module):
    """``nn.Dropout`` with the mask drawn by ``ops.dropout``: identity in eval mode or at p = 0."""

    def __init__(self, p: float, ops: Ops = PLAIN) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.drop = ops.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return self.drop(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
