"""Attention: scores decoder queries against the encoder memory and returns context vectors.

Implements additive attention (Bahdanau et al., 2015; Luong's "concat" has the same form), with
coverage (See et al., 2017) and location features (Chorowski et al., 2015) if asked, and
multiplicative attention (Luong et al., 2015: "dot" and "general"). Keys are computed once per
source (``precompute_keys``) so that step-by-step decoding does not redo them.
Masks follow the package convention: boolean, True = real token. Scores and weighted sums run
in float32 even under bfloat16 autocast: they are small, and in a decoding step a bfloat16 ``bmm``
over (batch x 1 x src_len) is slower on CPU than a float32 one.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

AttentionKind = Literal["bahdanau", "dot", "general", "concat"]


class Attention(nn.Module):
    """score(q, k_s) for every query and source position, softmax over the source, weighted sum."""

    def __init__(
        self,
        *,
        kind: AttentionKind,
        query_size: int,
        memory_size: int,
        attention_size: int,
        coverage: bool = False,
        location: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        if (coverage or location) and kind in ("dot", "general"):
            raise ValueError("coverage and location enter additive attention scores only (bahdanau, concat)")
        # v^T tanh(W_q q + W_k k_s + w_c cov_s): the attention so far at s (See et al., 2017)
        self.coverage_layer = nn.Linear(1, attention_size, bias=False) if coverage else None
        # ... + U f_s, f = F * a_{t-1}: (filters, width) convolutions of the previous weights
        # around s (Chorowski et al., 2015)
        self.location_conv: nn.Conv1d | None = None
        if location is not None:
            filters, width = location
            self.location_conv = nn.Conv1d(1, filters, width, padding=width // 2, bias=False)
            self.location_layer = nn.Linear(filters, attention_size, bias=False)
        if kind == "dot":
            if query_size != memory_size:
                raise ValueError(
                    f"dot attention needs query size == memory size, got {query_size} and {memory_size}"
                )
            self.key_layer: nn.Module = nn.Identity()
        elif kind == "general":
            self.key_layer = nn.Linear(memory_size, query_size, bias=False)
        else:  # additive: v^T tanh(W_q q + W_k k)
            self.key_layer = nn.Linear(memory_size, attention_size, bias=False)
            self.query_layer = nn.Linear(query_size, attention_size, bias=False)
            self.energy = nn.Linear(attention_size, 1, bias=False)

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (batch, src_len, memory_size) -> keys (batch, src_len, key_size)."""
        return self.key_layer(memory)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
        coverage: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend with ``query`` (rows, tgt_len, query_size) over ``memory`` (batch, src_len, M);
        ``coverage`` (rows, src_len), the sum of earlier weights, and ``previous`` (rows, src_len),
        the last step's weights, for one step (tgt_len 1).

        Returns the context (rows, tgt_len, M) and the weights (rows, tgt_len, src_len). Rows are
        batch entries, or, in beam search, groups of consecutive rows share one memory entry
        (rows = batch x beam): each group's queries attend together, so a source's memory is
        neither copied per hypothesis nor read once per hypothesis.
        """
        rows, steps = query.shape[:2]
        assert rows % keys.size(0) == 0, f"{rows} query rows cannot share {keys.size(0)} memory entries"
        query = query.reshape(keys.size(0), -1, query.size(-1))  # B, rows / B * T, Q
        if self.kind not in ("dot", "general"):
            q = self.query_layer(query).unsqueeze(2)  # B, T, 1, A
            energies = q + keys.unsqueeze(1)  # B, T, S, A
            if coverage is not None:
                assert self.coverage_layer is not None and steps == 1
                cov = coverage.view(keys.size(0), -1, keys.size(1), 1)  # B, rows / B, S, 1
                energies = energies + self.coverage_layer(cov.to(energies.dtype))
            if previous is not None:
                assert self.location_conv is not None and steps == 1
                conv = self.location_conv(previous.unsqueeze(1).to(energies.dtype))  # rows, F, S
                located = self.location_layer(conv[..., : keys.size(1)].transpose(1, 2))  # rows, S, A
                energies = energies + located.view(keys.size(0), -1, keys.size(1), located.size(-1))
            scores = self.energy(torch.tanh(energies)).squeeze(-1)  # B, T, S
        with torch.autocast(query.device.type, enabled=False):
            if self.kind in ("dot", "general"):
                scores = torch.bmm(query.float(), keys.float().transpose(1, 2))  # B, T, S
            scores = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            context = torch.bmm(weights, memory.float())
        return context.view(rows, steps, -1), weights.view(rows, steps, -1)
