"""Search: beam 1 equals greedy, bigger beams score at least as well, limits and n-best hold."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch

from seq2seqkit.build import build_loss, build_model
from seq2seqkit.config import DecoderConfig, EncoderConfig, ModelConfig, TransformerConfig
from seq2seqkit.data.batching import Batch, collate
from seq2seqkit.data.vocab import EOS_ID, PAD_ID, SOS_ID
from seq2seqkit.decoding.generate import generate_ids
from seq2seqkit.decoding.search import (
    INSIDE_A_WORD,
    Hypothesis,
    SourceSpans,
    Span,
    beam_search,
    coverage_penalty,
    greedy_search,
    length_penalty,
)
from seq2seqkit.model.seq2seq import Seq2Seq


def batch_loss(model: Seq2Seq, batch: Batch, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of a batch under teacher forcing, as training computes it."""
    return build_loss(model)(model(batch.src, batch.src_lengths, batch.tgt_in), batch, label_smoothing)


LETTERS = list(range(4, 10))  # six "letters" after the four special ids
VOCAB = 10
VARIANTS = {
    "lstm-general": ("lstm", "attention", "general", False),
    "gru-bahdanau": ("gru", "attention", "bahdanau", False),
    "lstm-concat-feeding": ("lstm", "attention", "concat", True),
    "gru-every_step": ("gru", "every_step", "general", False),
    "lstm-init": ("lstm", "init", "general", False),
    "gru-bahdanau-coverage": ("gru", "attention", "bahdanau", False),
    "lstm-concat-feeding-location": ("lstm", "attention", "concat", True),
    "transformer": ("lstm", "attention", "general", False),  # architecture: transformer
}
TINY_TRANSFORMER = TransformerConfig(
    encoder_layers=1, decoder_layers=2, d_model=16, heads=2, ff_size=32, dropout=0.0, attention_dropout=0.0
)


def make_model(variant: str) -> Seq2Seq:
    rnn, context, attention, feeding = VARIANTS[variant]
    config = ModelConfig(
        rnn_type=rnn,
        embedding_size=16,
        dropout=0.0,
        encoder=EncoderConfig(hidden_size=16, num_layers=1, bidirectional=True),
        decoder=DecoderConfig(
            hidden_size=32,
            num_layers=1,
            context=context,
            attention=attention,
            input_feeding=feeding,
            coverage=variant.endswith("coverage"),
            location=variant.endswith("location"),
            location_width=5,
        ),
    )
    if variant == "transformer":
        config = dataclasses.replace(config, architecture="transformer", transformer=TINY_TRANSFORMER)
    return build_model(config, VOCAB, VOCAB).eval()


def random_sources(count: int, seed: int, min_length: int = 1, max_length: int = 6) -> list[list[int]]:
    rng = random.Random(seed)
    return [rng.choices(LETTERS, k=rng.randint(min_length, max_length)) for _ in range(count)]


