"""Cross-entropy of a batch under teacher forcing, over real target tokens only."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.data.batching import Batch
from seq2seq.model.seq2seq import Seq2Seq


def batch_loss(
    model: Seq2Seq,
    batch: Batch,
    label_smoothing: float = 0.0,
    teacher_forcing_ratio: float = 1.0,
) -> torch.Tensor:
    """Mean (label-smoothed) cross-entropy over the batch's non-padding target tokens.

    The output projection runs only on real positions: padding costs neither compute nor loss.
    """
    features, _ = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio)
    mask = batch.tgt_mask
    logits = model.logits(features[mask]).float()  # (real tokens, vocab)
    gold = batch.tgt_out[mask]
    return F.cross_entropy(logits, gold, label_smoothing=label_smoothing)
