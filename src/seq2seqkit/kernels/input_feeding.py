"""Teacher forcing through the LSTM decoder with Luong attention and input feeding, with the
backward pass through time written out.

With input feeding (Luong et al., 2015) each step reads the previous step's attentional vector
h~_{t-1}, so teacher forcing cannot be one fused RNN call; it is a loop of small steps. Left to
autograd, every step also computes the gradient of every weight from its own batch rows (small
matmuls whose results are then summed over the steps) and pays the engine's bookkeeping for about
a hundred small operations. Here the loop runs forward and backward explicitly, as cuDNN and
oneDNN do for a plain LSTM: going backward through time carries only the gradients of the states,
and each weight's gradient comes at the end from one matmul over all steps (docs/speed.md has
the figures).

The equations are those of ``RecurrentDecoder.step`` for an LSTM with "dot" or "general"
attention; a test checks that both give the same features and gradients. The LSTM's and the
combination's matmuls run in the autocast dtype when autocast is on (bfloat16 here); attention,
the cell states and the nonlinearities in float32, as in ``attention.py``. The attention weights
it returns carry no gradient: no loss reads them (a loss on attention would need ``forward_steps``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seq2seqkit.kernels.activations import tanh_into
from seq2seqkit.kernels.dropout import dropout_mask


def input_feeding_lstm(
    embedded: torch.Tensor,
    hidden: tuple[torch.Tensor, torch.Tensor],
    rnn: nn.LSTM,
    keys: torch.Tensor,
    memory: torch.Tensor,
    mask: torch.Tensor,
    combine: nn.Linear,
    dropout: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the decoder over all target positions.

    embedded: (batch, tgt_len, emb) decoder inputs (dropout already applied); hidden: the initial
    (h, c), each (layers, batch, H); keys (batch, src_len, H) and memory (batch, src_len, M) of the
    attention; mask (batch, src_len), True = real token. Dropout ``dropout`` (when > 0) applies
    between layers and to the attentional vectors, as in ``RecurrentDecoder.step``.
    Returns the attentional vectors (batch, tgt_len, F) and attention weights (batch, tgt_len, src_len).
    """
    assert combine.bias is None, "the combination h~ = tanh(W [h; c]) has no bias"
    device = embedded.device
    autocast = torch.is_autocast_enabled(device.type)
    dtype = torch.get_autocast_dtype(device.type) if autocast else embedded.dtype
    layers, hidden_size, emb = rnn.num_layers, rnn.hidden_size, embedded.size(-1)
    steps, batch = embedded.size(1), embedded.size(0)
    param = rnn.get_parameter
    # layer 0 reads [embedding; feed]: the embedding half for all steps in one matmul
    w_ih0 = param("weight_ih_l0")
    projected = F.linear(embedded, w_ih0[:, :emb], param("bias_ih_l0") + param("bias_hh_l0")).float()
    # each layer's step is one matmul: [input; h_{t-1}] @ [W_ih; W_hh]^T
    weights = [torch.cat([w_ih0[:, emb:], param("weight_hh_l0")], dim=1)]
    biases = []
    for layer in range(1, layers):
        weights.append(torch.cat([param(f"weight_ih_l{layer}"), param(f"weight_hh_l{layer}")], dim=1))
        biases.append(param(f"bias_ih_l{layer}") + param(f"bias_hh_l{layer}"))
    feature_size = combine.out_features
    feature_mask = layer_mask = None
    if dropout > 0:
        feature_mask = dropout_mask((steps, batch, feature_size), dropout, device=device)
        if layers > 1:
            layer_mask = dropout_mask((layers - 1, steps, batch, hidden_size), dropout, device=device)
    score_bias = torch.zeros(mask.shape, device=device).masked_fill(~mask, float("-inf"))
    features, attention = _InputFeedingLSTM.apply(
        dtype, projected, hidden[0].float(), hidden[1].float(), keys.float(), memory.float(), score_bias,
        combine.weight, feature_mask, layer_mask, *weights, *biases,
    )  # fmt: skip
    return features.transpose(0, 1), attention.transpose(0, 1)


