"""The Transformer layers: SDPA equals the written-out formula, step-by-step decoding with the cache
equals teacher forcing, ``select`` reorders the cache, padding changes nothing, a tiny model
learns to copy."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from seq2seqkit.model.encoder import EncoderOutput
from seq2seqkit.model.frontends import FrameStacking, TokenEmbedding
from seq2seqkit.model.transformer import (
    MultiHeadAttention,
    Norm,
    PositionKind,
    TransformerDecoder,
    TransformerEncoder,
    TransformerState,
)

VOCAB, D_MODEL, HEADS = 13, 16, 4
PAD, SOS, EOS = 0, 2, 3
VARIANTS = [
    pytest.param(norm, positions, id=f"{norm}-{positions}")
    for norm in ("pre", "post")
    for positions in ("sinusoidal", "learned")
]


def make_pair(
    norm: Norm = "pre",
    positions: PositionKind = "sinusoidal",
    dropout: float = 0.0,
    d_model: int = D_MODEL,
    layers: int = 2,
) -> tuple[TransformerEncoder, TransformerDecoder]:
    sizes: dict[str, Any] = dict(
        layers=layers,
        d_model=d_model,
        heads=HEADS,
        ff_size=2 * d_model,
        dropout=dropout,
        attention_dropout=dropout,
        norm=norm,
        positions=positions,
        max_positions=32,
    )
    encoder = TransformerEncoder(frontend=TokenEmbedding(VOCAB, d_model, PAD), **sizes)
    decoder = TransformerDecoder(vocab_size=VOCAB, pad_id=PAD, **sizes)
    return encoder.eval(), decoder.eval()


def encode(encoder: TransformerEncoder, decoder: TransformerDecoder, src: torch.Tensor) -> EncoderOutput:
    """What Seq2Seq.encode does: the memory, and the decoder's cross-attention keys beside it."""
    lengths = (src != PAD).sum(1)
    enc = encoder(src, lengths)
    enc.keys = decoder.precompute_keys(enc.memory)
    return enc


def tokens(rows: int, length: int) -> torch.Tensor:
    return torch.randint(4, VOCAB, (rows, length))


def steps(
    decoder: TransformerDecoder,
    enc: EncoderOutput,
    tgt_in: torch.Tensor,
    state: TransformerState | None = None,
) -> tuple[torch.Tensor, torch.Tensor, TransformerState]:
    """Decode tgt_in (rows, T) one step at a time: features (rows, T, d), attention (rows, T, S)."""
    state = decoder.init_state(enc) if state is None else state
    features, weights = [], []
    for t in range(tgt_in.size(1)):
        feature, state, attn = decoder.step(tgt_in[:, t], enc, state)
        features.append(feature)
        weights.append(attn)
    return torch.stack(features, 1), torch.stack(weights, 1), state


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_equals_the_written_out_formula(causal: bool) -> None:
    mha = MultiHeadAttention(d_model=D_MODEL, heads=HEADS, dropout=0.0)
    x, memory = torch.randn(3, 5, D_MODEL), torch.randn(3, 5, D_MODEL)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    keys, values = mha.keys_values(memory)
    fast, _ = mha(x, keys, values, mask, causal=causal)
    written, weights = mha(x, keys, values, mask, causal=causal, need_weights=True)

    # per head: softmax(Q K^T / sqrt(d_k)) V over the allowed keys, heads side by side, then W^O
    d_k = D_MODEL // HEADS
    q = mha.query(x).view(3, 5, HEADS, d_k)
    k, v = (t.view(3, 5, HEADS, d_k) for t in mha.key_value(memory).chunk(2, dim=-1))
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(d_k)
    allowed = mask[:, None, None, :] & (torch.ones(5, 5).tril().bool() if causal else True)
    expected_weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    heads = torch.einsum("bhts,bshd->bthd", expected_weights, v).reshape(3, 5, D_MODEL)
    expected = mha.output(heads)

    torch.testing.assert_close(fast, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(written, expected, atol=1e-6, rtol=1e-5)
    assert weights is not None
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("norm", "positions"), VARIANTS)
def test_step_by_step_equals_teacher_forcing(norm: Norm, positions: PositionKind) -> None:
    encoder, decoder = make_pair(norm, positions)
    src = tokens(3, 6)
    src[1, 4:], src[2, 2:] = PAD, PAD
    enc = encode(encoder, decoder, src)
    tgt_in = torch.cat([torch.full((3, 1), SOS), tokens(3, 4)], dim=1)
    with torch.no_grad():
        features, attention = decoder(tgt_in, enc)
        step_features, step_attention, state = steps(decoder, enc, tgt_in)
    assert features.shape == (3, 5, D_MODEL) and attention.shape == (3, 5, 6)
    assert state.steps == 5 and state.keys[0].shape == (3, HEADS, 5, D_MODEL // HEADS)
    torch.testing.assert_close(step_features, features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(step_attention, attention, atol=1e-5, rtol=1e-5)
    # the reported attention is a distribution over each source's real tokens
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 5))
    assert (attention[2, :, 2:] == 0).all()


