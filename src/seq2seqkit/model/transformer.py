"""The Transformer encoder and decoder (Vaswani et al., 2017): self-attention over the source;
masked self-attention, cross-attention over the memory and a feed-forward network per decoder
layer; no recurrence.

This module owns the layers (multi-head attention on ``scaled_dot_product_attention``, the
position-wise feed-forward network, the residual connection with LayerNorm, the positions) and
two stacks behind the seams the recurrent family uses. ``TransformerEncoder`` reads its source
through a frontend (``model/frontends.py``) and returns an ``EncoderOutput``.
``TransformerDecoder`` offers what ``RecurrentDecoder`` offers ``Seq2Seq``: ``precompute_keys``,
teacher forcing (``forward``), decoding (``init_state`` / ``step``, with a key/value cache per
layer in ``TransformerState``, whose ``select`` reorders it as ``DecoderState.select`` does), an
``embedding`` and an ``output_layer`` (tied to the embedding or not).

Pre-norm, x + Sublayer(LayerNorm(x)) with a LayerNorm after the last layer (Wang et al., 2019;
Xiong et al., 2020), is the default: it trains without the long warmup that the paper's
post-norm, LayerNorm(x + Sublayer(x)), needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seq2seqkit.kernels import PLAIN, Ops
from seq2seqkit.model.dropout import Dropout
from seq2seqkit.model.encoder import EncoderOutput
from seq2seqkit.model.frontends import Frontend

Norm = Literal["pre", "post"]
PositionKind = Literal["sinusoidal", "learned"]


def sinusoids(positions: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i / d_model)), PE(pos, 2i + 1) = cos(the same):
    (positions, d_model)."""
    position = torch.arange(positions, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : d_model // 2]
    return table


def scaled_init_(embedding: nn.Embedding) -> None:
    """N(0, d^-1/2) weights (zero at padding): times sqrt(d) in ``Positions`` they have unit variance,
    the size of the positions they are added to, and as a tied output layer they give logits of
    unit variance."""
    dim = embedding.embedding_dim
    nn.init.normal_(embedding.weight, std=dim**-0.5)
    if embedding.padding_idx is not None:
        nn.init.zeros_(embedding.weight[embedding.padding_idx])


class Positions(nn.Module):
    """x sqrt(d_model) + PE(offset .. offset + time - 1), then dropout (Vaswani et al., 2017, 3.4,
    3.5): PE sinusoidal, or a learned vector per position (Gehring et al., 2017)."""

    table: torch.Tensor

    def __init__(
        self, *, d_model: int, kind: PositionKind, max_positions: int, dropout: float, ops: Ops = PLAIN
    ) -> None:
        super().__init__()
        self.scale = math.sqrt(d_model)
        self.max_positions = max_positions
        self.learned = nn.Embedding(max_positions, d_model) if kind == "learned" else None
        # not saved with the model: the table is a function of its shape
        self.register_buffer("table", sinusoids(max_positions if kind == "sinusoidal" else 0, d_model), False)
        self.dropout = Dropout(dropout, ops)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """x (batch, time, d_model) at positions offset.. -> (batch, time, d_model)."""
        end = offset + x.size(1)
        if end > self.max_positions:
            raise ValueError(f"position {end - 1} is past max_positions ({self.max_positions})")
        table = self.table if self.learned is None else self.learned.weight
        return self.dropout(x * self.scale + table[offset:end].to(x.dtype))


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, causal: bool, dropout: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V written out, for the weights that SDPA does not return.

    q (batch, heads, T, d_k), k and v (batch, heads, S, d_k), mask broadcasting to (batch, heads,
    T, S), True = attend -> context (batch, heads, T, d_k), float32 weights (batch, heads, T, S)."""
    scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if causal:
        later = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(later, float("-inf"))
    weights = scores.softmax(-1)
    dropped = F.dropout(weights, dropout) if dropout > 0.0 else weights
    return dropped.to(v.dtype) @ v, weights


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1..head_h) W^O with head_i = Attention(Q W_i^Q, K W_i^K,
    V W_i^V) (Vaswani et al., 2017, 3.2.2), d_k = d_model / heads.

    Keys and values are projected apart from the queries (``keys_values``): the decoder projects
    the memory once per source and keeps its own past positions' projections in its cache."""

    def __init__(self, *, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
        self.heads, self.d_k, self.dropout = heads, d_model // heads, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.output = nn.Linear(d_model, d_model)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, d_model) -> (batch, heads, time, d_k)."""
        return x.view(x.size(0), x.size(1), self.heads, self.d_k).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, time, d_model) -> keys and values, each (batch, heads, time, d_k)."""
        keys, values = self.key_value(x).chunk(2, dim=-1)
        return self.split_heads(keys), self.split_heads(values)

    def forward(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Queries from x (rows, T, d_model) over keys and values (batch, heads, S, d_k) ->
        (rows, T, d_model), and with ``need_weights`` the weights (rows, heads, T, S), else None.

        mask: (batch, S) bool, True = a key to attend to; causal: query t sees keys 0..t (T == S).
        Rows are batch entries, or, in beam search, groups of rows / batch consecutive rows (one
        source's hypotheses) that share one entry of keys and values: a group's queries attend
        together, so that no source's keys are copied per hypothesis."""
        rows, steps = x.shape[:2]
        batch, heads, d_k = keys.size(0), self.heads, self.d_k
        q = self.split_heads(self.query(x))  # rows, H, T, d_k
        # rows, H, T, d_k -> B, G, H, T, d_k -> B, H, G*T, d_k: a group's queries side by side
        q = q.view(batch, -1, heads, steps, d_k).transpose(1, 2).reshape(batch, heads, -1, d_k)
        attn_mask = None if mask is None else mask[:, None, None, :]
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            context, weights = attention(q, keys, values, attn_mask, causal, dropout)
            weights = weights.view(batch, heads, -1, steps, weights.size(-1)).transpose(1, 2)
            weights = weights.reshape(rows, heads, steps, -1)
        else:
            context = F.scaled_dot_product_attention(q, keys, values, attn_mask, dropout, is_causal=causal)
        # B, H, G*T, d_k -> B, G, T, H, d_k -> rows, T, H * d_k: the heads side by side
        context = context.view(batch, heads, -1, steps, d_k).permute(0, 2, 3, 1, 4).reshape(rows, steps, -1)
        return self.output(context), weights


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 at each position alike (Vaswani et al., 2017, 3.3),
    with dropout on the inner activations (as the Annotated Transformer and OpenNMT-py)."""

    def __init__(self, *, d_model: int, ff_size: int, dropout: float, ops: Ops = PLAIN) -> None:
        super().__init__()
        self.inner = nn.Linear(d_model, ff_size)
        self.outer = nn.Linear(ff_size, d_model)
        self.dropout = Dropout(dropout, ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.dropout(torch.relu(self.inner(x))))


class Residual(nn.Module):
    """The connection around a sublayer: x + Dropout(Sublayer(LayerNorm(x))) for pre-norm,
    LayerNorm(x + Dropout(Sublayer(x))) for post-norm. ``normed`` gives the sublayer's input,
    ``add`` the connection's output."""

    def __init__(self, *, d_model: int, norm: Norm, dropout: float, ops: Ops = PLAIN) -> None:
        super().__init__()
        self.pre = norm == "pre"
        self.norm = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout, ops)

    def normed(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) if self.pre else x

    def add(self, x: torch.Tensor, sublayer_output: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(sublayer_output)
        return x if self.pre else self.norm(x)


@dataclass(frozen=True)
class LayerSizes:
    """What every encoder and decoder layer of a stack is built with."""

    d_model: int
    heads: int
    ff_size: int
    dropout: float
    attention_dropout: float
    norm: Norm
    ops: Ops = PLAIN

    def attention(self) -> MultiHeadAttention:
        return MultiHeadAttention(d_model=self.d_model, heads=self.heads, dropout=self.attention_dropout)

    def feed_forward(self) -> FeedForward:
        return FeedForward(d_model=self.d_model, ff_size=self.ff_size, dropout=self.dropout, ops=self.ops)

    def residual(self) -> Residual:
        return Residual(d_model=self.d_model, norm=self.norm, dropout=self.dropout, ops=self.ops)

    def final_norm(self) -> nn.Module:
        """The LayerNorm after the stack: pre-norm layers leave their output unnormalised."""
        return nn.LayerNorm(self.d_model) if self.norm == "pre" else nn.Identity()


class EncoderLayer(nn.Module):
    """Self-attention, then the feed-forward network, each inside a residual connection."""

    def __init__(self, sizes: LayerSizes) -> None:
        super().__init__()
        self.self_attention, self.self_residual = sizes.attention(), sizes.residual()
        self.feed_forward, self.ff_residual = sizes.feed_forward(), sizes.residual()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (batch, src_len, d_model), mask (batch, src_len) -> (batch, src_len, d_model)."""
        h = self.self_residual.normed(x)
        keys, values = self.self_attention.keys_values(h)
        x = self.self_residual.add(x, self.self_attention(h, keys, values, mask)[0])
        return self.ff_residual.add(x, self.feed_forward(self.ff_residual.normed(x)))


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the memory, the feed-forward network, each
    inside a residual connection."""

    def __init__(self, sizes: LayerSizes) -> None:
        super().__init__()
        self.self_attention, self.self_residual = sizes.attention(), sizes.residual()
        self.cross_attention, self.cross_residual = sizes.attention(), sizes.residual()
        self.feed_forward, self.ff_residual = sizes.feed_forward(), sizes.residual()

    def forward(
        self,
        x: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """x (rows, T, d_model) -> (rows, T, d_model), the self-attention keys and values of the
        positions so far (rows, heads, steps, d_k) each, cross-attention weights (rows, heads, T, S)
        or None.

        memory: cross-attention keys and values (batch, heads, S, d_k), memory_mask (batch, S).
        past: the cache of earlier positions (``step``, T = 1), or None for teacher forcing, where
        x holds every position and position t attends to positions 0..t."""
        h = self.self_residual.normed(x)
        keys, values = self.self_attention.keys_values(h)
        if past is not None:
            keys = torch.cat([past[0].to(keys.dtype), keys], dim=2)
            values = torch.cat([past[1].to(values.dtype), values], dim=2)
        x = self.self_residual.add(x, self.self_attention(h, keys, values, causal=past is None)[0])
        h = self.cross_residual.normed(x)
        context, weights = self.cross_attention(h, *memory, memory_mask, need_weights=need_weights)
        x = self.cross_residual.add(x, context)
        x = self.ff_residual.add(x, self.feed_forward(self.ff_residual.normed(x)))
        return x, (keys, values), weights


class TransformerEncoder(nn.Module):
    """Frontend -> (projection to d_model) -> scaled + positions -> N encoder layers."""

    def __init__(
        self,
        *,
        frontend: Frontend,
        layers: int,
        d_model: int,
        heads: int,
        ff_size: int,
        dropout: float,
        attention_dropout: float,
        norm: Norm,
        positions: PositionKind,
        max_positions: int,
        ops: Ops = PLAIN,
    ) -> None:
        super().__init__()
        self.embedding = frontend  # the name RecurrentEncoder gives its frontend
        if isinstance(frontend, nn.Module):
            for module in frontend.modules():
                if isinstance(module, nn.Embedding):
                    scaled_init_(module)
        # audio frontends give their own sizes (k stacked frames x bins); token embeddings d_model
        same = frontend.output_size == d_model
        self.projection = None if same else nn.Linear(frontend.output_size, d_model)
        self.positions = Positions(
            d_model=d_model, kind=positions, max_positions=max_positions, dropout=dropout, ops=ops
        )
        sizes = LayerSizes(d_model, heads, ff_size, dropout, attention_dropout, norm, ops)
        self.layers = nn.ModuleList(EncoderLayer(sizes) for _ in range(layers))
        self.final_norm = sizes.final_norm()
        self.output_size = d_model

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """src (batch, src_len) token ids or (batch, src_len, features) floats, src_lengths
        (batch,) -> EncoderOutput over the frontend's output positions: memory (batch, src_len',
        d_model), zero at padding, and as context its mean over the real positions (batch, d_model)."""
        x = self.embedding(src)
        if self.projection is not None:
            x = self.projection(x)
        lengths = self.embedding.output_lengths(src_lengths.to(src.device))
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]
        x = self.positions(x)
        for layer in self.layers:
            x = layer(x, mask)
        memory = self.final_norm(x).masked_fill(~mask.unsqueeze(-1), 0.0)
        context = memory.sum(1) / mask.sum(1, keepdim=True).clamp(min=1).to(memory.dtype)
        return EncoderOutput(memory=memory, mask=mask, context=context)


@dataclass
class TransformerState:
    """The decoder's cache: each layer's self-attention keys and values of the target positions
    decoded so far, per layer (rows, heads, steps, d_k). A step appends one position."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def steps(self) -> int:
        """Positions decoded so far: the next token's position."""
        return self.keys[0].size(2)

    def select(self, indices: torch.Tensor) -> TransformerState:
        """Rows ``indices`` of the cache, e.g. the surviving beam hypotheses."""
        return TransformerState(
            keys=[k.index_select(0, indices) for k in self.keys],
            values=[v.index_select(0, indices) for v in self.values],
        )


class TransformerDecoder(nn.Module):
    """Target embeddings, scaled + positions -> N decoder layers -> features (batch, T, d_model) for
    an output layer outside (tied to ``embedding.weight``, (vocab, d_model), or not).

    The attention it reports is the last layer's cross-attention averaged over its heads: the
    layer whose context the output reads last, so the one a copy distribution (pointer-generator)
    trains to point at the source word being produced; the average is a distribution over the
    source, like one head's, without depending on which head learns to align."""

    def __init__(
        self,
        *,
        vocab_size: int,
        layers: int,
        d_model: int,
        heads: int,
        ff_size: int,
        dropout: float,
        attention_dropout: float,
        norm: Norm,
        positions: PositionKind,
        max_positions: int,
        pad_id: int,
        tie_embeddings: bool = False,
        ops: Ops = PLAIN,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("a Transformer decoder needs at least one layer")
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        scaled_init_(self.embedding)
        self.output_layer = nn.Linear(d_model, vocab_size)
        if tie_embeddings:  # Press & Wolf (2017), as the paper does
            self.output_layer.weight = self.embedding.weight
        self.coverage = False  # the recurrent family's See et al. coverage has no counterpart here
        self.positions = Positions(
            d_model=d_model, kind=positions, max_positions=max_positions, dropout=dropout, ops=ops
        )
        sizes = LayerSizes(d_model, heads, ff_size, dropout, attention_dropout, norm, ops)
        stack = [DecoderLayer(sizes) for _ in range(layers)]
        self.layers = nn.ModuleList(stack)  # registered: parameters(), .to(), the state dict
        self.stack = stack  # the same modules, typed
        self.final_norm = sizes.final_norm()
        self.heads, self.d_k = heads, d_model // heads
        self.feature_size = d_model

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (batch, src_len, d_model) -> every layer's cross-attention keys and values,
        (batch, layers, 2, heads, src_len, d_k): projected once per source, for ``EncoderOutput.keys``."""
        per_layer = [torch.stack(layer.cross_attention.keys_values(memory), 1) for layer in self.stack]
        return torch.stack(per_layer, 1)

    def forward(
        self,
        prev_tokens: torch.Tensor,
        enc: EncoderOutput,
        state: TransformerState | None = None,
        teacher_forcing_ratio: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing over prev_tokens (batch, tgt_len), ``<sos> y_1 .. y_n``, all positions at
        once: features (batch, tgt_len, d_model) and the reported cross-attention (batch, tgt_len,
        src_len), float32. ``enc.keys`` holds ``precompute_keys(enc.memory)``; ``state`` (the empty
        cache of ``init_state``) and a ratio of 1 are the recurrent decoder's call, which this one
        shares (the config refuses scheduled sampling for a Transformer)."""
        assert teacher_forcing_ratio >= 1.0, "a Transformer trains with full teacher forcing"
        features, _, weights = self._layers(self.positions(self.embedding(prev_tokens)), enc, None)
        return features, weights

    def init_state(self, enc: EncoderOutput) -> TransformerState:
        """An empty cache, one row per entry of ``enc``."""
        empty = enc.memory.new_zeros(enc.memory.size(0), self.heads, 0, self.d_k)
        return TransformerState(keys=[empty] * len(self.layers), values=[empty] * len(self.layers))

    def step(
        self, prev_token: torch.Tensor, enc: EncoderOutput, state: TransformerState
    ) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """One step for prev_token (rows,): features (rows, d_model), the cache one position longer,
        the reported cross-attention (rows, src_len), float32.

        ``enc`` holds one entry per row, or, in beam search, one per source with the source's
        hypotheses as consecutive rows; ``enc.keys`` holds ``precompute_keys(enc.memory)``."""
        x = self.positions(self.embedding(prev_token).unsqueeze(1), offset=state.steps)  # rows, 1, d
        features, cache, weights = self._layers(x, enc, state)
        return features.squeeze(1), cache, weights.squeeze(1)

    def _layers(
        self, x: torch.Tensor, enc: EncoderOutput, state: TransformerState | None
    ) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """The stack over x (rows, T, d_model), all positions at once (state None) or one step."""
        assert enc.keys is not None, "enc.keys must hold the decoder's precompute_keys(enc.memory)"
        keys, values, weights = [], [], None
        last = len(self.stack) - 1
        for i, layer in enumerate(self.stack):
            past = None if state is None else (state.keys[i], state.values[i])
            memory = (enc.keys[:, i, 0], enc.keys[:, i, 1])
            x, (k, v), layer_weights = layer(x, memory, enc.mask, past, need_weights=i == last)
            keys.append(k)
            values.append(v)
            weights = layer_weights if layer_weights is not None else weights
        assert weights is not None
        return self.final_norm(x), TransformerState(keys, values), weights.mean(1)
