"""Language modelling: p(y) = prod_t p(y_t | y_<t) over the targets alone, for shallow fusion
into another model's search (``decoding.lm``: a speech recognizer's character LM trained on its
training transcripts, as ESPnet and fairseq offer).

Data: a text file per split, one sentence a line (``data.format: text``), or the targets of any
pairs a general reader reads (``parallel``, ``tsv``, ``jsonl``: e.g. AN4's manifest read as TSV,
whose audio paths are left unread). The sources are dropped: the model
(``model.decoder.context: none``) reads none. A language model has no metric over generated
outputs: validation picks the checkpoint by perplexity on the validation targets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seqkit.data.readers import Pair, ReadReport, read_lines
from seq2seqkit.errors import DataError
from seq2seqkit.tasks.task import GENERAL_READERS, Reader, Task

if TYPE_CHECKING:
    from seq2seqkit.config import DataConfig


def read_text(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    """Each non-empty line of the split's file, as a target; an empty line is an error (or, with
    ``data.skip_bad_lines``, a counted skip)."""
    location = getattr(data, split)
    pairs = []
    for number, line in read_lines(Path(location)) if location else ():
        if line.strip():
            pairs.append(Pair("", line.strip(), f"{location}:{number}"))
        elif data.skip_bad_lines:
            report.skip("empty line")
        else:
            raise DataError(
                f"{location}:{number}: empty line (set data.skip_bad_lines: true to skip such lines)"
            )
    return pairs


def _targets_of(reader: Reader) -> Reader:
    """``reader``'s pairs without their sources."""

    def read(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
        if not getattr(data, split):
            return []
        return [dataclasses.replace(pair, src="") for pair in reader(data, split, report)]

    return read


TASK = Task(
    "language_model",
    metrics=(),
    readers={"text": read_text, **{name: _targets_of(reader) for name, reader in GENERAL_READERS.items()}},
    defaults={
        "data": {"format": "text", "src_tokenizer": {"type": "char"}},
        "model": {"decoder": {"context": "none"}},
        "training": {"evaluate_test": False},
    },
)
