"""Scoring a model on a data split with its task's metrics (validation, test, ``evaluate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seq2seq.data.readers import Pair
from seq2seq.pipeline import Pipeline
from seq2seq.tasks import Task


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