class _InputFeedingLSTM(torch.autograd.Function):
    """Buffers are time-major, (steps, batch, ...), so that each step's slice is contiguous."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        dtype: torch.dtype,
        projected: torch.Tensor,  # (batch, steps, 4H): layer 0's embedding part, biases included
        h0: torch.Tensor,  # (layers, batch, H)
        c0: torch.Tensor,
        keys: torch.Tensor,  # (batch, src_len, H)
        memory: torch.Tensor,  # (batch, src_len, M)
        score_bias: torch.Tensor,  # (batch, src_len): 0 or -inf at padding
        combine_weight: torch.Tensor,  # (F, H + M)
        feature_mask: torch.Tensor | None,  # (steps, batch, F)
        layer_mask: torch.Tensor | None,  # (layers - 1, steps, batch, H)
        *weights_and_biases: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        layers, state = h0.size(0), projected.dtype  # matmuls in dtype, the rest in state
        weights = [w.to(dtype) for w in weights_and_biases[:layers]]
        biases = weights_and_biases[layers:]
        batch, steps, gates = projected.shape
        H, M, src_len = gates // 4, memory.size(2), memory.size(1)
        combine = combine_weight.to(dtype)
        feature_size = combine.size(0)
        new = projected.new_empty
        inputs = [new(steps, batch, w.size(1), dtype=dtype) for w in weights]  # [x_t; h_{t-1}] per layer
        acts = [new(steps, batch, gates) for _ in range(layers)]  # i, f, g, o after their nonlinearity
        cells = [new(steps + 1, batch, H) for _ in range(layers)]  # c_{-1} .. c_{T-1}
        cell_tanh = [new(steps, batch, H) for _ in range(layers)]
        combined = new(steps, batch, H + M, dtype=dtype)  # [h_t; context_t] of the top layer
        feature_tanh = new(steps, batch, feature_size)
        attention = new(steps, batch, src_len)
        features = new(steps, batch, feature_size)
        for layer in range(layers):
            cells[layer][0] = c0[layer]
            inputs[layer][0, :, -H:] = h0[layer]
        inputs[0][0, :, :feature_size] = 0  # no attentional vector before the first step
        keys_t = keys.transpose(1, 2)
        projected = projected.transpose(0, 1).contiguous()
        h = h0[0]  # the output of the layer below, set before it is read
        with torch.autocast(projected.device.type, enabled=False):
            for t in range(steps):
                for layer in range(layers):
                    if layer > 0:
                        below = inputs[layer][t, :, :H]
                        if layer_mask is None:
                            below.copy_(h)
                        else:
                            torch.mul(h, layer_mask[layer - 1, t], out=below)
                    bias = projected[t] if layer == 0 else biases[layer - 1]
                    a = torch.mm(inputs[layer][t], weights[layer].t()).to(state).add_(bias)
                    act = acts[layer][t]
                    a[:, 2 * H : 3 * H] *= 2  # tanh(x) = 2 sigmoid(2x) - 1, as activations.tanh
                    torch.sigmoid(a, out=act)
                    act[:, 2 * H : 3 * H].mul_(2).sub_(1)
                    i, f, g, o = act.chunk(4, dim=1)
                    c = torch.mul(f, cells[layer][t], out=cells[layer][t + 1]).addcmul_(i, g)
                    h = o * tanh_into(c, out=cell_tanh[layer][t])
                    if t + 1 < steps:
                        inputs[layer][t + 1, :, -H:] = h
                # Luong attention from the top layer's output, then h~_t = tanh(W [h_t; c_t])
                combined[t, :, :H] = h
                scores = torch.bmm(h.unsqueeze(1), keys_t).squeeze(1).add_(score_bias)
                weights_t = torch.softmax(scores, dim=-1, out=attention[t])
                combined[t, :, H:] = torch.bmm(weights_t.unsqueeze(1), memory).squeeze(1)
                y = tanh_into(torch.mm(combined[t], combine.t()).to(state), out=feature_tanh[t])
                feature = features[t]
                if feature_mask is None:
                    feature.copy_(y)
                else:
                    torch.mul(y, feature_mask[t], out=feature)
                if t + 1 < steps:
                    inputs[0][t + 1, :, :feature_size] = feature  # input feeding
        ctx.save_for_backward(keys, memory, feature_mask, layer_mask, *weights)
        ctx.buffers = (inputs, acts, cells, cell_tanh, combined, feature_tanh, attention, combine)
        ctx.mark_non_differentiable(attention)
        return features, attention

    @staticmethod
    def backward(ctx: Any, grad_features: torch.Tensor, _: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        keys, memory, feature_mask, layer_mask, *weights = ctx.saved_tensors
        grad_features = grad_features.contiguous()
        inputs, acts, cells, cell_tanh, combined, feature_tanh, attention, combine = ctx.buffers
        layers, dtype, state = len(weights), combine.dtype, grad_features.dtype
        steps, batch, feature_size = grad_features.shape
        H = acts[0].size(2) // 4
        new = grad_features.new_empty
        d_gates = [new(steps, batch, 4 * H, dtype=dtype) for _ in range(layers)]  # dL/da per layer
        d_combine_out = new(steps, batch, feature_size, dtype=dtype)  # dL/d(W [h; c]) before tanh
        d_context = new(steps, batch, memory.size(2))
        d_scores = new(steps, batch, memory.size(1))
        d_h = [grad_features.new_zeros(batch, H) for _ in range(layers)]  # from step t + 1
        d_c = [grad_features.new_zeros(batch, H) for _ in range(layers)]
        d_feed = None
        memory_t = memory.transpose(1, 2)
        with torch.autocast(grad_features.device.type, enabled=False):
            for t in reversed(range(steps)):
                d_y = grad_features[t] if d_feed is None else grad_features[t] + d_feed
                if feature_mask is not None:
                    d_y = d_y * feature_mask[t]
                y = feature_tanh[t]
                d_z = torch.addcmul(d_y, d_y * y, y, value=-1.0, out=d_combine_out[t])  # tanh'
                d_combined = torch.mm(d_z, combine).to(state)
                d_top, d_ctx = d_combined[:, :H], d_combined[:, H:]
                d_context[t] = d_ctx
                weights_t = attention[t]
                d_weights = torch.bmm(d_ctx.unsqueeze(1), memory_t).squeeze(1)
                d_s = d_weights.sub_((weights_t * d_weights).sum(-1, keepdim=True)).mul_(weights_t)
                d_scores[t] = d_s
                d_out = d_top.add_(torch.bmm(d_s.unsqueeze(1), keys).squeeze(1))
                for layer in reversed(range(layers)):
                    d_out = d_out.add_(d_h[layer])
                    i, f, g, o = acts[layer][t].chunk(4, dim=1)
                    tc = cell_tanh[layer][t]
                    d_cell = torch.addcmul(d_c[layer], d_out * o, 1 - tc * tc)
                    d_a = d_gates[layer][t]
                    torch.mul(d_cell * g, i * (1 - i), out=d_a[:, :H])
                    torch.mul(d_cell * cells[layer][t], f * (1 - f), out=d_a[:, H : 2 * H])
                    torch.mul(d_cell * i, 1 - g * g, out=d_a[:, 2 * H : 3 * H])
                    torch.mul(d_out * tc, o * (1 - o), out=d_a[:, 3 * H :])
                    d_c[layer] = d_cell.mul_(f)
                    d_input = torch.mm(d_a, weights[layer]).to(state)  # d[x_t; h_{t-1}]
                    d_h[layer] = d_input[:, -H:]
                    if layer > 0:
                        d_out = d_input[:, :H]
                        if layer_mask is not None:
                            d_out = d_out.mul_(layer_mask[layer - 1, t])
                    else:
                        d_feed = d_input[:, :feature_size]
            # every weight's gradient from all steps at once
            d_weights_all = [
                torch.mm(d_gates[layer].flatten(0, 1).t(), inputs[layer].flatten(0, 1)).to(state)
                for layer in range(layers)
            ]
            d_biases = [d_gates[layer].to(state).sum((0, 1)) for layer in range(1, layers)]
            d_combine = torch.mm(d_combine_out.flatten(0, 1).t(), combined.flatten(0, 1)).to(state)
            d_memory = torch.bmm(attention.permute(1, 2, 0), d_context.transpose(0, 1))
            queries = combined[:, :, :H].to(state).transpose(0, 1)  # (batch, steps, H)
            d_keys = torch.bmm(d_scores.permute(1, 2, 0), queries)
        d_projected = d_gates[0].to(state).transpose(0, 1)
        return (
            None, d_projected, torch.stack(d_h), torch.stack(d_c), d_keys, d_memory, None, d_combine,
            None, None, *d_weights_all, *d_biases,
        )  # fmt: skip
