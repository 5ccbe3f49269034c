"""Metrics: the wrappers agree with sacrebleu and jiwer, use the closest reference, and are percents."""

from __future__ import annotations

import jiwer
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seqkit.metrics import (
    METRICS,
    bleu,
    char_error_rate,
    chrf,
    exact_match,
    repeated_trigrams,
    sequence_error_rate,
    word_error_rate,
)

# normal text: words over a small alphabet (so that hypotheses and references overlap), one space
WORD = st.text(alphabet="abcde", min_size=1, max_size=5)
SENTENCE = st.lists(WORD, min_size=1, max_size=8).map(" ".join)
CORPUS = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(SENTENCE, min_size=n, max_size=n), st.lists(SENTENCE, min_size=n, max_size=n)
    )
)

HYPS = ["the cat sat on the mat", "a dog barked at the mailman today", "it is raining"]
REFS = ["the cat sat on a mat", "the dog barked at the mailman", "it is raining again today"]


def _single(refs: list[str]) -> list[list[str]]:
    return [[r] for r in refs]


def test_bleu_and_chrf_equal_sacrebleu() -> None:
    assert bleu(HYPS, _single(REFS)) == sacrebleu.corpus_bleu(HYPS, [REFS]).score
    assert chrf(HYPS, _single(REFS)) == sacrebleu.corpus_chrf(HYPS, [REFS]).score
    assert 0 < bleu(HYPS, _single(REFS)) < 100


@settings(max_examples=60, deadline=None, derandomize=True)
@given(corpus=CORPUS)
def test_bleu_and_chrf_equal_sacrebleu_on_random_text(corpus: tuple[list[str], list[str]]) -> None:
    hyps, refs = corpus
    assert bleu(hyps, _single(refs)) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert chrf(hyps, _single(refs)) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(corpus=CORPUS)
def test_error_rates_equal_jiwer(corpus: tuple[list[str], list[str]]) -> None:
    hyps, refs = corpus
    assert word_error_rate(hyps, _single(refs)) == pytest.approx(100 * jiwer.wer(refs, hyps))
    assert char_error_rate(hyps, _single(refs)) == pytest.approx(100 * jiwer.cer(refs, hyps))


def test_char_error_rate_equals_jiwer_with_edge_spaces() -> None:
    assert char_error_rate(["abc "], [["abc"]]) == pytest.approx(100 * jiwer.cer("abc", "abc "))


def test_error_rates_by_hand() -> None:
    # one deletion against a 4-word reference; one substitution against a 3-word one: 2 / 7
    hyps, refs = ["the cat sat", "a big dog"], [["the cat sat down"], ["a small dog"]]
    assert word_error_rate(hyps, refs) == pytest.approx(100 * 2 / 7)
    # "kitten" -> "sitting" is the classic distance 3, over 7 reference characters
    assert char_error_rate(["kitten"], [["sitting"]]) == pytest.approx(100 * 3 / 7)
    # insertions can take an error rate above 100
    assert word_error_rate(["a b c d"], [["a"]]) == pytest.approx(300.0)


def test_multiple_references_use_the_closest() -> None:
    refs = [["HH AH L OW", "HH EH L OW"]]
    assert word_error_rate(["HH EH L OW"], refs) == 0.0
    assert word_error_rate(["HH AH L OW"], refs) == 0.0
    assert word_error_rate(["HH IH L OW"], refs) == pytest.approx(25.0)
    # the closest reference's length is the denominator: 1 edit against "a b" (2 words)
    assert word_error_rate(["a"], [["x y z w", "a b"]]) == pytest.approx(50.0)
    assert char_error_rate(["color"], [["colour", "color"]]) == 0.0


@settings(max_examples=100, deadline=None, derandomize=True)
@given(corpus=CORPUS, extra=st.lists(SENTENCE, min_size=1, max_size=3))
def test_an_extra_reference_never_raises_the_error_rate(
    corpus: tuple[list[str], list[str]], extra: list[str]
) -> None:
    hyps, refs = corpus
    more = [[r, *extra] for r in refs]
    # with an exact reference added, every segment is perfect
    assert word_error_rate(hyps, [[*r, h] for r, h in zip(more, hyps, strict=True)]) == 0.0
    assert exact_match(hyps, [[*r, h] for r, h in zip(more, hyps, strict=True)]) == 100.0
    assert exact_match(hyps, more) >= exact_match(hyps, _single(refs))


