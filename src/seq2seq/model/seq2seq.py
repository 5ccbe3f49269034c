"""The encoder-decoder: ``encode`` a source batch, then ``forward`` (teacher forcing) or ``step``.

The model holds no loss: training computes it from ``forward``'s features, and decoding uses
``init_state`` / ``step`` / ``DecoderState.select`` without knowing which variant it runs.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.model.decoder import DecoderState, RecurrentDecoder
from seq2seq.model.encoder import EncoderOutput, RecurrentEncoder


class Seq2Seq(nn.Module):
    """p(y | x) = prod_t p(y_t | y_<t, x) with a recurrent encoder and decoder."""

    def __init__(self, encoder: RecurrentEncoder, decoder: RecurrentDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (batch, src_len), src_lengths (batch,) -> EncoderOutput with attention keys.

        Memory and keys are float32 (attention runs in float32): under autocast they are cast once
        here, not at every decoding step."""
        enc = self.encoder(src, src_lengths)
        if self.decoder.attention is not None:
            enc.keys = self.decoder.attention.precompute_keys(enc.memory).float()
        enc.memory = enc.memory.float()
        return enc

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        prev_tokens: torch.Tensor,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced features (batch, tgt_len, feature_size) and attention or None."""
        enc = self.encode(src, src_lengths)
        state = self.decoder.init_state(enc)
        return self.decoder(prev_tokens, enc, state, teacher_forcing_ratio)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder.logits(features)

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        return self.decoder.init_state(enc)

    def step(
        self, prev_token: torch.Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """Log-probabilities (batch, vocab) of the next token, the new state, attention (batch, S)."""
        features, state, attn = self.decoder.step(prev_token, enc, state)
        return torch.log_softmax(self.logits(features).float(), dim=-1), state, attn
