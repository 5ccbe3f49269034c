"""The output layer fused with the label-smoothed cross-entropy (Szegedy et al., 2016), a slice of
tokens at a time: each slice's logits (tokens x vocabulary) are computed, turned into the loss and,
while they are still in the cache, into their gradient, then dropped. The whole batch's logits,
their log-softmax and the gradients of both (four tensors of ~2,000 x 8,000 floats for the matched
en-de model) never exist at once: less memory and less memory traffic than ``F.cross_entropy`` on
full logits, with the same result (tests/unit/test_kernels.py compares the two).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

SLICE_LOGITS = 2**23  # logits per slice: with their log-softmax 48-64 MB, measured best on a 2-core AMD EPYC


def output_cross_entropy(
    features: torch.Tensor, output_layer: nn.Linear, gold: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of ``output_layer(features)`` (tokens, vocab) against ``gold`` (tokens,),
    as ``F.cross_entropy(..., label_smoothing=label_smoothing)`` computes it."""
    return _OutputCrossEntropy.apply(
        features, output_layer.weight, output_layer.bias, gold, label_smoothing, torch.is_grad_enabled()
    )


class _OutputCrossEntropy(torch.autograd.Function):
    """Loss and gradients in one pass over slices of tokens; backward only scales the gradients.

    With smoothing eps over V classes and log-probabilities l = log_softmax(z), the loss of a token
    is -(1 - eps) * l_gold - eps * mean(l), and its gradient with respect to the logits z is
    softmax(z) - (1 - eps) * onehot(gold) - eps / V. The constant -eps / V part is applied after
    the matmuls, where it is a sum of rows (of the weight for the features, of the features for
    the weight): the per-slice work is the log-softmax, one exp and the matmuls.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        features: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        gold: torch.Tensor,
        eps: float,
        with_gradients: bool,
    ) -> torch.Tensor:
        full = weight.dtype  # softmax and sums; the matmuls run in ``low`` under autocast
        device = features.device
        low = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else full
        tokens, vocab = features.size(0), weight.size(0)
        x, w = features.to(low), weight.to(low)
        b = torch.zeros(vocab, dtype=low, device=device) if bias is None else bias.to(low)
        step = max(1, SLICE_LOGITS // vocab)
        logits = x.new_empty(min(step, tokens), vocab)  # reused by every slice, then as its gradient
        log_probs = weight.new_empty(logits.shape)
        if with_gradients:
            d_x, d_w, d_b = (
                torch.empty_like(x),
                torch.zeros_like(weight),
                torch.zeros(vocab, dtype=full, device=device),
            )
        total = torch.zeros((), dtype=full, device=device)
        with torch.autocast(device.type, enabled=False):
            # mean_v z_v of every token from one matvec, instead of a pass over its logits
            w_sum = w.to(full).sum(0)
            mean_logits = (x.to(full) @ w_sum + b.to(full).sum()) / vocab
            for start in range(0, tokens, step):
                xs, gs = x[start : start + step], gold[start : start + step, None]
                z = torch.addmm(b, xs, w.t(), out=logits[: xs.size(0)])
                lp = log_probs[: xs.size(0)]
                torch.log_softmax(lp.copy_(z), dim=-1, out=lp)  # in place, row by row
                lp_gold = lp.gather(1, gs).squeeze(1)
                log_normalizer = z.gather(1, gs).squeeze(1).to(full) - lp_gold
                mean_lp = mean_logits[start : start + step] - log_normalizer
                total -= ((1 - eps) * lp_gold + eps * mean_lp).sum()
                if with_gradients:
                    grad = z.copy_(lp.exp_())  # softmax, rounded once into the low dtype
                    grad.scatter_(1, gs, (lp_gold.exp() - (1 - eps)).to(low).unsqueeze(1))
                    d_b += grad.sum(0, dtype=full)
                    torch.mm(grad, w, out=d_x[start : start + step])
                    d_w += torch.mm(grad.t(), xs)
            if with_gradients:
                # the -eps / V in every logit's gradient, summed over the vocabulary or the tokens
                d_x_full = d_x.to(full) - eps / vocab * w_sum
                d_w -= eps / vocab * x.to(full).sum(0)
                d_b -= eps / vocab * tokens
                ctx.save_for_backward(d_x_full, d_w, None if bias is None else d_b)
        ctx.tokens, ctx.features_dtype = tokens, features.dtype
        return total / tokens

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        d_x, d_w, d_b = ctx.saved_tensors
        scale = grad_loss / ctx.tokens
        d_b = None if d_b is None else d_b * scale
        return (d_x * scale).to(ctx.features_dtype), d_w * scale, d_b, None, None, None
