"""Losses over the model's output contract (``ModelOutput``), on real target tokens only.

A loss is called as ``loss(output, batch, label_smoothing)`` and returns the training objective,
a mean over the batch's non-padding target tokens; ``loss.nll(output, batch)`` is the negative
log-likelihood alone (validation reports it as loss and perplexity). ``build.py`` picks a loss for
the model's ``output_kind``. The output projection runs only on real positions: padding costs
neither compute nor loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from seq2seqkit.data.batching import Batch
from seq2seqkit.model.seq2seq import ModelOutput, copy_distribution

# (features (tokens, F), output layer, gold (tokens,), label smoothing) -> mean cross-entropy
OutputCrossEntropy = Callable[[torch.Tensor, nn.Linear, torch.Tensor, float], torch.Tensor]


class Loss(Protocol):
    def __call__(self, output: ModelOutput, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor: ...
    def nll(self, output: ModelOutput, batch: Batch) -> torch.Tensor: ...


def output_cross_entropy(
    features: torch.Tensor, output_layer: nn.Linear, gold: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Label-smoothed cross-entropy (Szegedy et al., 2016) of softmax(output_layer(features))."""
    logits = output_layer(features).float()
    return F.cross_entropy(logits, gold, label_smoothing=label_smoothing)


class SoftmaxCrossEntropy:
    """-log p(y_t) under a softmax over the target vocabulary, averaged over real target tokens.

    ``cross_entropy`` computes it from the real positions' features; the plain one above, or the
    fused kernel (``kernels/output_loss.py``) where ``build.py`` switches the kernels on.
    """

    def __init__(self, output_layer: nn.Linear, cross_entropy: OutputCrossEntropy = output_cross_entropy):
        self.output_layer = output_layer
        self.cross_entropy = cross_entropy

    def __call__(self, output: ModelOutput, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
        mask = batch.tgt_mask
        return self.cross_entropy(
            output.features[mask], self.output_layer, batch.tgt_out[mask], label_smoothing
        )

    def nll(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return self(output, batch)


class PointerGeneratorLoss:
    """-log p(y_t) under the copy mixture of a pointer-generator (See et al., 2017), over real
    target tokens whose gold ids are extended ids: a word the vocabulary lacks is learned by
    copying it from the source. Label smoothing does not apply."""

    def __init__(self, output_layer: nn.Linear) -> None:
        self.output_layer = output_layer

    def __call__(self, output: ModelOutput, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
        assert (
            output.attention is not None and output.copy_gate is not None and batch.src_extended is not None
        )
        mask = batch.tgt_mask
        vocab_probs = torch.softmax(self.output_layer(output.features[mask]).float(), dim=-1)
        ids = batch.src_extended.unsqueeze(1).expand(-1, mask.size(1), -1)[mask]  # tokens, S
        mixed = copy_distribution(vocab_probs, output.attention[mask].float(), output.copy_gate[mask], ids)
        gold = mixed.gather(1, batch.tgt_out[mask].unsqueeze(1)).squeeze(1)
        return -gold.clamp_min(1e-12).log().mean()

    def nll(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return self(output, batch)


class BoundaryLoss:
    """-log P_start(s) - log P_end(e) of a pointer reader (output kind "pointer"), averaged over the
    batch's boundaries: its targets are the answer's (start, end) source positions, held where the
    other kinds hold token ids (``tgt_out[:, 0]`` and ``tgt_out[:, 1]``). Label smoothing does
    not apply (positions off the paragraph have probability 0)."""

    def __call__(self, output: ModelOutput, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
        log_probs = torch.log_softmax(output.features.float(), dim=-1)  # (batch, 2, src_len)
        gold = batch.tgt_out[:, :2].unsqueeze(-1)  # (batch, 2, 1)
        return -log_probs.gather(2, gold).mean()

    def nll(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return self(output, batch)


def coverage_penalty(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """See et al. (2017)'s coverage loss: sum_s min(a_ts, c_ts) with c_t the sum of a_1..a_{t-1},
    averaged over real target steps. attention (batch, tgt_len, src_len); mask (batch, tgt_len).
    Zero while each step attends where no earlier step did; it grows with attention repeated."""
    coverage = attention.cumsum(dim=1) - attention
    per_step = torch.minimum(attention, coverage).sum(-1)
    return per_step[mask].mean()


class WithCoverageLoss:
    """A loss plus ``weight`` times the coverage penalty of the output's attention."""

    def __init__(self, base: Loss, weight: float) -> None:
        self.base = base
        self.weight = weight

    def __call__(self, output: ModelOutput, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
        assert output.attention is not None, "coverage needs the attention weights"
        penalty = coverage_penalty(output.attention.float(), batch.tgt_mask)
        return self.base(output, batch, label_smoothing) + self.weight * penalty

    def nll(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        return self.base.nll(output, batch)


class WithCTCLoss:
    """Joint CTC-attention training (Kim et al., 2017): ``weight`` * CTC + (1 - ``weight``) * the
    decoder's loss. The CTC loss of the encoder's logits (blank: <pad>) is summed over the batch
    and divided by its target tokens, as the decoder's loss is averaged (<eos> is not a CTC
    target); an utterance too short for its transcript adds 0, not infinity."""

    def __init__(self, base: Loss, weight: float, blank: int) -> None:
        self.base = base
        self.weight = weight
        self.blank = blank

    def ctc(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        assert output.encoder_logits is not None and output.encoder_mask is not None
        log_probs = torch.log_softmax(output.encoder_logits.float(), dim=-1).transpose(0, 1)
        loss = F.ctc_loss(
            log_probs,
            batch.tgt_out,
            output.encoder_mask.sum(1),
            batch.tgt_mask.sum(1) - 1,  # without <eos>
            blank=self.blank,
            reduction="sum",
            zero_infinity=True,
        )
        return loss / batch.num_tgt_tokens

    def __call__(self, output: ModelOutput, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
        ctc = self.ctc(output, batch)
        if self.weight == 1:
            return ctc
        return self.weight * ctc + (1 - self.weight) * self.base(output, batch, label_smoothing)

    def nll(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        if self.weight == 1:
            return self.ctc(output, batch)
        return self.weight * self.ctc(output, batch) + (1 - self.weight) * self.base.nll(output, batch)
