"""Batching: token-budget batches cover each example once, reproducibly; padding never counts."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seqkit.build import build_loss, build_model
from seq2seqkit.config import DecoderConfig, EncoderConfig, ModelConfig
from seq2seqkit.data.batching import Batch, BatchSampler, collate, pad, token_batches
from seq2seqkit.data.vocab import EOS_ID, PAD_ID, SOS_ID
from seq2seqkit.model.seq2seq import Seq2Seq


def batch_loss(model: Seq2Seq, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of a batch under teacher forcing, as training computes it."""
    return build_loss(model)(model(batch.src, batch.src_lengths, batch.tgt_in), batch, label_smoothing)


LENGTHS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=80)


def _check_batches(
    batches: list[list[int]], src_lengths: list[int], tgt_lengths: list[int], max_tokens: int
) -> None:
    """Every index exactly once; every batch of two or more within the padded-token budget."""
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(src_lengths)))
    assert all(batches), "no empty batch"
    for batch in batches:
        longest = max(max(src_lengths[i], tgt_lengths[i]) for i in batch)
        if len(batch) > 1:
            assert len(batch) * (longest + 1) <= max_tokens


@settings(max_examples=200, deadline=None, derandomize=True)
@given(lengths=LENGTHS, max_tokens=st.integers(1, 300), seed=st.integers(0, 2**32), epoch=st.integers(0, 50))
def test_sampler_yields_each_example_once_within_budget(
    lengths: list[tuple[int, int]], max_tokens: int, seed: int, epoch: int
) -> None:
    src_lengths = [s for s, _ in lengths]
    tgt_lengths = [t for _, t in lengths]
    sampler = BatchSampler(src_lengths, tgt_lengths, max_tokens, seed)
    batches = sampler.epoch(epoch)
    _check_batches(batches, src_lengths, tgt_lengths, max_tokens)
    # a pure function of (seed, epoch): a fresh sampler gives the same batches
    assert BatchSampler(src_lengths, tgt_lengths, max_tokens, seed).epoch(epoch) == batches


@settings(max_examples=100, deadline=None, derandomize=True)
@given(lengths=LENGTHS, max_tokens=st.integers(1, 300))
def test_unshuffled_batches_come_sorted_by_length(lengths: list[tuple[int, int]], max_tokens: int) -> None:
    src_lengths = [s for s, _ in lengths]
    tgt_lengths = [t for _, t in lengths]
    batches = token_batches(src_lengths, tgt_lengths, max_tokens)
    _check_batches(batches, src_lengths, tgt_lengths, max_tokens)
    keys = [(max(src_lengths[i], tgt_lengths[i]), tgt_lengths[i], src_lengths[i]) for b in batches for i in b]
    assert keys == sorted(keys)  # by the longer side first, as batches are sized


def test_speech_batches_group_utterances_of_similar_length() -> None:
    """Frames, not transcript characters, set a speech batch's padding."""
    frames, characters = [300, 100, 310, 90], [10, 10, 12, 12]
    assert token_batches(frames, characters, max_tokens=700) == [[3, 1], [0, 2]]


def test_long_example_gets_a_batch_of_its_own() -> None:
    batches = token_batches([2, 50, 2], [2, 50, 2], max_tokens=10)
    assert sorted(batches) == [[0, 2], [1]]


def test_batches_are_as_full_as_the_budget_allows() -> None:
    # 12 examples of padded size 5 with a budget of 20: exactly 3 batches of 4
    batches = token_batches([4] * 12, [3] * 12, max_tokens=20)
    assert [len(b) for b in batches] == [4, 4, 4]


def test_epochs_and_seeds_change_the_order() -> None:
    rng = random.Random(0)
    src_lengths = [rng.randint(1, 30) for _ in range(500)]
    tgt_lengths = [rng.randint(1, 30) for _ in range(500)]
    sampler = BatchSampler(src_lengths, tgt_lengths, max_tokens=200, seed=7)
    epochs = [sampler.epoch(e) for e in range(5)]
    assert len({str(batches) for batches in epochs}) == 5
    assert BatchSampler(src_lengths, tgt_lengths, 200, seed=8).epoch(0) != epochs[0]
    assert sampler.epoch(3) == epochs[3]


def test_pad() -> None:
    out = pad([[5, 6, 7], [8], [9, 10]])
    assert out.dtype == torch.long
    assert out.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID], [9, 10, PAD_ID]]


