"""The field's metrics behind one signature: ``metric(hypotheses, references) -> score``.

``references[i]`` holds every acceptable reference of segment i (one or more). Scores are
percentages. BLEU and chrF come from sacrebleu; error rates are edit distances over tokens
computed by rapidfuzz (jiwer's engine), taking for each segment the closest reference, which with
one reference is exactly jiwer's WER / CER.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
}
