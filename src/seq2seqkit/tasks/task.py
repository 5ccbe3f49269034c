"""What a task is: everything that makes an application what it is, in one record.

A task names its metrics (the first selects the best checkpoint), the data formats it reads
beyond the general ones (parallel text, TSV, JSONL), whether identical sources share references,
and the config values it implies where a YAML file sets none (its default tokenizers, data format,
decoding lengths). ``read_split`` reads a split with the task's reader or a general one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seq2seqkit.data.readers import Pair, ReadReport, read_jsonl, read_parallel, read_tsv
from seq2seqkit.errors import ConfigError
from seq2seqkit.metrics import Metric

if TYPE_CHECKING:
    from seq2seqkit.config import DataConfig

# (data section, split name "train" / "valid" / "test", report of skipped lines) -> pairs
Reader = Callable[["DataConfig", str, ReadReport], list[Pair]]


@dataclass(frozen=True)
class Task:
    """metrics: reported in this order; the first one selects the best checkpoint.
    readers: data formats of this task's own (``data.format``), beside the general ones.
    group_references: identical sources in an evaluation set are one segment with several
    acceptable references (a word with several pronunciations).
    defaults: config values, by section, used where the YAML file sets none."""

    name: str
    metrics: tuple[Metric, ...]
    readers: Mapping[str, Reader] = field(default_factory=dict)
    group_references: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> Metric:
        if not self.metrics:  # a language model: judged by perplexity, under teacher forcing
            raise ConfigError(
                f"task {self.name!r} has no metric over generated outputs; its figure is the "
                "validation perplexity (validations.jsonl, the model card)"
            )
        return self.metrics[0]

    def read(self, data: DataConfig, split: str, report: ReadReport | None = None) -> list[Pair]:
        """The pairs of ``split``; [] for an optional split that is not set."""
        report = report if report is not None else ReadReport()
        if data.format in self.readers:
            return self.readers[data.format](data, split, report)
        return GENERAL_READERS[data.format](data, split, report) if getattr(data, split) else []


def _read_parallel(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    location = getattr(data, split)
    src, tgt = Path(f"{location}.{data.src_suffix}"), Path(f"{location}.{data.tgt_suffix}")
    return read_parallel(src, tgt, data.skip_bad_lines, report)


def _read_tsv(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    columns = max(1, len(data.src_fields))
    return read_tsv(
        Path(getattr(data, split)), data.tsv_header, data.skip_bad_lines, report, src_columns=columns
    )


def _read_jsonl(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    fields = data.src_fields or data.src_field
    return read_jsonl(Path(getattr(data, split)), fields, data.tgt_field, data.skip_bad_lines, report)


GENERAL_READERS: dict[str, Reader] = {"parallel": _read_parallel, "tsv": _read_tsv, "jsonl": _read_jsonl}
