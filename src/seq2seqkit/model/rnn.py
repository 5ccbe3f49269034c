"""RNN building blocks: constructing a batch-first LSTM/GRU, and running one time step of it.

``rnn_step`` computes one step with the nn.LSTM / nn.GRU's own parameters as explicit cell
equations. On CPU, calling the module itself for a single step costs a fused-kernel launch whose
backward is several times slower than these few small matmuls and pointwise ops; the step loop
(input feeding, Bahdanau attention, decoding) runs thousands of such steps per batch.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seq2seqkit.kernels import PLAIN, Ops

RNNType = Literal["lstm", "gru"]
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


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


def rnn_step(
    rnn: nn.LSTM | nn.GRU, x: torch.Tensor, hidden: Hidden, ops: Ops = PLAIN
) -> tuple[torch.Tensor, Hidden]:
    """One time step of a unidirectional ``rnn``: x (batch, input) and hidden as the module takes
    it ((layers, batch, H), or the (h, c) pair for an LSTM) -> (top output (batch, H), new hidden).

    Same result as ``rnn(x.unsqueeze(1), hidden)``, dropout between layers included; tanh and the
    dropout masks come from ``ops`` (the kernel switch). The gates are summed in float32 so that
    bfloat16 autocast never rounds the recurrent state."""
    tanh = ops.tanh
    lstm = isinstance(rnn, nn.LSTM)
    # unbind, not indexing: the backward of h[layer] would zero-fill the whole stack each time
    h_all = (hidden[0] if isinstance(hidden, tuple) else hidden).unbind(0)
    c_all = hidden[1].unbind(0) if isinstance(hidden, tuple) else ()
    new_h, new_c = [], []
    for layer in range(rnn.num_layers):
        if layer > 0 and rnn.training and rnn.dropout > 0:
            x = ops.dropout(x, rnn.dropout)
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        gi = F.linear(x, w_ih, getattr(rnn, f"bias_ih_l{layer}")).float()
        gh = F.linear(h_all[layer], w_hh, getattr(rnn, f"bias_hh_l{layer}")).float()
        if lstm:
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c_all[layer].float() + torch.sigmoid(i) * tanh(g)
            h = torch.sigmoid(o) * tanh(c)
            new_c.append(c)
        else:  # GRU: r resets the hidden contribution to the candidate n
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h_all[layer].float()
        new_h.append(h)
        x = h
    h_stack = torch.stack(new_h)
    return x, ((h_stack, torch.stack(new_c)) if lstm else h_stack)
