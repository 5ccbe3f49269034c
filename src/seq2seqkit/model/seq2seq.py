"""The encoder-decoder: ``encode`` a source batch, then ``forward`` (teacher forcing) or ``step``.

The model holds no loss. ``forward`` returns a ``ModelOutput``, the one contract between the
model and its loss: training picks the loss for the model's ``output_kind`` (``build.py``), and
decoding uses ``init_state`` / ``step`` / ``DecoderState.select`` without knowing which variant
it runs. The encoder and decoder are either family's, recurrent (``encoder.py``, ``decoder.py``)
or Transformer (``transformer.py``): both offer the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from seq2seqkit.model.decoder import DecoderState, RecurrentDecoder
from seq2seqkit.model.encoder import EncoderOutput, NoSource, RecurrentEncoder
from seq2seqkit.model.transformer import TransformerDecoder, TransformerEncoder, TransformerState

Encoder = RecurrentEncoder | TransformerEncoder | NoSource
Decoder = RecurrentDecoder | TransformerDecoder
# what the decoder carries between steps; decoding only calls its ``select``
State = DecoderState | TransformerState

# "softmax": p(y_t) = softmax(output_layer(features_t)) over the target vocabulary.
# "pointer_generator": that distribution mixed with the attention over the source's words by a
# copy gate, over the vocabulary extended by the source's unknown words (See et al., 2017).
# Either may come with a CTC head on the encoder (``ModelOutput.encoder_logits``), trained jointly.
OutputKind = Literal["softmax", "pointer_generator"]


@dataclass
class ModelOutput:
    """What teacher forcing gives the loss.

    features: (batch, tgt_len, feature_size), the decoder's output before the output layer.
    attention: (batch, tgt_len, src_len) weights, or None without attention.
    copy_gate: (batch, tgt_len) p_gen of a pointer-generator, or None.
    encoder_logits: (batch, src_len', vocab) of a CTC head on the encoder, or None; the CTC blank
    is <pad>'s id, which no target holds.
    encoder_mask: (batch, src_len') bool, the encoder's real positions (True), with encoder_logits.
    """

    features: torch.Tensor
    attention: torch.Tensor | None
    copy_gate: torch.Tensor | None = None
    encoder_logits: torch.Tensor | None = None
    encoder_mask: torch.Tensor | None = None


def copy_distribution(
    vocab_probs: torch.Tensor, attention: torch.Tensor, gate: torch.Tensor, extended_ids: torch.Tensor
) -> torch.Tensor:
    """p(w) = p_gen P_vocab(w) + (1 - p_gen) sum of the attention on source positions holding w.

    vocab_probs (N, V), attention (N, S), gate p_gen (N,), extended_ids (N, S) -> (N, V'), V' the
    vocabulary extended by the largest extended id. Padding positions carry no attention."""
    if torch.jit.is_tracing():  # ONNX export: a width read from the ids would be traced as a constant
        size = vocab_probs.size(-1) + extended_ids.size(-1)  # room for every source position's word
    else:
        size = max(vocab_probs.size(-1), int(extended_ids.max()) + 1)
    mixed = vocab_probs.new_zeros(vocab_probs.size(0), size)
    mixed[:, : vocab_probs.size(-1)] = gate.unsqueeze(-1) * vocab_probs
    return mixed.scatter_add(1, extended_ids, (1 - gate).unsqueeze(-1) * attention)


class Seq2Seq(nn.Module):
    """p(y | x) = prod_t p(y_t | y_<t, x) with an encoder and decoder (recurrent or Transformer),
    and optionally a copy gate p_gen = sigmoid(w [h~_t; y_{t-1}] + b) of a pointer-generator (See
    et al., 2017), and a CTC head: a linear map of the encoder's memory to the target vocabulary,
    whose blank is <pad> (Graves et al., 2006; trained beside the decoder as in Kim et al., 2017)."""

    def __init__(
        self,
        encoder: Encoder,
        decoder: Decoder,
        copy_gate: nn.Linear | None = None,
        unk_id: int = 1,
        ctc_head: nn.Linear | None = None,
        max_output_positions: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.copy_gate = copy_gate
        self.ctc_head = ctc_head
        self.unk_id = unk_id
        # the most tokens (<eos> included) the decoder can produce: learned positions end; or None
        self.max_output_positions = max_output_positions
        self.output_kind: OutputKind = "softmax" if copy_gate is None else "pointer_generator"

    @property
    def output_layer(self) -> nn.Linear:
        """The map from decoder features to vocabulary logits (softmax output)."""
        return self.decoder.output_layer

    def encode(
        self, src: torch.Tensor, src_lengths: torch.Tensor, extended_ids: torch.Tensor | None = None
    ) -> EncoderOutput:
        """src (batch, src_len[, features]), src_lengths (batch,) -> EncoderOutput with attention keys
        (and, for a copying model, the source's ``extended_ids`` (batch, src_len)).

        Memory and keys are float32 (attention runs in float32): under autocast they are cast once
        here, not at every decoding step."""
        enc = self.encoder(src, src_lengths)
        keys = self.decoder.precompute_keys(enc.memory)
        if keys is not None:
            enc.keys = keys.float()
        enc.memory = enc.memory.float()
        enc.extended_ids = extended_ids
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
        gate = None if self.copy_gate is None else self.gate(features, prev_tokens)
        ctc_logits = None if self.ctc_head is None else self.ctc_head(enc.memory)
        return ModelOutput(features, attention, gate, ctc_logits, None if ctc_logits is None else enc.mask)

    def ctc_log_probs(self, enc: EncoderOutput) -> torch.Tensor:
        """(batch, src_len', V) float32 log-probabilities of the CTC head over the encoder's memory."""
        assert self.ctc_head is not None, "CTC decoding needs a model with a CTC head (model.ctc_weight > 0)"
        return torch.log_softmax(self.ctc_head(enc.memory).float(), dim=-1)

    def gate(self, features: torch.Tensor, prev_tokens: torch.Tensor) -> torch.Tensor:
        """p_gen (...) from features (..., F) and the input tokens (...), of a copying model."""
        assert self.copy_gate is not None
        inputs = torch.cat([features, self.decoder.embedding(prev_tokens).to(features.dtype)], dim=-1)
        return torch.sigmoid(self.copy_gate(inputs).float()).squeeze(-1)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.output_layer(features)

    def init_state(self, enc: EncoderOutput) -> State:
        return self.decoder.init_state(enc)

    def step(
        self,
        prev_token: torch.Tensor,
        enc: EncoderOutput,
        state: State,
        needed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """Log-probabilities (batch, vocab) of the next token, the new state, attention (batch, S);
        with ``needed`` (row indices) the log-probabilities of those rows only: the output layer,
        the largest cost of a step, runs for no other row. A copying model's vocabulary is
        extended by the source's unknown words; an extended id read back as input is <unk>."""

        def rows(t: torch.Tensor) -> torch.Tensor:
            return t if needed is None else t.index_select(0, needed)

        if self.copy_gate is None:
            features, state, attn = self._decoder_step(prev_token, enc, state)
            return torch.log_softmax(self.logits(rows(features)).float(), dim=-1), state, attn
        known = prev_token.masked_fill(prev_token >= self.output_layer.out_features, self.unk_id)
        features, state, attn = self._decoder_step(known, enc, state)
        assert attn is not None
        features, inputs = rows(features), rows(known)
        vocab_probs = torch.softmax(self.logits(features).float(), dim=-1)
        ids = rows(enc.extended_ids_for(known.size(0)))
        mixed = copy_distribution(vocab_probs, rows(attn).float(), self.gate(features, inputs), ids)
        return mixed.clamp_min(1e-30).log(), state, attn

    def _decoder_step(
        self, prev_token: torch.Tensor, enc: EncoderOutput, state: State
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """The decoder's step on the state its own ``init_state`` made (the family's state type)."""
        return self.decoder.step(prev_token, enc, state)  # type: ignore[arg-type]
