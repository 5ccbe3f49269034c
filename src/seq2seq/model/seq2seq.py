"""The encoder-decoder: ``encode`` a source batch, then ``forward`` (teacher forcing) or ``step``.

The model holds no loss. ``forward`` returns a ``ModelOutput``, the one contract between the
model and its loss: training picks the loss for the model's ``output_kind`` (``build.py``), and
decoding uses ``init_state`` / ``step`` / ``DecoderState.select`` without knowing which variant
it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from seq2seq.model.decoder import DecoderState, RecurrentDecoder
from seq2seq.model.encoder import EncoderOutput, RecurrentEncoder

# "softmax": p(y_t) = softmax(output_layer(features_t)) over the target vocabulary. Room for
# "pointer_generator" (a copy gate mixing in attention over the source's words) and for a CTC
# head on the encoder beside the decoder.
OutputKind = Literal["softmax"]


@dataclass
class ModelOutput:
    """What teacher forcing gives the loss.

    features: (batch, tgt_len, feature_size), the decoder's output before the output layer.
    attention: (batch, tgt_len, src_len) weights, or None without attention.
    copy_gate: (batch, tgt_len) p_gen of a pointer-generator, or None.
    encoder_logits: (batch, src_len', vocab) of a CTC head on the encoder, or None.
    """

    features: torch.Tensor
    attention: torch.Tensor | None
    copy_gate: torch.Tensor | None = None
    encoder_logits: torch.Tensor | None = None


class Seq2Seq(nn.Module):
    """p(y | x) = prod_t p(y_t | y_<t, x) with a recurrent encoder and decoder."""

    output_kind: OutputKind = "softmax"

    def __init__(self, encoder: RecurrentEncoder, decoder: RecurrentDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    @property
    def output_layer(self) -> nn.Linear:
        """The map from decoder features to vocabulary logits (softmax output)."""
        return self.decoder.output_layer

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (batch, src_len[, features]), src_lengths (batch,) -> EncoderOutput with attention keys.

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
    ) -> ModelOutput:
        """Teacher forcing over prev_tokens (batch, tgt_len): ``<sos> y_1 .. y_n``."""
        enc = self.encode(src, src_lengths)
        state = self.decoder.init_state(enc)
        features, attention = self.decoder(prev_tokens, enc, state, teacher_forcing_ratio)
        return ModelOutput(features=features, attention=attention)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.output_layer(features)

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        return self.decoder.init_state(enc)

    def step(
        self, prev_token: torch.Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """Log-probabilities (batch, vocab) of the next token, the new state, attention (batch, S)."""
        features, state, attn = self.decoder.step(prev_token, enc, state)
        return torch.log_softmax(self.logits(features).float(), dim=-1), state, attn