def test_multi_reference_bleu_and_chrf_equal_sacrebleu() -> None:
    refs_a = ["the cat sat on the mat", "a dog barked", "it rains"]
    refs_b = ["a cat was sitting on the mat", "the dog barked at the mailman", "it is raining"]
    both = [[a, b] for a, b in zip(refs_a, refs_b, strict=True)]
    assert bleu(HYPS, both) == sacrebleu.corpus_bleu(HYPS, [refs_a, refs_b]).score
    assert chrf(HYPS, both) == sacrebleu.corpus_chrf(HYPS, [refs_a, refs_b]).score
    assert bleu(HYPS, both) > bleu(HYPS, _single(refs_a))


def test_segments_with_fewer_references() -> None:
    # a repeated reference changes neither metric, so ragged references score like padded ones
    ragged = [[REFS[0], "the cat is on the mat"], [REFS[1]], [REFS[2]]]
    padded = [[REFS[0], "the cat is on the mat"], [REFS[1], REFS[1]], [REFS[2], REFS[2]]]
    assert bleu(HYPS, ragged) == bleu(HYPS, padded)
    assert chrf(HYPS, ragged) == chrf(HYPS, padded)
    assert bleu(HYPS, [[r, r] for r in REFS]) == pytest.approx(bleu(HYPS, _single(REFS)))
    assert chrf(HYPS, [[r, r] for r in REFS]) == pytest.approx(chrf(HYPS, _single(REFS)))


def test_exact_match_and_sequence_error_rate_by_hand() -> None:
    hyps = ["a b", " c ", "d", "e f"]
    refs = [["a  b"], ["x", "c"], ["e"], ["e f g"]]
    # hits: "a b" (whitespace-normalized), "c" (second reference); misses: "d", "e f"
    assert exact_match(hyps, refs) == 50.0
    assert sequence_error_rate(hyps, refs) == 50.0
    assert exact_match(["x"], [["x"]]) == 100.0
    assert sequence_error_rate(["y", "x", "x"], [["x"], ["x"], ["x"]]) == pytest.approx(100 / 3)
    assert exact_match([], []) == 0.0


def test_exact_match_is_case_sensitive() -> None:
    assert exact_match(["Hello"], [["hello"]]) == 0.0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(corpus=CORPUS)
def test_metrics_are_percentages(corpus: tuple[list[str], list[str]]) -> None:
    hyps, refs = corpus
    for metric in METRICS.values():
        score = metric.compute(hyps, _single(refs))
        assert score >= 0.0
        if metric.higher_is_better:
            assert score <= 100.0 + 1e-9  # sacrebleu may round to 100.00000000000004


def test_perfect_output_scores_100_or_0() -> None:
    refs = _single(REFS)
    assert bleu(REFS, refs) == pytest.approx(100.0)
    assert chrf(REFS, refs) == pytest.approx(100.0)
    assert exact_match(REFS, refs) == 100.0
    assert word_error_rate(REFS, refs) == 0.0
    assert char_error_rate(REFS, refs) == 0.0
    assert sequence_error_rate(REFS, refs) == 0.0


def test_metric_table() -> None:
    assert {name: m.higher_is_better for name, m in METRICS.items()} == {
        "bleu": True,
        "chrf": True,
        "wer": False,
        "cer": False,
        "exact": True,
        "rouge1": True,
        "rouge2": True,
        "rougeL": True,
        "rougeLsum": True,
        "squad_em": True,
        "squad_f1": True,
        "repeated_trigrams": False,
    }


def test_length_edges_split_into_about_equal_buckets() -> None:
    from seq2seqkit.evaluation import length_edges

    lengths = [1] * 10 + [2] * 10 + [3] * 10 + [10] * 10
    assert length_edges(lengths, 4) == [(1, 1), (2, 2), (3, 3), (4, 10)]
    assert length_edges([5] * 7, 3) == [(5, 5)]  # one length: one bucket
    edges = length_edges(list(range(1, 101)), 5)
    assert edges == [(1, 20), (21, 40), (41, 60), (61, 80), (81, 100)]


