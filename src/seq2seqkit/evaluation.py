"""Scoring a model on a data split with its task's metrics (validation, test, ``evaluate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seq2seqkit.data.readers import Pair
from seq2seqkit.pipeline import Pipeline
from seq2seqkit.tasks import Task


@dataclass
class Segment:
    """One evaluation item: a source and every acceptable reference."""

    source: str
    references: list[str]


@dataclass
class EvaluationResult:
    scores: dict[str, float]  # metric name -> score (percent)
    segments: list[Segment]
    hypotheses: list[str]

    def summary(self) -> str:
        return "  ".join(f"{name} {value:.2f}" for name, value in self.scores.items())


def segments_of(pairs: Sequence[Pair], group_references: bool) -> list[Segment]:
    """One segment per pair, or per distinct source when references are grouped (first-seen order)."""
    if not group_references:
        return [Segment(p.src, [p.tgt]) for p in pairs]
    grouped: dict[str, Segment] = {}
    for pair in pairs:
        grouped.setdefault(pair.src, Segment(pair.src, [])).references.append(pair.tgt)
    return list(grouped.values())


def score(task: Task, hypotheses: Sequence[str], segments: Sequence[Segment]) -> dict[str, float]:
    references = [s.references for s in segments]
    return {metric.name: metric.compute(hypotheses, references) for metric in task.metrics}


def evaluate(pipeline: Pipeline, pairs: Sequence[Pair], task: Task, beam: int = 1) -> EvaluationResult:
    """Generate for each source of ``pairs`` and score against its references."""
    segments = segments_of(pairs, task.group_references)
    outputs = pipeline.generate([s.source for s in segments], beam=beam)
    hypotheses = [o.text for o in outputs]
    return EvaluationResult(score(task, hypotheses, segments), segments, hypotheses)


@dataclass
class LengthBucket:
    """Segments whose source length (in ``unit``s; tenths of a second for "seconds") lies in
    [low, high]."""

    low: int
    high: int
    count: int
    score: float
    unit: str = "words"

    @property
    def label(self) -> str:
        if self.unit == "seconds":
            return f"{self.low / 10:.1f}-{self.high / 10:.1f}"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def length_of(source: str, unit: str) -> int:
    """Words or characters of a text; for "seconds", tenths of a second of an audio file."""
    if unit == "seconds":
        import soundfile

        return round(soundfile.info(source).duration * 10)
    return len(source.split()) if unit == "words" else len(source)


def length_edges(lengths: Sequence[int], buckets: int) -> list[tuple[int, int]]:
    """Up to ``buckets`` contiguous length ranges holding about equal numbers of segments."""
    ordered = sorted(lengths)
    edges: list[tuple[int, int]] = []
    low = ordered[0]
    for k in range(1, buckets + 1):
        high = ordered[min(len(ordered) - 1, k * len(ordered) // buckets - 1)]
        if high >= low:
            edges.append((low, high))
            low = high + 1
    if low <= ordered[-1]:
        edges.append((low, ordered[-1]))
    return edges


def score_by_length(
    task: Task,
    result: EvaluationResult,
    edges: Sequence[tuple[int, int]],
    unit: str = "words",
) -> list[LengthBucket]:
    """The task's primary metric on each source-length range (the fixed-context-vector weakness
    shows as a falling line for long sources; Cho et al., 2014; Bahdanau et al., 2015)."""
    table = []
    for low, high in edges:
        chosen = [i for i, s in enumerate(result.segments) if low <= length_of(s.source, unit) <= high]
        if not chosen:
            continue
        hyps = [result.hypotheses[i] for i in chosen]
        refs = [result.segments[i].references for i in chosen]
        table.append(LengthBucket(low, high, len(chosen), task.primary.compute(hyps, refs), unit))
    return table
