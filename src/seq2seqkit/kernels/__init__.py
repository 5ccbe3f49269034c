"""CPU speed kernels behind one switch: the same arithmetic as the plain PyTorch the model is
written in, in fewer or cheaper calls. Each is tested against the plain path (tests/unit/test_kernels.py)
and measured (docs/speed.md).

``Ops`` is the switch: a model built with ``FAST`` calls these kernels where it would call plain
PyTorch with ``PLAIN``. ``build.py`` picks ``FAST`` where they pay (today: the CPU); the model
code reads the same either way (``self.ops.tanh(...)``).

- ``activations.tanh``: tanh as 2 sigmoid(2x) - 1 (MKL's tanh is 6x slower on AMD CPUs);
- ``dropout.dropout``: masks from 64-bit random integers (4x fewer draws than ``bernoulli_``);
- ``input_feeding.input_feeding_lstm``: teacher forcing through the input-feeding LSTM decoder
  with its backward pass through time written out;
- ``output_loss.output_cross_entropy``: the output layer fused with the label-smoothed loss, a
  slice of tokens at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from seq2seqkit.kernels import activations, dropout, input_feeding, output_loss


def _plain_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    return F.dropout(x, p, training=True)


@dataclass(frozen=True)
class Ops:
    """The operations that have a kernel. ``dropout(x, p)`` always drops (callers check training).
    Where a kernel is None the plain path runs: the decoder's step loop for teacher forcing with
    input feeding, ``training/loss.py``'s cross-entropy on full logits."""

    name: str
    tanh: Callable[[torch.Tensor], torch.Tensor]
    dropout: Callable[[torch.Tensor, float], torch.Tensor]
    input_feeding_lstm: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None
    output_cross_entropy: Callable[..., torch.Tensor] | None


PLAIN = Ops("plain", torch.tanh, _plain_dropout, None, None)
FAST = Ops(
    "fast",
    activations.tanh,
    dropout.dropout,
    input_feeding.input_feeding_lstm,
    output_loss.output_cross_entropy,
)


def ops_for(device: torch.device | str) -> Ops:
    """FAST on the CPU, where the kernels were written and measured; PLAIN elsewhere."""
    return FAST if torch.device(device).type == "cpu" else PLAIN
