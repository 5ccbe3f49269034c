"""Dropout masks from 16-bit random lanes: the drop rate, the scale, and the eval-mode identity."""

from __future__ import annotations

import pytest
import torch

from seq2seqkit.kernels import FAST, PLAIN, Ops
from seq2seqkit.kernels.dropout import dropout_mask
from seq2seqkit.model.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_mask_drops_with_probability_p_and_keeps_the_expectation(p: float) -> None:
    torch.manual_seed(0)
    mask = dropout_mask((1000, 1001), p)  # an odd element count: the last 64-bit word is cut
    dropped = (mask == 0).float().mean().item()
    assert abs(dropped - p) < 0.003  # ~6 standard deviations at p = 0.5
    kept = mask[mask > 0]
    assert torch.all(kept == kept[0])
    keep = (65536 - round(p * 65536)) / 65536  # p rounded to a multiple of 1/65536
    assert kept[0].item() == pytest.approx(1 / keep, rel=1e-6)
    assert abs(mask.mean().item() - 1.0) < 0.01


def test_mask_lanes_are_independent_of_their_position() -> None:
    """Each of the four 16-bit lanes of a 64-bit word drops at the same rate."""
    torch.manual_seed(1)
    mask = dropout_mask((250_000, 4), 0.3)
    for lane in range(4):
        assert abs((mask[:, lane] == 0).float().mean().item() - 0.3) < 0.006


def test_mask_follows_the_torch_seed() -> None:
    torch.manual_seed(7)
    first = dropout_mask((5, 9), 0.5)
    torch.manual_seed(7)
    assert torch.equal(first, dropout_mask((5, 9), 0.5))


@pytest.mark.parametrize("ops", [FAST, PLAIN], ids=["fast", "plain"])
def test_module_is_the_identity_in_eval_mode_and_at_zero(ops: Ops) -> None:
    x = torch.randn(4, 6)
    assert torch.equal(Dropout(0.5, ops).eval()(x), x)
    assert torch.equal(Dropout(0.0, ops).train()(x), x)
    noisy = Dropout(0.5, ops).train()(x)
    assert torch.all((noisy == 0) | torch.isclose(noisy, 2 * x))
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)
