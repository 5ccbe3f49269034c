"""The sliced output layer + cross-entropy gives F.cross_entropy's loss and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2seq.training import loss as loss_module
from seq2seq.training.loss import output_cross_entropy


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("slice_logits", [2**23, 200])  # one slice, or 4 tokens of 50 at a time
def test_equals_cross_entropy_on_full_logits(
    label_smoothing: float, slice_logits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loss_module, "SLICE_LOGITS", slice_logits)
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 50)
    features = torch.randn(37, 16, requires_grad=True)
    gold = torch.randint(0, 50, (37,))
    results = []
    for ours in (False, True):
        layer.zero_grad()
        features.grad = None
        if ours:
            loss = output_cross_entropy(features, layer, gold, label_smoothing)
        else:
            loss = F.cross_entropy(layer(features), gold, label_smoothing=label_smoothing)
        (3.0 * loss).backward()  # a non-unit upstream gradient
        results.append([loss.detach(), features.grad, layer.weight.grad, layer.bias.grad])
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_without_gradients_gives_the_same_loss() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 30)
    features, gold = torch.randn(12, 8), torch.randint(0, 30, (12,))
    with torch.inference_mode():
        ours = output_cross_entropy(features, layer, gold, 0.1)
        reference = F.cross_entropy(layer(features), gold, label_smoothing=0.1)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_under_bfloat16_autocast_matches_float32_closely() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(32, 100)
    features = torch.randn(64, 32, requires_grad=True)
    gold = torch.randint(0, 100, (64,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = output_cross_entropy(features, layer, gold, 0.1)
    low.backward()
    assert low.dtype == torch.float32 and features.grad is not None and features.grad.dtype == torch.float32
    low_grads = [features.grad, layer.weight.grad, layer.bias.grad]
    features.grad = None
    layer.zero_grad()
    reference = F.cross_entropy(layer(features), gold, label_smoothing=0.1)
    reference.backward()
    torch.testing.assert_close(low, reference, rtol=2e-2, atol=2e-2)
    for low_grad, grad in zip(low_grads, [features.grad, layer.weight.grad, layer.bias.grad], strict=True):
        assert low_grad is not None and grad is not None and low_grad.dtype == grad.dtype
        assert (low_grad - grad).norm() < 0.02 * grad.norm()  # bfloat16 keeps ~3 significant digits
