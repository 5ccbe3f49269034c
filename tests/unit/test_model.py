"""The network: step-by-step decoding equals teacher forcing, attention masks padding, shapes hold."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from seq2seqkit.build import build_model
from seq2seqkit.config import DecoderConfig, EncoderConfig, ModelConfig
from seq2seqkit.data.batching import Batch, collate
from seq2seqkit.model.seq2seq import Seq2Seq

VOCAB = 11
EMBEDDING = 8  # == decoder hidden, so that tied embeddings are allowed
ENCODER_HIDDEN = 4  # bidirectional: memory size 8 == decoder hidden, so that dot attention is allowed
DECODER_HIDDEN = 8

# (context, attention kind, input feeding): every way the source can reach the decoder
CONTEXTS = [
    ("init", "general", False),
    ("every_step", "general", False),
    *[
        ("attention", kind, feeding)
        for kind in ("bahdanau", "dot", "general", "concat")
        for feeding in (False, True)
    ],
]
VARIANTS = [
    pytest.param(
        rnn, context, kind, feeding, pooling, id=f"{rnn}-{context}-{kind}-feed{int(feeding)}-{pooling}"
    )
    for rnn in ("lstm", "gru")
    for context, kind, feeding in CONTEXTS
    for pooling in ("last", "mean", "max")
]
ATTENTION_VARIANTS = [
    pytest.param(rnn, "attention", kind, feeding, "last", id=f"{rnn}-{kind}-feed{int(feeding)}")
    for rnn in ("lstm", "gru")
    for _, kind, feeding in CONTEXTS[2:]
]


def make_model(
    rnn: str = "lstm",
    context: str = "attention",
    attention: str = "general",
    input_feeding: bool = False,
    pooling: str = "last",
    tie_embeddings: bool = False,
    dropout: float = 0.0,
) -> Seq2Seq:
    config = ModelConfig(
        rnn_type=rnn,
        embedding_size=EMBEDDING,
        dropout=dropout,
        encoder=EncoderConfig(hidden_size=ENCODER_HIDDEN, num_layers=2, bidirectional=True, pooling=pooling),
        decoder=DecoderConfig(
            hidden_size=DECODER_HIDDEN,
            num_layers=2,
            context=context,
            attention=attention,
            input_feeding=input_feeding,
            tie_embeddings=tie_embeddings,
        ),
    )
    return build_model(config, VOCAB, VOCAB).eval()


def one_layer_model(rnn: str, attention: str, input_feeding: bool, **decoder: Any) -> Seq2Seq:
    """A 1-layer encoder and decoder, with more decoder options (coverage, location...)."""
    config = ModelConfig(
        rnn_type=rnn,
        embedding_size=EMBEDDING,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=ENCODER_HIDDEN, num_layers=1),
        decoder=DecoderConfig(
            hidden_size=DECODER_HIDDEN,
            num_layers=1,
            attention=attention,
            input_feeding=input_feeding,
            **decoder,
        ),
    )
    return build_model(config, VOCAB, VOCAB).eval()


def padded_batch() -> Batch:
    """Three examples of different source and target lengths, so both sides have padding."""
    src = [[4, 5, 6, 7, 8], [9, 10], [5, 5, 6]]
    tgt = [[6, 7], [4, 5, 6, 7, 8, 9], [10, 4, 5]]
    return collate(src, tgt, [0, 1, 2])


@pytest.mark.parametrize(("rnn", "context", "attention", "input_feeding", "pooling"), VARIANTS)
def test_step_by_step_equals_teacher_forcing(
    rnn: str, context: str, attention: str, input_feeding: bool, pooling: str
) -> None:
    model = make_model(rnn, context, attention, input_feeding, pooling)
    batch = padded_batch()
    with torch.no_grad():
        output = model(batch.src, batch.src_lengths, batch.tgt_in)
        features, forced_attention = output.features, output.attention
        expected = torch.log_softmax(model.logits(features), dim=-1)

        enc = model.encode(batch.src, batch.src_lengths)
        state = model.init_state(enc)
        steps, step_attention = [], []
        for t in range(batch.tgt_in.size(1)):
            log_probs, state, attn = model.step(batch.tgt_in[:, t], enc, state)
            steps.append(log_probs)
            step_attention.append(attn)

    torch.testing.assert_close(torch.stack(steps, dim=1), expected, atol=1e-5, rtol=0)
    if context == "attention":
        torch.testing.assert_close(torch.stack(step_attention, dim=1), forced_attention, atol=1e-6, rtol=0)
    else:
        assert forced_attention is None
        assert all(a is None for a in step_attention)


@pytest.mark.parametrize(("rnn", "context", "attention", "input_feeding", "pooling"), VARIANTS)
def test_padding_does_not_change_an_example(
    rnn: str, context: str, attention: str, input_feeding: bool, pooling: str
) -> None:
    """Each example scores the same in a padded batch as alone (pooling and attention skip padding)."""
    model = make_model(rnn, context, attention, input_feeding, pooling)
    batch = padded_batch()
    with torch.no_grad():
        features = model(batch.src, batch.src_lengths, batch.tgt_in).features
        together = torch.log_softmax(model.logits(features), dim=-1)
        for row in range(3):
            n_src, n_tgt = int(batch.src_lengths[row]), int(batch.tgt_mask[row].sum())
            alone_features = model(
                batch.src[row : row + 1, :n_src],
                batch.src_lengths[row : row + 1],
                batch.tgt_in[row : row + 1, :n_tgt],
            ).features
            alone = torch.log_softmax(model.logits(alone_features), dim=-1)
            torch.testing.assert_close(together[row : row + 1, :n_tgt], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("rnn", "context", "attention", "input_feeding", "pooling"), ATTENTION_VARIANTS)
def test_attention_is_zero_on_padding_and_sums_to_one(
    rnn: str, context: str, attention: str, input_feeding: bool, pooling: str
) -> None:
    model = make_model(rnn, context, attention, input_feeding, pooling)
    batch = padded_batch()
    with torch.no_grad():
        weights = model(batch.src, batch.src_lengths, batch.tgt_in).attention
    assert weights is not None
    assert weights.shape == (3, batch.tgt_in.size(1), batch.src.size(1))
    src_mask = batch.src != 0
    padding = (~src_mask).unsqueeze(1).expand_as(weights)
    assert padding.any(), "the batch must contain source padding"
    assert torch.all(weights[padding] == 0.0)
    assert torch.all(weights[~padding] > 0.0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("rnn", "context", "attention", "input_feeding", "pooling"), VARIANTS)
def test_output_shapes(rnn: str, context: str, attention: str, input_feeding: bool, pooling: str) -> None:
    model = make_model(rnn, context, attention, input_feeding, pooling)
    batch = padded_batch()
    batch_size, src_len = batch.src.shape
    tgt_len = batch.tgt_in.size(1)
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths)
        assert enc.memory.shape == (batch_size, src_len, 2 * ENCODER_HIDDEN)
        assert enc.mask.shape == (batch_size, src_len) and enc.mask.dtype == torch.bool
        assert torch.equal(enc.mask, batch.src != 0)
        assert enc.context.shape == (batch_size, 2 * ENCODER_HIDDEN)
        assert torch.all(enc.memory[~enc.mask] == 0.0), "memory is zero at padding"
        assert (enc.keys is not None) == (context == "attention")

        output = model(batch.src, batch.src_lengths, batch.tgt_in)
        features, weights = output.features, output.attention
        assert features.shape == (batch_size, tgt_len, DECODER_HIDDEN)
        assert model.logits(features).shape == (batch_size, tgt_len, VOCAB)
        assert (weights is None) == (context != "attention")

        log_probs, state, attn = model.step(batch.tgt_in[:, 0], enc, model.init_state(enc))
        assert log_probs.shape == (batch_size, VOCAB)
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(batch_size))
        hidden = state.hidden[0] if rnn == "lstm" else state.hidden
        assert isinstance(state.hidden, tuple) == (rnn == "lstm")
        assert hidden.shape == (2, batch_size, DECODER_HIDDEN)
        if context == "attention":
            assert attn is not None and attn.shape == (batch_size, src_len)
        else:
            assert attn is None


@pytest.mark.parametrize(("context", "attention"), [("every_step", "general"), ("attention", "bahdanau")])
def test_dropout_is_off_in_eval_mode(context: str, attention: str) -> None:
    model = make_model("lstm", context, attention, dropout=0.5)
    batch = padded_batch()
    with torch.no_grad():
        first = model(batch.src, batch.src_lengths, batch.tgt_in).features
        second = model(batch.src, batch.src_lengths, batch.tgt_in).features
        assert torch.equal(first, second)
        model.train()
        noisy = model(batch.src, batch.src_lengths, batch.tgt_in).features
        assert not torch.allclose(noisy, first)


def test_state_select_reorders_rows() -> None:
    model = make_model("lstm", "attention", "general", input_feeding=True)
    batch = padded_batch()
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths)
        _, state, _ = model.step(batch.tgt_in[:, 0], enc, model.init_state(enc))
    order = torch.tensor([2, 0, 0])
    chosen = state.select(order)
    assert torch.equal(chosen.hidden[0], state.hidden[0][:, order])
    assert torch.equal(chosen.hidden[1], state.hidden[1][:, order])
    assert state.feed is not None and chosen.feed is not None
    assert torch.equal(chosen.feed, state.feed[order])
    assert torch.equal(enc.select(order).memory, enc.memory[order])


def test_tied_embeddings_share_the_weight() -> None:
    model = make_model(tie_embeddings=True)
    decoder = model.decoder
    assert decoder.output_layer.weight is decoder.embedding.weight
    with torch.no_grad():
        decoder.embedding.weight[5].fill_(0.25)
    assert torch.all(decoder.output_layer.weight[5] == 0.25)
    names = [name for name, _ in model.named_parameters()]
    assert "decoder.output_layer.weight" not in names, "one parameter, counted once"


def test_untied_embeddings_are_separate() -> None:
    decoder = make_model(tie_embeddings=False).decoder
    assert decoder.output_layer.weight is not decoder.embedding.weight


@pytest.mark.parametrize(
    ("context", "attention", "input_feeding"),
    [
        ("init", "general", False),
        ("every_step", "general", False),
        ("attention", "general", False),
        ("attention", "general", True),
        ("attention", "bahdanau", False),
    ],
)
def test_scheduled_sampling_feeds_predictions_in_training(
    context: str, attention: str, input_feeding: bool
) -> None:
    model = make_model("lstm", context, attention, input_feeding).train()
    batch = padded_batch()
    forced = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=1.0).features
    sampled = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=0.0).features
    assert sampled.shape == forced.shape
    # the first step always reads <sos>; later steps read the model's own predictions
    torch.testing.assert_close(sampled[:, 0], forced[:, 0])
    assert not torch.allclose(sampled[:, 1:], forced[:, 1:])

    mixed = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=0.5).features
    assert not torch.allclose(mixed[:, 1:], forced[:, 1:])
    mixed.sum().backward()  # gradients flow through the step loop
    assert all(p.grad is not None for p in model.decoder.rnn.parameters())


def test_scheduled_sampling_with_ratio_zero_runs_free() -> None:
    """Ratio 0: after <sos>, each input is the argmax of the previous step's logits."""
    model = make_model("gru", "attention", "general", input_feeding=True).train()
    batch = padded_batch()
    with torch.no_grad():
        sampled = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=0.0).features
        enc = model.encode(batch.src, batch.src_lengths)
        state = model.init_state(enc)
        token, expected = batch.tgt_in[:, 0], []
        for _ in range(batch.tgt_in.size(1)):
            feature, state, _ = model.decoder.step(token, enc, state)
            expected.append(feature)
            token = model.logits(feature).argmax(-1)
    torch.testing.assert_close(sampled, torch.stack(expected, dim=1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_equals_a_packed_multilayer_rnn(rnn_type: str, bidirectional: bool) -> None:
    """The per-layer, per-direction encoder over a padded batch computes exactly what one packed
    multi-layer (bi)RNN computes: the speed-up changes no number."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from seq2seqkit.model.encoder import RecurrentEncoder
    from seq2seqkit.model.frontends import TokenEmbedding
    from seq2seqkit.model.rnn import make_rnn

    torch.manual_seed(0)
    encoder = RecurrentEncoder(frontend=TokenEmbedding(20, 6, pad_id=0), hidden_size=5, num_layers=3,
                               rnn_type=rnn_type, bidirectional=bidirectional, dropout=0.0,
                               pooling="last").eval()  # fmt: skip
    reference = make_rnn(rnn_type, 6, 5, 3, 0.0, bidirectional)  # type: ignore[arg-type]
    for layer in range(3):
        directions = [("", encoder.forward_rnns[layer])]
        if bidirectional:
            directions.append(("_reverse", encoder.backward_rnns[layer]))
        for suffix, rnn in directions:
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l{layer}{suffix}").data.copy_(getattr(rnn, f"{name}_l0"))
    lengths = torch.tensor([7, 3, 1, 5])
    src = torch.randint(1, 20, (4, 7)) * (torch.arange(7)[None, :] < lengths[:, None])
    with torch.no_grad():
        ours = encoder(src, lengths)
        packed = pack_padded_sequence(encoder.embedding(src), lengths, batch_first=True, enforce_sorted=False)
        out, final = reference(packed)
        expected, _ = pad_packed_sequence(out, batch_first=True, total_length=7)
    torch.testing.assert_close(ours.memory, expected, atol=1e-6, rtol=1e-5)
    hidden = final[0] if isinstance(final, tuple) else final
    top = torch.cat(list(hidden[-(2 if bidirectional else 1) :]), dim=-1)
    torch.testing.assert_close(ours.context, top, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("rnn", "attention", "input_feeding"), [("gru", "bahdanau", False), ("lstm", "concat", True)]
)
def test_coverage_enters_the_attention_and_sums_the_weights(
    rnn: str, attention: str, input_feeding: bool
) -> None:
    """With coverage (See et al., 2017) the state carries the attention summed over the steps so
    far, the scores read it, and teacher forcing equals the step loop."""
    model = one_layer_model(rnn, attention, input_feeding, coverage=True)
    batch = padded_batch()
    with torch.no_grad():
        forced = model(batch.src, batch.src_lengths, batch.tgt_in)
        enc = model.encode(batch.src, batch.src_lengths)
        state = model.init_state(enc)
        weights = []
        for t in range(batch.tgt_in.size(1)):
            _, state, attn = model.step(batch.tgt_in[:, t], enc, state)
            weights.append(attn)
        assert state.coverage is not None
        torch.testing.assert_close(state.coverage, torch.stack(weights, dim=1).sum(1))
        torch.testing.assert_close(forced.attention, torch.stack(weights, dim=1))
        assert model.decoder.attention.coverage_layer is not None
        model.decoder.attention.coverage_layer.weight.mul_(10)  # the scores depend on coverage
        changed = model(batch.src, batch.src_lengths, batch.tgt_in).attention
    assert not torch.allclose(changed[:, 1:], forced.attention[:, 1:], atol=1e-4)
    torch.testing.assert_close(changed[:, 0], forced.attention[:, 0])  # no coverage yet at step 1


@pytest.mark.parametrize(
    ("rnn", "attention", "input_feeding"), [("lstm", "bahdanau", False), ("gru", "concat", True)]
)
def test_location_aware_attention_reads_the_previous_weights(
    rnn: str, attention: str, input_feeding: bool
) -> None:
    """Location-aware attention (Chorowski et al., 2015): the state carries the last step's weights
    (uniform over the source at the start), the scores read them through the convolution, and
    teacher forcing equals the step loop."""
    model = one_layer_model(rnn, attention, input_feeding, location=True, location_width=4)
    batch = padded_batch()
    with torch.no_grad():
        forced = model(batch.src, batch.src_lengths, batch.tgt_in)
        enc = model.encode(batch.src, batch.src_lengths)
        state = model.init_state(enc)
        assert state.previous is not None
        torch.testing.assert_close(state.previous.sum(1), torch.ones(len(batch.src_lengths)))
        assert (state.previous[~enc.mask] == 0).all()
        weights = []
        for t in range(batch.tgt_in.size(1)):
            _, state, attn = model.step(batch.tgt_in[:, t], enc, state)
            weights.append(attn)
            torch.testing.assert_close(state.previous, attn)
        torch.testing.assert_close(forced.attention, torch.stack(weights, dim=1))
        model.decoder.attention.location_layer.weight.mul_(10)  # the scores depend on the location
        changed = model(batch.src, batch.src_lengths, batch.tgt_in).attention
    assert not torch.allclose(changed[:, 1:], forced.attention[:, 1:], atol=1e-4)


def test_copying_model_step_equals_the_teacher_forced_mixture() -> None:
    """A pointer-generator's step gives log of the same mixture that training computes, over the
    vocabulary extended by the source's unknown words; an extended id read back is <unk>."""
    from seq2seqkit.model.seq2seq import copy_distribution

    config = ModelConfig(
        embedding_size=EMBEDDING,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=ENCODER_HIDDEN, num_layers=1),
        decoder=DecoderConfig(hidden_size=DECODER_HIDDEN, num_layers=1, input_feeding=True, copy=True),
    )
    model = build_model(config, VOCAB, VOCAB).eval()
    assert model.output_kind == "pointer_generator" and not model.decoder.feeds_by_hand
    batch = padded_batch()
    extended = torch.where(batch.src == 5, VOCAB, batch.src)  # pretend id 5 is an unknown word
    with torch.no_grad():
        output = model(batch.src, batch.src_lengths, batch.tgt_in)
        enc = model.encode(batch.src, batch.src_lengths, extended)
        state = model.init_state(enc)
        for t in range(batch.tgt_in.size(1)):
            log_probs, state, _ = model.step(batch.tgt_in[:, t], enc, state)
            vocab_probs = torch.softmax(model.logits(output.features[:, t]), dim=-1)
            mixed = copy_distribution(vocab_probs, output.attention[:, t], output.copy_gate[:, t], extended)
            torch.testing.assert_close(log_probs, mixed.clamp_min(1e-30).log(), atol=1e-5, rtol=1e-5)
        assert log_probs.size(-1) == VOCAB + 1
        again, _, _ = model.step(torch.full((3,), VOCAB), enc, state)  # the copied word as input
        unk, _, _ = model.step(torch.full((3,), 1), enc, state)
        torch.testing.assert_close(again, unk)


@pytest.mark.parametrize("copy", [False, True])
def test_step_for_some_rows_gives_those_rows_of_the_full_step(copy: bool) -> None:
    """``step(..., needed)`` (beam search skips finished hypotheses' output layer) returns the
    needed rows of what the full step returns, and the same state for every row."""
    config = ModelConfig(
        embedding_size=EMBEDDING,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=ENCODER_HIDDEN, num_layers=1),
        decoder=DecoderConfig(hidden_size=DECODER_HIDDEN, num_layers=1, copy=copy),
    )
    model = build_model(config, VOCAB, VOCAB).eval()
    batch = padded_batch()
    extended = torch.where(batch.src == 5, VOCAB, batch.src) if copy else None
    needed = torch.tensor([0, 2])
    with torch.no_grad():
        enc = model.encode(batch.src, batch.src_lengths, extended)
        state = model.init_state(enc)
        for t in range(batch.tgt_in.size(1)):
            full, full_state, _ = model.step(batch.tgt_in[:, t], enc, state)
            some, state, _ = model.step(batch.tgt_in[:, t], enc, state, needed)
            assert some.shape == (2, full.size(1))
            torch.testing.assert_close(some, full[needed], atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(state.hidden, full_state.hidden, atol=0, rtol=0)


def test_field_match_marks_the_last_fields_repeats_of_the_first_fields() -> None:
    """DrQA's exact-match feature: 0 in the first fields and at padding, 1 in the last field, 2
    where a last-field token also occurs in the first fields (never for the common ids)."""
    from seq2seqkit.model.frontends import FieldMatchEmbedding

    sep, pad = 9, 0
    frontend = FieldMatchEmbedding(20, 4, pad, separator_id=sep, common=6)
    src = torch.tensor(
        [
            [7, 5, 12, sep, 12, 13, 5, 7, pad],  # 5 is common: in both fields, still no match
            [14, sep, 15, sep, 14, 15, 16, pad, pad],  # three fields: the first two are the query
            [12, 13, 12, pad, pad, pad, pad, pad, pad],  # one field: nothing to match
        ]
    )
    expected = torch.tensor(
        [
            [0, 0, 0, 0, 2, 1, 1, 2, 0],
            [0, 0, 0, 0, 2, 2, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
    )
    torch.testing.assert_close(frontend.field_features(src), expected)
    embedded = frontend(src)
    torch.testing.assert_close(embedded[0, 4], frontend.weight[12] + frontend.field.weight[2])
    torch.testing.assert_close(embedded[0, 2], frontend.weight[12] + frontend.field.weight[0])


def test_normalised_field_match_matches_case_and_word_boundary_variants() -> None:
    """encoder.field_match_normalized: "▁The", "The" and "the" match one another, a bare "▁" never
    matches, and keys of a common text stay common whichever variant is rarer."""
    from seq2seqkit.build import match_keys
    from seq2seqkit.data.vocab import SPECIALS, Vocabulary
    from seq2seqkit.model.frontends import FieldMatchEmbedding

    tokens = [*SPECIALS, "<sep>", "▁the", "▁Paris", "paris", "▁", "The", "▁river", "Rivers"]
    vocab = Vocabulary(tokens)
    ids = vocab.index
    keys = match_keys(vocab)
    assert keys[ids["The"]] == keys[ids["▁the"]] == ids["▁the"]
    assert keys[ids["paris"]] == ids["▁Paris"]
    assert keys[ids["▁"]] == 0 and keys[ids["Rivers"]] == ids["Rivers"]
    sep = ids["<sep>"]
    common = ids["▁the"] + 1  # "the" is common: its rarer variant "The" must not match either
    plain = FieldMatchEmbedding(len(tokens), 4, 0, separator_id=sep, common=common)
    normalised = FieldMatchEmbedding(len(tokens), 4, 0, separator_id=sep, common=common, keys=keys)
    text = ["The", "▁Paris", "▁", "▁river", "<sep>", "paris", "▁", "▁the", "Rivers"]
    src = torch.tensor([[ids[token] for token in text]])
    # by id, only the bare mark "▁" matches; normalised, "paris" matches "▁Paris" and "▁" nothing
    torch.testing.assert_close(plain.field_features(src), torch.tensor([[0, 0, 0, 0, 0, 1, 2, 1, 1]]))
    torch.testing.assert_close(normalised.field_features(src), torch.tensor([[0, 0, 0, 0, 0, 2, 1, 1, 1]]))
