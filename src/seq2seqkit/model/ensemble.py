"""Ensembles: several trained networks that decode as one.

At each step the ensemble's next-token distribution is the mean of its members' distributions,
log(1/N sum_i p_i(y | y_<t, x)), the usual ensemble of NMT systems (Sutskever et al., 2014 used
five LSTMs). Each member encodes the source and keeps its own decoder state; search sees one model
through the same ``encode`` / ``init_state`` / ``step`` / ``select`` calls as for a single network.
Members must share the target vocabulary (the pipeline checks the vocabularies match). The
attention returned is the first member's. Pointer-generators ensemble too: members of one
vocabulary extend it by the same unknown source words, so their distributions over the extended
vocabulary average like any others. For joint CTC/attention decoding the CTC head's distribution
is likewise the mean of the members', frame by frame, which needs encoders that keep as many
positions (the same frontend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from seq2seqkit.errors import ConfigError
from seq2seqkit.model.seq2seq import Seq2Seq


@dataclass
class Members:
    """One entry per member (its encoder output or decoder state), selected together."""

    parts: list

    def select(self, indices: torch.Tensor) -> Members:
        return Members([part.select(indices) for part in self.parts])

    @property
    def mask(self) -> torch.Tensor:
        """The first member's encoder mask (batch, positions): True = a real position."""
        return self.parts[0].mask


class Ensemble(nn.Module):
    """Networks of one vocabulary decoding together: the mean of their probabilities."""

    def __init__(self, members: list[Seq2Seq]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two networks")
        self.members = nn.ModuleList(members)  # registered: .eval(), .to(), parameters()
        self.networks = list(members)  # the same modules, typed
        limits = [m.max_output_positions for m in members if m.max_output_positions is not None]
        self.max_output_positions = min(limits) if limits else None
        self.copy_gate = members[0].copy_gate  # the pipeline checks that all copy or none does
        self.ctc_head = members[0].ctc_head

    def ctc_log_probs(self, enc: Members) -> torch.Tensor:
        """log of the members' mean CTC distribution (batch, positions, V), frame by frame."""
        each = [m.ctc_log_probs(e) for m, e in zip(self.networks, enc.parts, strict=True)]
        if len({tuple(lp.shape) for lp in each}) > 1:
            raise ConfigError("an ensemble's CTC heads must read as many encoder positions (one frontend)")
        return torch.stack(each).logsumexp(0) - math.log(len(each))

    def encode(
        self, src: torch.Tensor, src_lengths: torch.Tensor, extended_ids: torch.Tensor | None = None
    ) -> Members:
        return Members([member.encode(src, src_lengths, extended_ids) for member in self.networks])

    def init_state(self, enc: Members) -> Members:
        return Members([m.init_state(e) for m, e in zip(self.networks, enc.parts, strict=True)])

    def step(
        self, prev_token: torch.Tensor, enc: Members, state: Members, needed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Members, torch.Tensor | None]:
        """log of the members' mean next-token probabilities (batch, vocab; ``needed`` rows only,
        as ``Seq2Seq.step``), their new states, and the first member's attention."""
        steps = [
            member.step(prev_token, e, s, needed)
            for member, e, s in zip(self.networks, enc.parts, state.parts, strict=True)
        ]
        log_probs = torch.stack([lp.float() for lp, _, _ in steps]).logsumexp(0) - math.log(len(steps))
        return log_probs, Members([s for _, s, _ in steps]), steps[0][2]
