"""Decoding with a model's CTC head: best-path (greedy) decoding, CTC prefix scores inside the
attention decoder's search (joint CTC-attention decoding), and rescoring of its n-best.

CTC (Graves et al., 2006) scores an output by summing over all its alignments to the encoder's
positions; its blank is <pad>'s id. Joint decoding (Watanabe et al., 2017; Hori et al., 2017)
ranks every partial hypothesis g by ``ctc_weight * log p_ctc(g...|x) + (1 - ctc_weight) * log
p_att(g|x)``, where p_ctc(g...|x) is the CTC probability of all outputs that begin with g (the
prefix probability), so the attention decoder's usual failures on speech (words the audio does
not hold, stopping early, repeating itself) fall out of the beam as they start. Rescoring only
re-ranks the finished n-best by the same weights, which helps when the beam already holds the
right output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seqkit.data.vocab import EOS_ID, PAD_ID
from seq2seqkit.decoding.search import Hypothesis
from seq2seqkit.model.seq2seq import Seq2Seq

BLANK = PAD_ID


def _ctc_log_probs(
    model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, T', vocab) CTC log-probabilities over the encoder's positions, and their lengths."""
    enc = model.encoder(src, src_lengths)
    return model.ctc_log_probs(enc), enc.mask.sum(1)


class CTCPrefixScorer:
    """CTC prefix scores of a beam search's hypotheses, one step at a time (the vectorised
    algorithm of Watanabe et al., 2017, section 3.2, over every row and candidate token at once).

    For each hypothesis g it keeps r_t(g), the log-probabilities that the first t encoder
    positions emit exactly g ending in a non-blank (n) or a blank (b), and psi(g), its prefix
    score. ``joint`` turns the decoder's log-probabilities of the next tokens into the joint
    score of each extension h = g + c: (1 - w) log p_att(c|g) + w (psi(h) - psi(g)), where for
    <eos> psi(h) is log p_ctc(g|x), the probability that the output is exactly g. Only the
    ``candidates`` best tokens by the decoder get a CTC score (the others -inf: ESPnet's
    pre-beam), all of them when the vocabulary is that small (characters).

    log_probs: (sources, T, V) of the CTC head, lengths (sources,); each source's ``rows_per_source``
    hypotheses are consecutive rows, as beam search keeps them.
    """

    def __init__(
        self,
        log_probs: torch.Tensor,
        lengths: torch.Tensor,
        rows_per_source: int,
        weight: float,
        candidates: int,
    ) -> None:
        x = log_probs.float().repeat_interleave(rows_per_source, dim=0).transpose(0, 1)  # (T, rows, V)
        rows_lengths = lengths.repeat_interleave(rows_per_source)
        beyond = torch.arange(x.size(0), device=x.device)[:, None] >= rows_lengths[None, :]
        # past a row's end every position emits blank with probability 1: the recursions then
        # carry each row's totals at its own last position to the end unchanged
        x = x.masked_fill(beyond.unsqueeze(-1), float("-inf"))
        x[..., BLANK] = x[..., BLANK].masked_fill(beyond, 0.0)
        self.x, self.weight, self.candidates = x, weight, min(candidates, x.size(-1))
        rows = x.size(1)
        blank_run = x[..., BLANK].cumsum(0)
        self.r = torch.stack([torch.full_like(blank_run, float("-inf")), blank_run], dim=-1)  # (T, rows, 2)
        self.psi = x.new_zeros(rows)
        self.last = torch.full((rows,), -1, dtype=torch.long, device=x.device)  # no token yet
        self._pending: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def joint(self, att_log_probs: torch.Tensor) -> torch.Tensor:
        """(rows, V) joint scores of every next token (-inf outside the candidates, which always
        hold <eos>: a hypothesis at its length limit must be able to end)."""
        att = att_log_probs.float()
        tokens = att.index_fill(1, torch.tensor([EOS_ID], device=att.device), float("inf"))
        tokens = tokens.topk(self.candidates, dim=-1).indices  # (rows, M)
        r, psi = self._extend(tokens)
        # a hypothesis CTC cannot emit (psi -inf) stays out: -inf, never nan
        ctc = psi - self.psi.unsqueeze(1)
        ctc = ctc.masked_fill(ctc.isnan(), float("-inf"))
        joint = self.weight * ctc
        if self.weight < 1:
            joint = joint + (1 - self.weight) * att.gather(1, tokens)
        self._pending = (tokens, r, psi)
        return torch.full_like(att, float("-inf")).scatter_(1, tokens, joint)

    def _extend(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """r (T, rows, M, 2) and psi (rows, M) of each row's hypothesis extended by each of ``tokens``."""
        x = self.x.gather(2, tokens.unsqueeze(0).expand(self.x.size(0), -1, -1))  # (T, rows, M)
        total = torch.logaddexp(self.r[..., 0], self.r[..., 1]).unsqueeze(-1)  # (T, rows, 1)
        # a repeated label must be separated by a blank: only the blank-ending paths continue
        phi = torch.where((tokens == self.last.unsqueeze(1)).unsqueeze(0), self.r[..., 1:], total)
        steps = x.size(0)
        r = torch.full((steps, *tokens.shape, 2), float("-inf"), device=x.device)
        start = (self.last < 0).unsqueeze(1)  # the empty prefix: emission may start at position 0
        r[0, ..., 0] = torch.where(start, x[0], float("-inf"))
        blank = self.x[..., BLANK].unsqueeze(-1)  # (T, rows, 1)
        for t in range(1, steps):
            r[t, ..., 0] = torch.logaddexp(r[t - 1, ..., 0], phi[t - 1]) + x[t]
            r[t, ..., 1] = torch.logaddexp(r[t - 1, ..., 0], r[t - 1, ..., 1]) + blank[t]
        psi = torch.logsumexp(torch.cat([r[:1, ..., 0], phi[:-1] + x[1:]]), dim=0)
        psi = torch.where(tokens == EOS_ID, total[-1], psi)  # <eos>: g is the whole output
        return r, psi

    def advance(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        """The new hypotheses: each continues row ``rows[i]`` with ``tokens[i]`` (finished ones,
        continued with <pad>, keep their state: their scores no longer change)."""
        assert self._pending is not None, "advance() follows joint()"
        candidates, r, psi = self._pending
        match = candidates[rows] == tokens.unsqueeze(1)  # (new rows, M)
        found, index = match.any(1), match.float().argmax(1)
        new_r = r[:, rows, index]  # (T, new rows, 2)
        self.r = torch.where(found[None, :, None], new_r, self.r[:, rows])
        self.psi = torch.where(found, psi[rows, index], self.psi[rows])
        self.last = torch.where(found, tokens, self.last[rows])
        self.x = self.x[:, rows]
        self._pending = None


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