def test_score_by_length_scores_each_bucket_alone() -> None:
    from seq2seqkit.evaluation import EvaluationResult, Segment, score_by_length
    from seq2seqkit.tasks import TASKS

    segments = [Segment("a b", ["x"]), Segment("a b c d", ["y"]), Segment("a", ["z"])]
    result = EvaluationResult({}, segments, ["x", "wrong", "z"])
    table = score_by_length(TASKS["copy"], result, [(1, 2), (3, 4)], unit="words")
    assert [(b.label, b.count, b.score) for b in table] == [("1-2", 2, 100.0), ("3-4", 1, 0.0)]


def test_squad_normalization_follows_the_official_script() -> None:
    from seq2seqkit.metrics import squad_normalize

    assert squad_normalize("The  Eiffel Tower!") == "eiffel tower"
    assert squad_normalize("an apple, a pear and THE plum.") == "apple pear and plum"
    assert squad_normalize("theory of anarchy") == "theory of anarchy"  # articles only as whole words
    assert squad_normalize("1,000 km") == "1000 km"  # punctuation removed, not replaced by a space


def test_squad_exact_match_and_f1_by_hand() -> None:
    from seq2seqkit.metrics import squad_exact_match, squad_f1

    hyps = ["the Denver Broncos", "Santa Clara, California", "1990", "Levi's Stadium in 2016"]
    refs = [["Denver Broncos"], ["Santa Clara", "Levi's Stadium"], ["Super Bowl 50"], ["Levi's Stadium"]]
    # 1: exact after removing "the"; 2: F1 against "Santa Clara" = 2 * (2/3 * 1) / (2/3 + 1) = 0.8;
    # 3: no overlap; 4: "levis stadium in 2016" vs "levis stadium": P 2/4, R 1 -> F1 2/3
    assert squad_exact_match(hyps, refs) == pytest.approx(25.0)
    assert squad_f1(hyps, refs) == pytest.approx(100 * (1 + 0.8 + 0 + 2 / 3) / 4)


def test_rouge_equals_rouge_score_with_stemming_and_takes_the_best_reference() -> None:
    from rouge_score import rouge_scorer

    from seq2seqkit.metrics import rouge_1, rouge_2, rouge_l

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = {k: 0.0 for k in ("rouge1", "rouge2", "rougeL")}
    for hyp, ref in zip(HYPS, REFS, strict=True):
        for kind, score in scorer.score(ref, hyp).items():
            expected[kind] += 100 * score.fmeasure / len(HYPS)
    assert rouge_1(HYPS, _single(REFS)) == pytest.approx(expected["rouge1"])
    assert rouge_2(HYPS, _single(REFS)) == pytest.approx(expected["rouge2"])
    assert rouge_l(HYPS, _single(REFS)) == pytest.approx(expected["rougeL"])
    assert rouge_1(["cats running"], [["dog", "the cat runs"]]) == pytest.approx(100 * 0.8)  # stems match


def test_summary_level_rouge_l_differs_from_sentence_level_on_several_sentences() -> None:
    from seq2seqkit.metrics import rouge_l, rouge_lsum

    hyp = ["tools for the archive. the library reads files."]
    ref = [["the library reads files. tools for the archive."]]
    assert rouge_lsum(hyp, ref) > rouge_l(hyp, ref) + 9  # sentence order matters only to ROUGE-L
    one = (["a small tool"], [["a small tool for files"]])
    assert rouge_lsum(*one) == pytest.approx(rouge_l(*one))  # one sentence: the same


def test_repeated_trigrams_by_hand() -> None:
    hypotheses = ["a b c a b c", "x y z", "one two"]  # 4 + 1 + 0 trigrams; "a b c" repeats once
    assert repeated_trigrams(hypotheses, [[""]] * 3) == pytest.approx(100.0 * 1 / 5)
    assert repeated_trigrams([], []) == 0.0
