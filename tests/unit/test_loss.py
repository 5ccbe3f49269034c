"""Losses over the model's output: the coverage penalty of See et al. (2017) by hand."""

from __future__ import annotations

import pytest
import torch

from seq2seqkit.training.loss import coverage_penalty


def test_coverage_penalty_is_zero_for_one_hot_attention_that_never_returns() -> None:
    attention = torch.eye(4)[[0, 2, 1, 3]].unsqueeze(0)  # each step a different source position
    assert coverage_penalty(attention, torch.ones(1, 4, dtype=torch.bool)) == 0.0


def test_coverage_penalty_by_hand() -> None:
    attention = torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0]]])
    # step 2: min(a, c) = min(.5,.5) + min(0,.5) + min(.5,0) = .5; step 3: min(1, 1) = 1
    assert coverage_penalty(attention, torch.ones(1, 3, dtype=torch.bool)) == pytest.approx(1.5 / 3)
    padded = torch.tensor([[True, True, False]])  # the last step is padding: it does not count
    assert coverage_penalty(attention, padded) == pytest.approx(0.5 / 2)


def test_pointer_generator_loss_is_the_negative_log_of_the_hand_computed_mixture() -> None:
    from torch import nn

    from seq2seqkit.data.batching import collate
    from seq2seqkit.model.seq2seq import ModelOutput
    from seq2seqkit.training.loss import PointerGeneratorLoss

    layer = nn.Linear(2, 5)  # a vocabulary of 5; the source holds one unknown word, extended id 5
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0], [0, 0], [0, 0], [1, 0], [0, 1]]))
        layer.bias.zero_()
    # source: [4, <unk> "libfoo"] -> extended [4, 5]; target: "libfoo" then <eos> (id 3)
    batch = collate([[4, 1]], [[1]], [0], extended=([[4, 5]], [[5]]))
    features = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    attention = torch.tensor([[[0.2, 0.8], [0.5, 0.5]]])
    gate = torch.tensor([[0.25, 0.5]])
    loss = PointerGeneratorLoss(layer)(ModelOutput(features, attention, copy_gate=gate), batch)
    # step 1, gold 5 (copied only): (1 - 0.25) * 0.8 = 0.6
    # step 2, gold 3 (<eos>): 0.5 * softmax([0, 0, 0, 1, 0])[3] = 0.5 * e / (4 + e)
    e = torch.e
    expected = -(torch.log(torch.tensor(0.6)) + torch.log(torch.tensor(0.5 * e / (4 + e)))) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
