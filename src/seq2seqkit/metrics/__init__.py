"""The field's metrics behind one signature: ``metric(hypotheses, references) -> score``.

``references[i]`` holds every acceptable reference of segment i (one or more). Scores are
percentages. BLEU and chrF come from sacrebleu; error rates are edit distances over tokens
computed by rapidfuzz (jiwer's engine), taking for each segment the closest reference, which with
one reference is exactly jiwer's WER / CER. ROUGE comes from rouge-score (with stemming), SQuAD's
exact match and F1 follow the official evaluation script; both take the best reference of each
segment, as those scripts do.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from rapidfuzz.distance import Levenshtein

References = Sequence[Sequence[str]]


def _reference_streams(references: References) -> list[list[str]]:
    """sacrebleu wants one stream per reference position; repeat a segment's first reference to
    fill the streams of segments with fewer references (a repeat changes neither metric)."""
    width = max(len(refs) for refs in references)
    return [[refs[min(k, len(refs) - 1)] for refs in references] for k in range(width)]


def bleu(hypotheses: Sequence[str], references: References) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(list(hypotheses), _reference_streams(references)).score


def chrf(hypotheses: Sequence[str], references: References) -> float:
    import sacrebleu

    return sacrebleu.corpus_chrf(list(hypotheses), _reference_streams(references)).score


def bleu_signature(num_references: int = 1) -> str:
    """sacrebleu's reproducibility signature of ``bleu`` with this many references per segment."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    metric.corpus_score(["x"], [["x"]] * num_references)  # the signature records nrefs
    return str(metric.get_signature())


def _error_rate(
    hypotheses: Sequence[str], references: References, split: Callable[[str], Sequence[str]]
) -> float:
    edits = length = 0
    for hyp, refs in zip(hypotheses, references, strict=True):
        hyp_units = split(hyp)
        distance, ref_length = min(
            (Levenshtein.distance(hyp_units, units), len(units)) for units in map(split, refs)
        )
        edits += distance
        length += ref_length
    return 100.0 * edits / max(length, 1)


def word_error_rate(hypotheses: Sequence[str], references: References) -> float:
    """Edit distance over whitespace tokens / reference tokens (WER; PER on phoneme strings)."""
    return _error_rate(hypotheses, references, str.split)


def char_error_rate(hypotheses: Sequence[str], references: References) -> float:
    """Edit distance over characters (runs of whitespace count as one space) / reference length."""
    return _error_rate(hypotheses, references, lambda text: list(" ".join(text.split())))


def exact_match(hypotheses: Sequence[str], references: References) -> float:
    """Percentage of hypotheses equal to one of their references (whitespace-normalized)."""
    norm = " ".join
    hits = sum(
        norm(hyp.split()) in {norm(ref.split()) for ref in refs}
        for hyp, refs in zip(hypotheses, references, strict=True)
    )
    return 100.0 * hits / max(len(hypotheses), 1)


def sequence_error_rate(hypotheses: Sequence[str], references: References) -> float:
    """Percentage of hypotheses matching none of their references (the G2P "word error rate")."""
    return 100.0 - exact_match(hypotheses, references)


@cache
def _rouge_scorer() -> object:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)


def _sentences(text: str) -> str:
    """One sentence per line, what rouge-score's summary-level ROUGE-L reads (a split after . ! ?
    and a space; nltk's splitter needs data that cannot be downloaded here)."""
    return "\n".join(re.split(r"(?<=[.!?])\s+", text.strip()))


def _rouge(kind: str) -> Callable[[Sequence[str], References], float]:
    def compute(hypotheses: Sequence[str], references: References) -> float:
        scorer = _rouge_scorer()
        total = 0.0
        for hyp, refs in zip(hypotheses, references, strict=True):
            if kind == "rougeLsum":
                hyp, refs = _sentences(hyp), [_sentences(ref) for ref in refs]
            total += max(scorer.score(ref, hyp)[kind].fmeasure for ref in refs)  # type: ignore[attr-defined]
        return 100.0 * total / max(len(hypotheses), 1)

    compute.__doc__ = f"Mean {kind} F1 (rouge-score, Porter stemming), best reference per segment."
    return compute


rouge_1, rouge_2, rouge_l, rouge_lsum = (_rouge(k) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"))


def squad_normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


_PUNCTUATION = frozenset(string.punctuation)


def _token_f1(prediction: str, reference: str) -> float:
    pred, gold = squad_normalize(prediction).split(), squad_normalize(reference).split()
    common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_exact_match(hypotheses: Sequence[str], references: References) -> float:
    """Percentage of answers equal to one of their references after ``squad_normalize``."""
    hits = sum(
        any(squad_normalize(hyp) == squad_normalize(ref) for ref in refs)
        for hyp, refs in zip(hypotheses, references, strict=True)
    )
    return 100.0 * hits / max(len(hypotheses), 1)


def squad_f1(hypotheses: Sequence[str], references: References) -> float:
    """Mean over questions of the best token F1 against their references (SQuAD v1.1)."""
    total = sum(
        max(_token_f1(hyp, ref) for ref in refs) for hyp, refs in zip(hypotheses, references, strict=True)
    )
    return 100.0 * total / max(len(hypotheses), 1)


def repeated_trigrams(hypotheses: Sequence[str], references: References) -> float:
    """Percentage of the hypotheses' word trigrams that repeat an earlier trigram of the same
    hypothesis (the repetition that coverage is meant to remove; references are not read)."""
    del references
    repeats = total = 0
    for hyp in hypotheses:
        words = hyp.split()
        trigrams = list(zip(words, words[1:], words[2:], strict=False))
        repeats += len(trigrams) - len(set(trigrams))
        total += len(trigrams)
    return 100.0 * repeats / max(total, 1)


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Callable[[Sequence[str], References], float]
    higher_is_better: bool


METRICS = {
    "bleu": Metric("BLEU", bleu, True),
    "chrf": Metric("chrF", chrf, True),
    "wer": Metric("WER", word_error_rate, False),
    "cer": Metric("CER", char_error_rate, False),
    "exact": Metric("exact match", exact_match, True),
    "rouge1": Metric("ROUGE-1", rouge_1, True),
    "rouge2": Metric("ROUGE-2", rouge_2, True),
    "rougeL": Metric("ROUGE-L", rouge_l, True),
    "rougeLsum": Metric("ROUGE-Lsum", rouge_lsum, True),
    "squad_em": Metric("EM", squad_exact_match, True),
    "squad_f1": Metric("F1", squad_f1, True),
    "repeated_trigrams": Metric("repeated 3-grams %", repeated_trigrams, False),
}