def train_briefly(model: Seq2Seq, steps: int = 150) -> Seq2Seq:
    """A few Adam steps on reversal: enough to make <eos> and real choices likely."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for step in range(steps):
        src = random_sources(32, seed=1000 + step, min_length=2)
        batch = collate(src, [s[::-1] for s in src], range(len(src)))
        loss = batch_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> dict[str, Seq2Seq]:
    torch.manual_seed(0)
    return {variant: train_briefly(make_model(variant)) for variant in VARIANTS}


@pytest.fixture(params=["random", "trained"])
def model_of(request: pytest.FixtureRequest, trained: dict[str, Seq2Seq]):
    """A function variant -> model, randomly initialized or briefly trained."""
    if request.param == "trained":
        return lambda variant: trained[variant]
    return make_model


def padded(sources: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(sources, None, range(len(sources)))
    return batch.src, batch.src_lengths


def limits(sources: list[list[int]]) -> torch.Tensor:
    return torch.tensor([2 * len(s) + 3 for s in sources])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_beam_one_equals_greedy(variant: str, model_of) -> None:
    model = model_of(variant)
    sources = random_sources(8, seed=7)
    src, lengths = padded(sources)
    greedy = greedy_search(model, src, lengths, limits(sources))
    beam = beam_search(model, src, lengths, limits(sources), beam_size=1)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert b.token_ids == g.token_ids
        assert b.score == g.score  # the same additions in the same order
        if g.attention is None:
            assert b.attention is None
        else:
            assert torch.equal(b.attention, g.attention)


def test_trained_model_produces_real_outputs(trained: dict[str, Seq2Seq]) -> None:
    """The briefly trained models stop on their own, so the comparisons above are not vacuous."""
    sources = random_sources(8, seed=7, min_length=2)
    src, lengths = padded(sources)
    for variant, model in trained.items():
        found = greedy_search(model, src, lengths, limits(sources))
        assert all(len(h.token_ids) + 1 < limit for h, limit in zip(found, limits(sources), strict=True))
        if VARIANTS[variant][1] == "attention":
            assert sum(h.token_ids == s[::-1] for h, s in zip(found, sources, strict=True)) >= 4


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_wider_beam_scores_at_least_as_well_as_greedy(variant: str, model_of) -> None:
    model = model_of(variant)
    sources = random_sources(8, seed=11)
    src, lengths = padded(sources)
    greedy = greedy_search(model, src, lengths, limits(sources))
    beam = beam_search(model, src, lengths, limits(sources), beam_size=5, alpha=0.0)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert b.score >= g.score - 1e-5


def exhaustive_beam(
    model: Seq2Seq, source: list[int], k: int, max_length: int, alpha: float
) -> list[Hypothesis]:
    """Reference beam search for one source, one hypothesis at a time in plain Python, run until
    every beam has finished: the slow, obvious version that early stopping must agree with.
    Returns the k final hypotheses, best first by length-penalized score."""
    src, lengths = padded([source])
    enc = model.encode(src, lengths)
    enc = enc.select(torch.zeros(k, dtype=torch.long))
    state = model.init_state(enc)
    beams = [([], 0.0, False)] + [([], -math.inf, False)] * (k - 1)  # tokens, score, finished
    prev = torch.full((k,), SOS_ID)
    for step in range(max_length):
        with torch.no_grad():
            log_probs, state, _ = model.step(prev, enc, state)
        allowed = [v for v in range(VOCAB) if v not in (PAD_ID, SOS_ID)]
        if step + 1 >= max_length:
            allowed = [EOS_ID]
        candidates = []
        for i, (_, score, finished) in enumerate(beams):
            if finished:
                candidates.append((score, i, PAD_ID))
            else:
                candidates += [(score + float(log_probs[i, v]), i, v) for v in allowed]
        top = sorted(candidates, key=lambda c: c[0], reverse=True)[:k]
        beams = [
            (beams[i][0] + ([] if beams[i][2] else [v]), score, beams[i][2] or v == EOS_ID)
            for score, i, v in top
        ]
        state = state.select(torch.tensor([i for _, i, _ in top]))
        prev = torch.tensor([v for _, _, v in top])
        if all(finished for _, _, finished in beams):
            break
    beams.sort(key=lambda b: b[1] / float(length_penalty(torch.tensor(len(b[0])), alpha)), reverse=True)
    return [Hypothesis([t for t in tokens if t != EOS_ID], score, None) for tokens, score, _ in beams]


@pytest.mark.parametrize("nbest", [1, 3])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("variant", ["lstm-general", "lstm-concat-feeding", "gru-every_step"])
def test_beam_search_stops_early_without_changing_the_result(
    variant: str, alpha: float, nbest: int, model_of
) -> None:
    """A source leaves the batch once no unfinished hypothesis can beat its n best: the n best
    are those of running every beam to the end."""
    model = model_of(variant)
    sources = random_sources(8, seed=19, min_length=2)
    src, lengths = padded(sources)
    found = beam_search(model, src, lengths, limits(sources), beam_size=4, alpha=alpha, nbest=nbest)
    for hyps, source, limit in zip(found, sources, limits(sources).tolist(), strict=True):
        reference = exhaustive_beam(model, source, 4, limit, alpha)[:nbest]
        assert [h.token_ids for h in hyps] == [h.token_ids for h in reference]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in reference], abs=1e-4)


class EveryRow:
    """A model that computes every row's log-probabilities and then hands search the rows it
    asked for: beam search as it was before finished hypotheses skipped the output layer."""

    def __init__(self, model: Seq2Seq) -> None:
        self.model = model

    def encode(self, src, src_lengths, extended_ids=None):
        return self.model.encode(src, src_lengths, extended_ids)

    def init_state(self, enc):
        return self.model.init_state(enc)

    def step(self, prev_token, enc, state, needed=None):
        log_probs, state, attn = self.model.step(prev_token, enc, state)
        return log_probs if needed is None else log_probs[needed], state, attn


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_finished_hypotheses_skip_the_output_layer_without_changing_the_result(
    alpha: float, trained: dict[str, Seq2Seq]
) -> None:
    model = trained["lstm-concat-feeding"]
    sources = random_sources(16, seed=23, min_length=2)
    src, lengths = padded(sources)
    rows = {"decoder": 0, "output layer": 0}
    hooks = [
        model.decoder.combine.register_forward_hook(
            lambda _m, _i, out: rows.__setitem__("decoder", rows["decoder"] + out.size(0))
        ),
        model.output_layer.register_forward_hook(
            lambda _m, inputs, _o: rows.__setitem__("output layer", rows["output layer"] + inputs[0].size(0))
        ),
    ]
    found = beam_search(model, src, lengths, limits(sources), beam_size=4, alpha=alpha, nbest=2)
    for hook in hooks:
        hook.remove()
    assert rows["output layer"] < rows["decoder"]  # some rows were finished hypotheses
    reference = beam_search(EveryRow(model), src, lengths, limits(sources), beam_size=4, alpha=alpha, nbest=2)
    for hyps, expected in zip(found, reference, strict=True):
        assert [h.token_ids for h in hyps] == [h.token_ids for h in expected]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in expected], abs=1e-5)


def test_beam_search_rejects_what_it_cannot_do() -> None:
    model = make_model("lstm-general")
    src, lengths = padded([[4, 5]])
    with pytest.raises(ValueError, match="nbest"):
        beam_search(model, src, lengths, torch.tensor([5]), beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="length penalty"):
        beam_search(model, src, lengths, torch.tensor([5]), beam_size=2, alpha=-0.5)


def score_of(model: Seq2Seq, source: list[int], output: list[int]) -> float:
    """log p(output <eos> | source) under teacher forcing."""
    batch = collate([source], [output], [0])
    with torch.no_grad():
        features = model(batch.src, batch.src_lengths, batch.tgt_in).features
        log_probs = torch.log_softmax(model.logits(features), dim=-1)
    return float(log_probs[0].gather(1, batch.tgt_out[0].unsqueeze(1)).sum())


@pytest.mark.parametrize("variant", ["lstm-general", "gru-every_step"])
def test_scores_are_the_log_probability_of_the_output(variant: str, trained: dict[str, Seq2Seq]) -> None:
    model = trained[variant]
    sources = random_sources(4, seed=5, min_length=2)
    src, lengths = padded(sources)
    for source, hyps in zip(
        sources, beam_search(model, src, lengths, limits(sources), 3, nbest=3), strict=True
    ):
        for hyp in hyps:
            assert hyp.score == pytest.approx(score_of(model, source, hyp.token_ids), abs=1e-4)


def suppress_eos(model: Seq2Seq) -> Seq2Seq:
    with torch.no_grad():
        model.decoder.output_layer.bias[EOS_ID] = -1e4
    return model


@pytest.mark.parametrize("beam_size", [1, 4])
def test_max_lengths_are_respected(beam_size: int) -> None:
    model = suppress_eos(make_model("lstm-general"))  # never stops on its own
    sources = random_sources(5, seed=3)
    src, lengths = padded(sources)
    max_lengths = torch.tensor([1, 2, 5, 7, 3])
    if beam_size == 1:
        found = greedy_search(model, src, lengths, max_lengths)
    else:
        found = [hyps[0] for hyps in beam_search(model, src, lengths, max_lengths, beam_size)]
    # the limit counts <eos>, which is forced at the last allowed step
    assert [len(h.token_ids) for h in found] == [0, 1, 4, 6, 2]
    assert all(EOS_ID not in h.token_ids for h in found)


def force_eos(model: Seq2Seq) -> Seq2Seq:
    with torch.no_grad():
        model.decoder.output_layer.bias[EOS_ID] = 1e4
    return model


@pytest.mark.parametrize("beam_size", [1, 3])
def test_absolute_output_lengths(beam_size: int) -> None:
    """decoding.min_output_len holds <eos> back; decoding.max_output_len caps beside the ratio."""
    sources = random_sources(4, seed=5, min_length=3)
    eager = force_eos(make_model("gru-bahdanau"))  # would stop at once
    assert {len(h[0].token_ids) for h in generate_ids(eager, sources, beam_size=beam_size)} == {0}
    held = generate_ids(eager, sources, beam_size=beam_size, min_length=3)
    assert {len(h[0].token_ids) for h in held} == {3}
    endless = suppress_eos(make_model("gru-bahdanau"))
    capped = generate_ids(endless, sources, beam_size=beam_size, max_length=2, max_length_offset=10)
    assert {len(h[0].token_ids) for h in capped} == {2}


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_nbest_is_distinct_and_sorted_by_penalized_score(alpha: float, trained: dict[str, Seq2Seq]) -> None:
    model = trained["lstm-general"]
    sources = random_sources(6, seed=13, min_length=2)
    src, lengths = padded(sources)
    found = beam_search(model, src, lengths, limits(sources), beam_size=5, alpha=alpha, nbest=5)
    best_only = beam_search(model, src, lengths, limits(sources), beam_size=5, alpha=alpha, nbest=1)
    for hyps, (best,) in zip(found, best_only, strict=True):
        assert len(hyps) == 5
        assert len({tuple(h.token_ids) for h in hyps}) == 5
        assert all(math.isfinite(h.score) for h in hyps)
        ranked = [h.score / float(length_penalty(torch.tensor(len(h.token_ids) + 1), alpha)) for h in hyps]
        assert ranked == sorted(ranked, reverse=True)
        assert hyps[0].token_ids == best.token_ids


def test_nbest_never_invents_impossible_hypotheses() -> None:
    model = make_model("lstm-general")
    src, lengths = padded([[4, 5]])
    # a limit of 1 allows exactly one output: <eos> at once
    (hyps,) = beam_search(model, src, lengths, torch.tensor([1]), beam_size=3, nbest=3)
    assert all(math.isfinite(h.score) for h in hyps)
    assert all(h.token_ids == [] for h in hyps)


def test_coverage_penalty_follows_wu_et_al() -> None:
    coverage = torch.tensor([[0.5, 1.5, 0.0], [0.25, 0.25, 0.5]])  # the first source has 2 positions
    penalty = coverage_penalty(coverage, torch.tensor([2, 3]), beta=0.2)
    assert penalty.tolist() == pytest.approx([0.2 * math.log(0.5), 0.2 * math.log(0.25 * 0.25 * 0.5)])


def test_nbest_is_ranked_with_the_coverage_penalty(trained: dict[str, Seq2Seq]) -> None:
    model = trained["lstm-general"]
    sources = random_sources(6, seed=13, min_length=2)
    src, lengths = padded(sources)
    found = beam_search(model, src, lengths, limits(sources), beam_size=5, alpha=1.0, nbest=5, beta=0.5)
    plain = beam_search(model, src, lengths, limits(sources), beam_size=5, alpha=1.0, nbest=5)
    reranked = 0
    for hyps, plain_hyps, source in zip(found, plain, sources, strict=True):
        assert hyps[0].attention is not None
        ranked = [
            h.score / float(length_penalty(torch.tensor(len(h.token_ids) + 1), 1.0))
            + float(coverage_penalty(h.attention.sum(0), torch.tensor(len(source)), 0.5))
            for h in hyps
        ]
        assert ranked == pytest.approx(sorted(ranked, reverse=True))
        reranked += [h.token_ids for h in hyps] != [h.token_ids for h in plain_hyps]
    assert reranked  # the penalty changed some ranking


def test_length_penalty_follows_wu_et_al() -> None:
    assert float(length_penalty(torch.tensor(1), 1.0)) == pytest.approx(1.0)
    assert float(length_penalty(torch.tensor(7), 0.6)) == pytest.approx(2.0**0.6)
    assert float(length_penalty(torch.tensor(20), 0.0)) == 1.0


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("variant", ["lstm-general", "gru-bahdanau", "lstm-init"])
def test_attention_has_a_row_per_output_step(
    variant: str, beam_size: int, trained: dict[str, Seq2Seq]
) -> None:
    model = trained[variant]
    sources = random_sources(6, seed=17)
    src, lengths = padded(sources)
    if beam_size == 1:
        found = greedy_search(model, src, lengths, limits(sources))
    else:
        found = [hyps[0] for hyps in beam_search(model, src, lengths, limits(sources), beam_size)]
    for hyp, source in zip(found, sources, strict=True):
        if variant == "lstm-init":
            assert hyp.attention is None
            continue
        assert hyp.attention is not None
        assert hyp.attention.shape == (len(hyp.token_ids) + 1, len(source))
        torch.testing.assert_close(hyp.attention.sum(-1), torch.ones(len(hyp.token_ids) + 1))


def alone(model: Seq2Seq, source: list[int], beam_size: int, max_length: int) -> Hypothesis:
    src, lengths = padded([source])
    limit = torch.tensor([max_length])
    if beam_size == 1:
        return greedy_search(model, src, lengths, limit)[0]
    return beam_search(model, src, lengths, limit, beam_size)[0][0]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_generate_ids_keeps_input_order(beam_size: int, trained: dict[str, Seq2Seq]) -> None:
    model = trained["lstm-general"]
    sources = [[4, 5, 6, 7, 8, 9], [5], [], [6, 7, 8], [9, 8], [4, 4, 5, 5, 6, 6, 7], [7, 6, 5, 4]]
    results = generate_ids(
        model, sources, beam_size=beam_size, max_length_ratio=1.5, max_length_offset=2, batch_tokens=12
    )
    assert len(results) == len(sources)
    for source, hyps in zip(sources, results, strict=True):
        assert len(hyps) == 1
        if not source:
            assert hyps[0].token_ids == [] and hyps[0].score == 0.0 and hyps[0].attention is None
            continue
        expected = alone(model, source, beam_size, math.ceil(1.5 * len(source)) + 2)
        assert hyps[0].token_ids == expected.token_ids
        assert hyps[0].score == pytest.approx(expected.score, abs=1e-4)


def test_generate_ids_nbest_and_mode() -> None:
    model = make_model("gru-bahdanau").train()
    results = generate_ids(model, [[4, 5], [6, 7, 8]], beam_size=4, nbest=3)
    assert [len(hyps) for hyps in results] == [3, 3]
    assert model.training, "the caller's training mode is restored"
    with pytest.raises(ValueError, match="nbest"):
        generate_ids(model, [[4]], beam_size=2, nbest=3)


def test_generate_ids_of_only_empty_sources() -> None:
    results = generate_ids(make_model("lstm-init"), [[], []], beam_size=2)
    assert [[h.token_ids for h in hyps] for hyps in results] == [[[]], [[]]]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_bfloat16_decoding_agrees_with_float32_on_a_trained_model(
    beam_size: int, trained: dict[str, Seq2Seq]
) -> None:
    """bfloat16 autocast rounds the matmuls only: a model that learned its task decodes the same."""
    model = trained["lstm-general"]
    sources = [[4, 5, 6, 7, 8, 9], [5, 6], [6, 7, 8], [9, 8, 7, 6]]
    weights = {name: p.clone() for name, p in model.state_dict().items()}
    rounded = generate_ids(model, sources, beam_size=beam_size, dtype=torch.bfloat16)
    state = model.state_dict()  # the bfloat16 copy leaves the caller's model as it was
    assert all(state[name].dtype == w.dtype and torch.equal(state[name], w) for name, w in weights.items())
    exact = generate_ids(model, sources, beam_size=beam_size)
    assert [h[0].token_ids for h in rounded] == [h[0].token_ids for h in exact]
    for r, e in zip(rounded, exact, strict=True):
        assert r[0].score == pytest.approx(e[0].score, abs=0.05 * len(e[0].token_ids) + 0.05)


def test_block_repeats_bans_the_token_that_would_repeat_an_ngram() -> None:
    from seq2seqkit.decoding.search import block_repeats

    log_probs, history = torch.zeros(1, VOCAB), torch.tensor([[4, 5, 6, 4]])
    banned = lambda n: (block_repeats(log_probs, history, n)[0] == float("-inf")).nonzero().view(-1).tolist()  # noqa: E731
    assert banned(2) == [5]  # "4 5" happened: after 4, not 5 again
    assert banned(1) == [4, 5, 6]  # no token twice
    assert banned(3) == [] and banned(0) == []  # "6 4 x" is new; 0 = off
    assert banned(5) == []  # longer than the history


@pytest.mark.parametrize("beam_size", [1, 3])
def test_outputs_repeat_no_blocked_ngram(beam_size: int) -> None:
    endless = suppress_eos(make_model("lstm-general"))  # runs to its maximum length, repeating itself
    sources = random_sources(4, seed=9, min_length=4)
    for n in (1, 2):
        for hyps in generate_ids(endless, sources, beam_size=beam_size, block_ngram_repeat=n, max_length=5):
            ngrams = [tuple(hyps[0].token_ids[i : i + n]) for i in range(len(hyps[0].token_ids) - n + 1)]
            assert len(hyps[0].token_ids) == 5 and len(set(ngrams)) == len(ngrams)
    plain = generate_ids(endless, sources, beam_size=beam_size, max_length=5)
    assert any(len(set(h[0].token_ids)) < 5 for h in plain), "without blocking the model repeats itself"


def is_span(output: list[int], allowed: list[int]) -> bool:
    """``output`` is a contiguous run of the allowed positions' ids (-1: not allowed)."""
    return any(
        all(allowed[start + i] == token for i, token in enumerate(output))
        for start in range(len(allowed) - len(output) + 1)
    )


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("variant", ["lstm-general", "gru-bahdanau"])
def test_span_constrained_outputs_are_spans_of_the_allowed_positions(
    variant: str, beam_size: int, model_of
) -> None:
    model = model_of(variant)
    sources = random_sources(12, seed=23, min_length=3, max_length=8)
    # the first two positions play the question: never output
    spans = [[-1, -1, *source[2:]] for source in sources]
    words = [Span(ids, [True] * len(ids), [True] * len(ids)) for ids in spans]  # each token a word
    found = generate_ids(model, sources, beam_size=beam_size, nbest=beam_size, spans=words)
    for hyps, allowed in zip(found, spans, strict=True):
        for hyp in hyps:
            assert hyp.token_ids, "a span holds at least one token"
            assert is_span(hyp.token_ids, allowed), (hyp.token_ids, allowed)
    free = generate_ids(model, sources, beam_size=beam_size)
    assert any(not is_span(h[0].token_ids, a) or not h[0].token_ids for h, a in zip(free, spans, strict=True))


