"""The recurrent decoder: embeddings -> LSTM/GRU -> (attention) -> features for the output layer.

How the source reaches the decoder (``context``):
- ``init``: c initializes the decoder state only (Sutskever et al., 2014);
- ``every_step``: c is also fed at every step, s_t = f(s_{t-1}, y_{t-1}, c) (Cho et al., 2014);
- ``attention``: a context c_t per step. Bahdanau et al. (2015) attend from s_{t-1} and feed c_t
  into the RNN; Luong et al. (2015) attend from h_t and combine h~_t = tanh(W[c_t; h_t]),
  optionally feeding h~_{t-1} back as input ("input feeding").

When no step depends on the previous step's output (``init``, ``every_step``, Luong without input
feeding), teacher forcing runs the whole target through one fused RNN call; the other variants
loop over steps with the same ``step`` that decoding uses. With the CPU kernels switched on
(``ops``), an LSTM with Luong "dot"/"general" attention and input feeding runs the kernel's own
loop with a hand-written backward pass instead (``kernels/input_feeding.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from seq2seqkit.kernels import PLAIN, Ops
from seq2seqkit.model.attention import Attention
from seq2seqkit.model.dropout import Dropout
from seq2seqkit.model.encoder import EncoderOutput
from seq2seqkit.model.rnn import RNNType, make_rnn, rnn_step

ContextMode = Literal["init", "every_step", "attention"]


@dataclass
class DecoderState:
    """Recurrent state carried between steps.

    hidden: (layers, batch, hidden) for a GRU, or the (h, c) pair of those for an LSTM.
    feed: (batch, feature_size), the previous attentional vector h~_{t-1} (input feeding), or None.
    coverage: (batch, src_len), the attention weights summed over the steps so far, or None.
    previous: (batch, src_len), the last step's attention weights (location-aware attention;
    uniform over the source at the start), or None.
    """

    hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    feed: torch.Tensor | None = None
    coverage: torch.Tensor | None = None
    previous: torch.Tensor | None = None

    def select(self, indices: torch.Tensor) -> DecoderState:
        """Rows ``indices`` of the batch, e.g. the surviving beam hypotheses."""
        if isinstance(self.hidden, tuple):
            hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor] = (
                self.hidden[0].index_select(1, indices),
                self.hidden[1].index_select(1, indices),
            )
        else:
            hidden = self.hidden.index_select(1, indices)
        feed = None if self.feed is None else self.feed.index_select(0, indices)
        coverage = None if self.coverage is None else self.coverage.index_select(0, indices)
        previous = None if self.previous is None else self.previous.index_select(0, indices)
        return DecoderState(hidden=hidden, feed=feed, coverage=coverage, previous=previous)


class RecurrentDecoder(nn.Module):
    """Conditional RNN language model over the target; see the module docstring for the modes."""

    def __init__(
        self,
        *,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        rnn_type: RNNType,
        dropout: float,
        memory_size: int,
        context: ContextMode,
        attention: Attention | None,
        input_feeding: bool,
        feature_size: int,
        tie_embeddings: bool,
        pad_id: int,
        ops: Ops = PLAIN,
    ) -> None:
        super().__init__()
        if (context == "attention") != (attention is not None):
            raise ValueError("an attention module is needed exactly when context is 'attention'")
        self.context = context
        self.attention = attention
        self.bahdanau = attention is not None and attention.kind == "bahdanau"
        self.coverage = attention is not None and attention.coverage_layer is not None
        self.location = attention is not None and attention.location_conv is not None
        self.input_feeding = input_feeding and attention is not None and not self.bahdanau
        self.rnn_type = rnn_type
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.feature_size = feature_size
        self.ops = ops

        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=pad_id)
        self.dropout = Dropout(dropout, ops)
        rnn_input = embedding_size
        if context == "every_step" or self.bahdanau:
            rnn_input += memory_size
        elif self.input_feeding:
            rnn_input += feature_size
        self.rnn = make_rnn(rnn_type, rnn_input, hidden_size, num_layers, dropout)
        # s_0 = tanh(W c): the bridge from the encoder's context vector to the decoder state
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size)
        combined = hidden_size + (0 if context == "init" else memory_size)
        self.combine = nn.Linear(combined, feature_size, bias=False)
        self.output_layer = nn.Linear(feature_size, vocab_size)
        if tie_embeddings:
            if feature_size != embedding_size:
                raise ValueError("tied embeddings need feature_size == embedding_size")
            self.output_layer.weight = self.embedding.weight

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor | None:
        """The attention's keys of ``memory``, computed once per source (None without attention)."""
        return None if self.attention is None else self.attention.precompute_keys(memory)

    @property
    def fused(self) -> bool:
        """True when teacher forcing can run all steps in one RNN call."""
        return not (self.bahdanau or self.input_feeding or self.coverage or self.location)

    @property
    def feeds_by_hand(self) -> bool:
        """True when teacher forcing runs the ``input_feeding_lstm`` kernel (LSTM, Luong dot/general)."""
        kind = self.attention.kind if self.attention is not None else None
        kernel = self.ops.input_feeding_lstm is not None
        return kernel and self.input_feeding and self.rnn_type == "lstm" and kind in ("dot", "general")

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        batch = enc.context.size(0)
        h0 = torch.tanh(self.bridge(enc.context))  # B, layers * H
        h0 = h0.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        hidden = (h0, torch.zeros_like(h0)) if self.rnn_type == "lstm" else h0
        feed = enc.context.new_zeros(batch, self.feature_size) if self.input_feeding else None
        coverage = enc.mask.new_zeros(enc.mask.shape, dtype=torch.float32) if self.coverage else None
        previous = None
        if self.location:
            previous = enc.mask.float() / enc.mask.sum(1, keepdim=True).clamp(min=1)
        return DecoderState(hidden=hidden, feed=feed, coverage=coverage, previous=previous)

    def forward(
        self,
        prev_tokens: torch.Tensor,
        enc: EncoderOutput,
        state: DecoderState,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing over prev_tokens (batch, tgt_len).

        Returns features (batch, tgt_len, feature_size) and attention weights
        (batch, tgt_len, src_len) or None. With ``teacher_forcing_ratio`` < 1 (scheduled sampling,
        Bengio et al., 2015) each step's input is, with probability 1 - ratio, the model's own
        previous (greedy) prediction.
        """
        if teacher_forcing_ratio >= 1.0:
            if self.fused:
                return self._forward_fused(prev_tokens, enc, state)
            if self.feeds_by_hand:
                return self._forward_input_feeding(prev_tokens, enc, state)
        return self.forward_steps(prev_tokens, enc, state, teacher_forcing_ratio)

    def forward_steps(
        self,
        prev_tokens: torch.Tensor,
        enc: EncoderOutput,
        state: DecoderState,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward`` as a loop over ``step``, with autograd through every step: what every
        variant computes (the faster paths are checked against it)."""
        features: list[torch.Tensor] = []
        weights: list[torch.Tensor] = []
        inputs = prev_tokens[:, 0]
        for t in range(prev_tokens.size(1)):
            if t > 0:
                inputs = prev_tokens[:, t]
                if teacher_forcing_ratio < 1.0:
                    sampled = self.output_layer(features[-1]).argmax(-1)
                    use_model = torch.rand(inputs.shape, device=inputs.device) >= teacher_forcing_ratio
                    inputs = torch.where(use_model, sampled, inputs)
            feature, state, attn = self.step(inputs, enc, state)
            features.append(feature)
            if attn is not None:
                weights.append(attn)
        stacked_attn = torch.stack(weights, dim=1) if weights else None
        return torch.stack(features, dim=1), stacked_attn

    def _forward_input_feeding(
        self, prev_tokens: torch.Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert enc.keys is not None and isinstance(state.hidden, tuple) and isinstance(self.rnn, nn.LSTM)
        assert self.ops.input_feeding_lstm is not None
        embedded = self.dropout(self.embedding(prev_tokens))
        dropout = self.dropout.p if self.training else 0.0
        return self.ops.input_feeding_lstm(
            embedded, state.hidden, self.rnn, enc.keys, enc.memory, enc.mask, self.combine, dropout
        )

    def _forward_fused(
        self, prev_tokens: torch.Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        embedded = self.dropout(self.embedding(prev_tokens))  # B, T, E
        steps = prev_tokens.size(1)
        if self.context == "every_step":
            c = enc.context_for(embedded.size(0)).unsqueeze(1).expand(-1, steps, -1)
            embedded = torch.cat([embedded, c], dim=-1)
        output, _ = self.rnn(embedded, state.hidden)  # B, T, H
        return self._combine(output, enc)

    def _combine(
        self, output: torch.Tensor, enc: EncoderOutput, state: DecoderState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features h~ = tanh(W [h; c]) from RNN outputs (batch, steps, hidden), Luong-style."""
        weights = None
        if self.context == "init":
            combined = output
        elif self.context == "every_step":
            c = enc.context_for(output.size(0)).unsqueeze(1).expand(-1, output.size(1), -1)
            combined = torch.cat([output, c], dim=-1)
        else:
            assert self.attention is not None and enc.keys is not None
            coverage, previous = (None, None) if state is None else (state.coverage, state.previous)
            ctx, weights = self.attention(output, enc.keys, enc.memory, enc.mask, coverage, previous)
            combined = torch.cat([output, ctx], dim=-1)
        return self.dropout(self.ops.tanh(self.combine(combined))), weights

    def step(
        self, prev_token: torch.Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """One step for prev_token (rows,): features (rows, F), the new state, attention (rows, S).

        ``enc`` holds one entry per row, or, in beam search, one per source with the source's
        hypotheses as consecutive rows."""
        embedded = self.dropout(self.embedding(prev_token)).unsqueeze(1)  # B, 1, E
        if self.bahdanau:
            assert self.attention is not None and enc.keys is not None
            top = state.hidden[0][-1] if isinstance(state.hidden, tuple) else state.hidden[-1]
            ctx, weights = self.attention(
                top.unsqueeze(1), enc.keys, enc.memory, enc.mask, state.coverage, state.previous
            )
            x = torch.cat([embedded, ctx], dim=-1).squeeze(1)
            output, hidden = rnn_step(self.rnn, x, state.hidden, self.ops)
            features = self.dropout(
                self.ops.tanh(self.combine(torch.cat([output.unsqueeze(1), ctx], dim=-1)))
            )
            weights = weights.squeeze(1)
            return features.squeeze(1), self._after(state, hidden, None, weights), weights
        if self.context == "every_step":
            embedded = torch.cat([embedded, enc.context_for(embedded.size(0)).unsqueeze(1)], dim=-1)
        elif self.input_feeding:
            assert state.feed is not None
            embedded = torch.cat([embedded, state.feed.unsqueeze(1)], dim=-1)
        output, hidden = rnn_step(self.rnn, embedded.squeeze(1), state.hidden, self.ops)
        features, weights = self._combine(output.unsqueeze(1), enc, state)
        features = features.squeeze(1)
        weights = None if weights is None else weights.squeeze(1)
        return (
            features,
            self._after(state, hidden, features if self.input_feeding else None, weights),
            weights,
        )

    def _after(
        self,
        state: DecoderState,
        hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        feed: torch.Tensor | None,
        weights: torch.Tensor | None,
    ) -> DecoderState:
        """The state after a step: its RNN state and feed, coverage plus this step's weights, and
        these weights as the previous ones (each only where the decoder keeps it)."""
        coverage = None if state.coverage is None or weights is None else state.coverage + weights
        previous = weights if state.previous is not None else None
        return DecoderState(hidden=hidden, feed=feed, coverage=coverage, previous=previous)
