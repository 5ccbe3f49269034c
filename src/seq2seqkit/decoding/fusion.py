"""Shallow fusion: a language model's opinion added to the search's scores.

Each hypothesis y is ranked by its score plus ``weight * log p_lm(y)`` (Gulcehre et al., 2015), the
LM weight of ESPnet's and fairseq's decoders: at each step the scores of the next tokens gain
``weight * log p_lm(y_t | y_<t)``, <eos> included. With joint CTC/attention decoding the
CTC prefix scores come first, as in ESPnet: (1 - w) log p_att + w log p_ctc + weight * log p_lm.
The language model (``tasks/language_model.py``) reads no source and shares the model's target
vocabulary (the pipeline checks it). It runs as a ``PrefixScorer`` beside the search, which stays
unaware of it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from seq2seqkit.data.vocab import SOS_ID
from seq2seqkit.model.seq2seq import Seq2Seq


@dataclass(frozen=True)
class Fusion:
    """A language model and its weight."""

    lm: Seq2Seq
    weight: float

    def for_inference(self, dtype: torch.dtype | None) -> Fusion:
        """The language model in evaluation mode, as a copy cast to ``dtype`` if given, as search
        casts the model it fuses with."""
        self.lm.eval()
        return self if dtype is None else Fusion(copy.deepcopy(self.lm).to(dtype), self.weight)


class LanguageModelScorer:
    """Next-token log-probabilities of ``fusion.lm`` for ``rows`` hypotheses, kept in step with
    the search: ``joint`` adds them, weighted, to the search's scores, ``advance`` feeds the
    chosen tokens (a finished hypothesis's <pad> too: its score no longer changes)."""

    def __init__(self, fusion: Fusion, rows: int, device: torch.device) -> None:
        self.lm, self.weight = fusion.lm, fusion.weight
        nothing = torch.zeros(rows, 1, dtype=torch.long, device=device)  # what the LM reads: nothing
        self.enc = self.lm.encode(nothing, torch.ones(rows, dtype=torch.long, device=device))
        start = torch.full((rows,), SOS_ID, dtype=torch.long, device=device)
        self.log_probs, self.state, _ = self.lm.step(start, self.enc, self.lm.init_state(self.enc))

    def joint(self, log_probs: torch.Tensor) -> torch.Tensor:
        """(rows, V) scores plus weight * log p_lm of each next token."""
        return log_probs.float() + self.weight * self.log_probs.float()

    def advance(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        """The new hypotheses: each continues row ``rows[i]`` with ``tokens[i]``."""
        self.enc = self.enc.select(rows)
        self.log_probs, self.state, _ = self.lm.step(tokens, self.enc, self.state.select(rows))
