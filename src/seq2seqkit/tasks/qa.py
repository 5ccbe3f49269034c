"""Question answering as generation: a question and its paragraph in, the answer out, scored with
SQuAD's exact match and token F1 (F1 selects the best checkpoint).

Data: SQuAD's official JSON layout (``data.format: squad``): ``data[].paragraphs[].context`` with
``qas[].question`` and ``qas[].answers[].text``. Each answer is a pair whose source is the question
and the context joined by ``<sep>``; a question's answers are its references when scoring.
``seq2seqkit generate`` reads such a model's inputs as JSON lines with ``question`` and ``context``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seqkit.data.readers import Pair, ReadReport
from seq2seqkit.data.vocab import join_fields
from seq2seqkit.errors import DataError
from seq2seqkit.metrics import METRICS
from seq2seqkit.tasks.task import Task

if TYPE_CHECKING:
    from seq2seqkit.config import DataConfig


def read_squad(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    location = getattr(data, split)
    return squad_pairs(Path(location), data.skip_bad_lines, report) if location else []


def squad_pairs(path: Path, skip_bad: bool = False, report: ReadReport | None = None) -> list[Pair]:
    """(question <sep> context, answer) for every answer of every question in a SQuAD file."""
    report = report if report is not None else ReadReport()
    try:
        articles = json.loads(path.read_bytes())["data"]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a SQuAD JSON file with a top-level 'data' list ({err})") from None
    pairs: list[Pair] = []
    for a, article in enumerate(_as_list(articles, path, "data")):
        for p, paragraph in enumerate(_as_list(article.get("paragraphs"), path, f"data[{a}].paragraphs")):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            for q, question in enumerate(_as_list(paragraph.get("qas"), path, f"{where}.qas")):
                found = _question_pairs(paragraph.get("context"), question, f"{where}.qas[{q}]")
                if isinstance(found, str):
                    if not skip_bad:
                        raise DataError(f"{where}.qas[{q}]: {found} (set data.skip_bad_lines: true to skip)")
                    report.skip(found)
                else:
                    pairs.extend(found)
    return pairs


def _question_pairs(context: Any, question: dict[str, Any], where: str) -> list[Pair] | str:
    """A pair per answer of one question, or what is wrong with it."""
    text = question.get("question")
    answers: list[Any] = [a.get("text") for a in question.get("answers", []) if isinstance(a, dict)]
    if not isinstance(context, str) or not context.strip():
        return "empty or missing context"
    if not isinstance(text, str) or not text.strip():
        return "empty or missing question"
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        return "no answer text"
    source = join_fields([text, context])
    return [Pair(source, answer.strip(), where) for answer in answers]


def _as_list(value: Any, path: Path, name: str) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise DataError(f"{path}: {name} must be a list of objects")
    return value


TASK = Task(
    "qa",
    (METRICS["squad_f1"], METRICS["squad_em"]),
    readers={"squad": read_squad},
    group_references=True,
    defaults={"data": {"format": "squad", "src_fields": ["question", "context"]}},
)