def test_source_spans_by_hand() -> None:
    spans = SourceSpans.of([Span([-1, 5, 6, 5, 7], [True] * 5, [True] * 5)], torch.device("cpu"))
    allowed = spans.allowed(torch.zeros(1, 9))
    assert torch.isfinite(allowed[0]).nonzero().squeeze(1).tolist() == [5, 6, 7]  # any start, no <eos>
    spans.advance(torch.tensor([0]), torch.tensor([5]))
    allowed = spans.allowed(torch.zeros(1, 9))
    assert torch.isfinite(allowed[0]).nonzero().squeeze(1).tolist() == [EOS_ID, 6, 7]  # after either 5
    spans.advance(torch.tensor([0, 0]), torch.tensor([7, 6]))  # two hypotheses from one row
    allowed = spans.allowed(torch.zeros(2, 9))
    assert torch.isfinite(allowed[0]).nonzero().squeeze(1).tolist() == [EOS_ID]  # 5 7 ends the source
    assert torch.isfinite(allowed[1]).nonzero().squeeze(1).tolist() == [EOS_ID, 5]  # 5 6 then 5


def test_source_spans_are_whole_words() -> None:
    """A span starts where a word starts, and ends inside a word only at a prohibitive cost."""
    # words: [5 6] [7] [6 8]: 6 starts no word, 5 ends none
    span = Span(
        [-1, 5, 6, 7, 6, 8], [False, True, False, True, False, True], [False, False, True, True, False, True]
    )
    spans = SourceSpans.of([span], torch.device("cpu"))
    allowed = spans.allowed(torch.zeros(1, 9))
    assert torch.isfinite(allowed[0]).nonzero().squeeze(1).tolist() == [5, 7, 8]  # not 6: inside a word
    spans.advance(torch.tensor([0, 0]), torch.tensor([5, 7]))
    allowed = spans.allowed(torch.zeros(2, 9))
    assert allowed[0, EOS_ID] == INSIDE_A_WORD  # "5" is half a word
    assert allowed[1, EOS_ID] == 0.0  # "7" is one
    assert torch.isfinite(allowed[0]).nonzero().squeeze(1).tolist() == [EOS_ID, 6]