def test_collate_shapes_and_special_tokens() -> None:
    src = [[4, 5, 6], [7], [8, 9]]
    tgt = [[10, 11], [12, 13, 14, 15], [16]]
    batch = collate(src, tgt, indices=[3, 0, 7])
    assert batch.src.shape == (3, 3)
    assert batch.src_lengths.tolist() == [3, 1, 2]
    assert batch.tgt_in.shape == batch.tgt_out.shape == (3, 5)
    assert batch.indices.tolist() == [3, 0, 7]
    assert batch.tgt_in.tolist() == [
        [SOS_ID, 10, 11, PAD_ID, PAD_ID],
        [SOS_ID, 12, 13, 14, 15],
        [SOS_ID, 16, PAD_ID, PAD_ID, PAD_ID],
    ]
    assert batch.tgt_out.tolist() == [
        [10, 11, EOS_ID, PAD_ID, PAD_ID],
        [12, 13, 14, 15, EOS_ID],
        [16, EOS_ID, PAD_ID, PAD_ID, PAD_ID],
    ]
    assert batch.num_tgt_tokens == 3 + 5 + 2
    assert batch.tgt_mask.tolist() == [[i < n for i in range(5)] for n in (3, 5, 2)]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    pairs=st.lists(
        st.tuples(
            st.lists(st.integers(4, 50), min_size=1, max_size=12),
            st.lists(st.integers(4, 50), max_size=12),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_collate_properties(pairs: list[tuple[list[int], list[int]]]) -> None:
    src = [s for s, _ in pairs]
    tgt = [t for _, t in pairs]
    batch = collate(src, tgt, indices=range(len(pairs)))
    for row, (s, t) in enumerate(pairs):
        assert batch.src[row, : len(s)].tolist() == s
        assert (batch.src[row, len(s) :] == PAD_ID).all()
        assert batch.tgt_in[row, : len(t) + 1].tolist() == [SOS_ID, *t]
        assert batch.tgt_out[row, : len(t) + 1].tolist() == [*t, EOS_ID]
        assert (batch.tgt_in[row, len(t) + 1 :] == PAD_ID).all()
        assert (batch.tgt_out[row, len(t) + 1 :] == PAD_ID).all()
    assert batch.num_tgt_tokens == sum(len(t) + 1 for t in tgt)


def test_collate_without_targets() -> None:
    batch = collate([[4, 5], [6]], None, indices=[0, 1])
    assert batch.tgt_in.tolist() == [[SOS_ID], [SOS_ID]]
    assert batch.tgt_out.tolist() == [[EOS_ID], [EOS_ID]]


def _pad_columns(batch: Batch, src_extra: int, tgt_extra: int) -> Batch:
    """The same batch with extra all-padding columns on the right (src_lengths unchanged)."""

    def widen(t: torch.Tensor, extra: int) -> torch.Tensor:
        return torch.cat([t, torch.full((t.size(0), extra), PAD_ID, dtype=t.dtype)], dim=1)

    return replace(
        batch,
        src=widen(batch.src, src_extra),
        tgt_in=widen(batch.tgt_in, tgt_extra),
        tgt_out=widen(batch.tgt_out, tgt_extra),
    )


VOCAB = 20


@pytest.mark.parametrize(
    ("rnn_type", "pooling", "context", "attention", "input_feeding"),
    [
        ("lstm", "last", "attention", "general", False),
        ("gru", "mean", "attention", "bahdanau", False),
        ("lstm", "max", "attention", "dot", True),
        ("gru", "last", "every_step", "general", False),
        ("lstm", "mean", "init", "general", False),
    ],
)
def test_padding_never_counts_in_the_loss(
    rnn_type: str, pooling: str, context: str, attention: str, input_feeding: bool
) -> None:
    config = ModelConfig(
        rnn_type=rnn_type,  # type: ignore[arg-type]
        embedding_size=8,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=6, num_layers=2, bidirectional=True, pooling=pooling),  # type: ignore[arg-type]
        decoder=DecoderConfig(
            hidden_size=12,
            num_layers=1,
            context=context,  # type: ignore[arg-type]
            attention=attention,  # type: ignore[arg-type]
            input_feeding=input_feeding,
        ),
    )
    model = build_model(config, VOCAB, VOCAB).eval()
    gen = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return torch.randint(4, VOCAB, (n,), generator=gen).tolist()

    batch = collate([ids(5), ids(2), ids(7)], [ids(3), ids(6), ids(1)], indices=[0, 1, 2])
    with torch.no_grad():
        loss = batch_loss(model, batch)
        padded_loss = batch_loss(model, _pad_columns(batch, src_extra=4, tgt_extra=3))
        smoothed = batch_loss(model, batch, label_smoothing=0.1)
        padded_smoothed = batch_loss(model, _pad_columns(batch, 4, 3), label_smoothing=0.1)
    assert torch.isfinite(loss)
    torch.testing.assert_close(padded_loss, loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(padded_smoothed, smoothed, rtol=1e-5, atol=1e-6)


def test_loss_is_the_mean_over_real_target_tokens() -> None:
    config = ModelConfig(
        embedding_size=8,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=6, num_layers=1),
        decoder=DecoderConfig(hidden_size=12, num_layers=1),
    )
    model = build_model(config, VOCAB, VOCAB).eval()
    src, tgt = [[4, 5, 6], [7, 8]], [[9, 10], [11, 12, 13, 14]]
    with torch.no_grad():
        joint = batch_loss(model, collate(src, tgt, [0, 1]))
        first = batch_loss(model, collate(src[:1], tgt[:1], [0]))
        second = batch_loss(model, collate(src[1:], tgt[1:], [1]))
    # weighted by target tokens (3 and 5 with <eos>), not by rows
    torch.testing.assert_close(joint, (3 * first + 5 * second) / 8, rtol=1e-5, atol=1e-6)
