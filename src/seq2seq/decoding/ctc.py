"""Decoding with a model's CTC head: best-path (greedy) decoding, and rescoring the attention
decoder's n-best with CTC's likelihood of each (joint CTC-attention decoding by rescoring).

CTC (Graves et al., 2006) scores an output by summing over all its alignments to the encoder's
positions; its blank is <pad>'s id. Rescoring ranks a source's hypotheses by
``ctc_weight * log p_ctc(y|x) + (1 - ctc_weight) * log p_att(y|x)``: the attention decoder's
usual failures (stopping early, repeating itself) have a low CTC likelihood.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.data.vocab import PAD_ID
from seq2seq.decoding.search import Hypothesis
from seq2seq.model.seq2seq import Seq2Seq

BLANK = PAD_ID


def _ctc_log_probs(
    model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, T', vocab) CTC log-probabilities over the encoder's positions, and their lengths."""
    assert model.ctc_head is not None, "CTC decoding needs a model with a CTC head (model.ctc_weight > 0)"
    enc = model.encoder(src, src_lengths)
    log_probs = torch.log_softmax(model.ctc_head(enc.memory).float(), dim=-1)
    return log_probs, enc.mask.sum(1)


@torch.inference_mode()
def ctc_greedy_search(model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor) -> list[Hypothesis]:
    """The best path: the most probable label at each encoder position, repeats merged, blanks
    dropped. Score: the best path's log-probability; no attention."""
    log_probs, lengths = _ctc_log_probs(model, src, src_lengths)
    best, labels = log_probs.max(dim=-1)
    return [
        Hypothesis(collapse(labels[row, :length].tolist()), float(best[row, :length].sum()), None)
        for row, length in enumerate(lengths.tolist())
    ]


def collapse(path: list[int]) -> list[int]:
    """The output of a CTC path: runs of a label merged, then blanks dropped (a, a, -, a -> a, a)."""
    return [label for t, label in enumerate(path) if label != BLANK and (t == 0 or label != path[t - 1])]


@torch.inference_mode()
def ctc_rescore(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    nbest: list[list[Hypothesis]],
    ctc_weight: float,
) -> list[list[Hypothesis]]:
    """Each source's hypotheses re-ranked by the joint score, which becomes their score."""
    log_probs, lengths = _ctc_log_probs(model, src, src_lengths)
    rows = [row for row, hyps in enumerate(nbest) for _ in hyps]
    hyps = [hyp for group in nbest for hyp in group]
    targets = [torch.tensor(hyp.token_ids, dtype=torch.long) for hyp in hyps]
    padded = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=BLANK)
    index = torch.tensor(rows, device=log_probs.device)
    # an empty hypothesis has a target of length 0: CTC then scores the all-blank path
    nll = F.ctc_loss(
        log_probs.index_select(0, index).transpose(0, 1),
        padded.to(log_probs.device) if padded.numel() else padded.new_zeros(len(hyps), 1),
        lengths.index_select(0, index),
        torch.tensor([len(t) for t in targets]),
        blank=BLANK,
        reduction="none",
        zero_infinity=False,
    )
    joint = [ctc_weight * -float(n) + (1 - ctc_weight) * hyp.score for n, hyp in zip(nll, hyps, strict=True)]
    rescored: list[list[Hypothesis]] = [[] for _ in nbest]
    for row, hyp, score in zip(rows, hyps, joint, strict=True):
        rescored[row].append(Hypothesis(hyp.token_ids, score, hyp.attention))
    return [sorted(group, key=lambda h: -h.score) for group in rescored]