@pytest.mark.parametrize(("norm", "positions"), VARIANTS)
def test_every_variant_trains(norm: Norm, positions: PositionKind) -> None:
    """Training mode (dropout on) runs forward and backward, and reaches every parameter."""
    encoder, decoder = make_pair(norm, positions, dropout=0.1)
    encoder.train(), decoder.train()
    enc = encode(encoder, decoder, tokens(2, 5))
    features, attention = decoder(tokens(2, 4), enc)
    (features.square().mean() + attention.mean()).backward()
    for name, parameter in [*encoder.named_parameters(), *decoder.named_parameters()]:
        if name.startswith("output_layer"):  # past the features this test reads
            continue
        assert parameter.grad is not None and parameter.grad.isfinite().all(), name
    learned = any("positions.learned" in name for name, _ in decoder.named_parameters())
    assert learned == (positions == "learned")
    assert not any("table" in name for name in decoder.state_dict())  # sinusoids are not saved


def test_select_reorders_and_repeats_cache_rows() -> None:
    encoder, decoder = make_pair()
    src, tgt = tokens(3, 5), tokens(3, 3)
    order = torch.tensor([2, 0, 0, 1])
    with torch.no_grad():
        enc = encode(encoder, decoder, src)
        _, _, state = steps(decoder, enc, tgt[:, :2])
        enc_rows, state_rows = enc.select(order), state.select(order)
        features, attn, _ = steps(decoder, enc_rows, tgt[order, 2:], state_rows)
        # the same rows decoded from scratch
        expected, expected_attn, _ = steps(decoder, encode(encoder, decoder, src[order]), tgt[order])
    torch.testing.assert_close(features[:, 0], expected[:, 2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attn[:, 0], expected_attn[:, 2], atol=1e-5, rtol=1e-5)


def test_select_under_beam_search_grouping() -> None:
    """One encoder entry per source, its K hypotheses as K consecutive cache rows (as search.py
    keeps them): after rows are reordered within each source, a step equals decoding each
    hypothesis alone from scratch."""
    encoder, decoder = make_pair()
    src = tokens(2, 5)
    src[1, 3:] = PAD
    k = 3
    first = tokens(2 * k, 2)
    rows = torch.tensor([1, 1, 0, 5, 3, 4])  # the hypotheses each new row continues
    following = tokens(2 * k, 1)
    with torch.no_grad():
        enc = encode(encoder, decoder, src)
        state = decoder.init_state(enc).select(torch.arange(2).repeat_interleave(k))
        _, _, state = steps(decoder, enc, first, state)
        features, attn, _ = steps(decoder, enc, following, state.select(rows))
        for row in range(2 * k):
            alone = encode(encoder, decoder, src[row // k : row // k + 1])
            history = torch.cat([first[rows[row]], following[row]]).unsqueeze(0)
            expected, expected_attn, _ = steps(decoder, alone, history)
            torch.testing.assert_close(features[row, 0], expected[0, -1], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(attn[row, 0], expected_attn[0, -1], atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_a_sentence() -> None:
    encoder, decoder = make_pair()
    src, tgt = tokens(3, 7), tokens(3, 6)
    src[0, 4:], tgt[0, 3:] = PAD, PAD  # sentence 0: 4 source and 3 target tokens, padded
    with torch.no_grad():
        batch = encode(encoder, decoder, src)
        features, attention = decoder(tgt, batch)
        alone = encode(encoder, decoder, src[:1, :4])
        alone_features, alone_attention = decoder(tgt[:1, :3], alone)
    torch.testing.assert_close(batch.memory[:1, :4], alone.memory, atol=1e-5, rtol=1e-5)
    assert (batch.memory[0, 4:] == 0).all()
    torch.testing.assert_close(batch.context[:1], alone.context, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features[:1, :3], alone_features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention[:1, :3, :4], alone_attention, atol=1e-5, rtol=1e-5)


def test_an_audio_frontend_feeds_the_encoder() -> None:
    """Stacked frames (k x bins wide) are projected to d_model; lengths follow the frontend."""
    encoder = TransformerEncoder(
        frontend=FrameStacking(bins=5, k=3),
        layers=1,
        d_model=D_MODEL,
        heads=HEADS,
        ff_size=32,
        dropout=0.0,
        attention_dropout=0.0,
        norm="pre",
        positions="sinusoidal",
        max_positions=16,
    )
    enc = encoder(torch.randn(2, 10, 5), torch.tensor([10, 4]))
    assert enc.memory.shape == (2, 4, D_MODEL) and enc.context.shape == (2, D_MODEL)
    assert enc.mask.sum(1).tolist() == [4, 2]


def test_positions_past_the_limit_are_refused() -> None:
    encoder, decoder = make_pair()
    enc = encode(encoder, decoder, tokens(1, 3))
    with pytest.raises(ValueError, match="max_positions"):
        decoder(tokens(1, 33), enc)


class Copier(nn.Module):
    """Encoder, decoder and an output layer tied to the target embeddings."""

    def __init__(self, layers: int = 1) -> None:
        super().__init__()
        self.encoder, self.decoder = make_pair(d_model=32, layers=layers)
        self.output = nn.Linear(32, VOCAB)
        self.output.weight = self.decoder.embedding.weight

    def encode(self, src: torch.Tensor) -> EncoderOutput:
        return encode(self.encoder, self.decoder, src)


def copy_batch(rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sources of 3-6 tokens, padded; tgt_in <sos> x, tgt_out x <eos>."""
    lengths = torch.randint(3, 7, (rows,))
    src = tokens(rows, 6).masked_fill(torch.arange(6) >= lengths[:, None], PAD)
    tgt_in = torch.cat([torch.full((rows, 1), SOS), src], dim=1)
    tgt_out = torch.cat([src, torch.full((rows, 1), PAD)], dim=1)
    tgt_out[torch.arange(rows), lengths] = EOS
    return src, tgt_in, tgt_out


def test_a_tiny_transformer_learns_to_copy() -> None:
    model = Copier().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        src, tgt_in, tgt_out = copy_batch(32)
        features, _ = model.decoder(tgt_in, model.encode(src))
        loss = nn.functional.cross_entropy(model.output(features).transpose(1, 2), tgt_out, ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()
    src, _, tgt_out = copy_batch(50)
    with torch.no_grad():
        enc = model.encode(src)
        state, prev, predicted = model.decoder.init_state(enc), torch.full((50,), SOS), []
        for _ in range(tgt_out.size(1)):
            features, state, _ = model.decoder.step(prev, enc, state)
            prev = model.output(features).argmax(-1)
            predicted.append(prev)
    real = tgt_out != PAD
    accuracy = (torch.stack(predicted, 1) == tgt_out)[real].float().mean().item()
    assert accuracy > 0.9, accuracy  # 0.96-0.99 over seeds 0-3
