"""Losses over the model's output: the coverage penalty of See et al. (2017) by hand."""

from __future__ import annotations

import pytest
import torch

from seq2seq.training.loss import coverage_penalty


def test_coverage_penalty_is_zero_for_one_hot_attention_that_never_returns() -> None:
    attention = torch.eye(4)[[0, 2, 1, 3]].unsqueeze(0)  # each step a different source position
    assert coverage_penalty(attention, torch.ones(1, 4, dtype=torch.bool)) == 0.0


def test_coverage_penalty_by_hand() -> None:
    attention = torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0]]])
    # step 2: min(a, c) = min(.5,.5) + min(0,.5) + min(.5,0) = .5; step 3: min(1, 1) = 1
    assert coverage_penalty(attention, torch.ones(1, 3, dtype=torch.bool)) == pytest.approx(1.5 / 3)
    padded = torch.tensor([[True, True, False]])  # the last step is padding: it does not count
    assert coverage_penalty(attention, padded) == pytest.approx(0.5 / 2)
