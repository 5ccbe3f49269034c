"""Speech recognition: audio in, its transcript out, scored with word error rate (which selects
the best checkpoint) and character error rate (jiwer's definitions).

Data (``data.format: manifest``): a TSV manifest (``path<TAB>transcript``, as CMU AN4's in
``../shared/data/an4``) or, for a ``.jsonl`` / ``.json`` file, JSON lines as NeMo and ESPnet
write them (``audio_filepath``, ``text``, an optional ``duration``). Paths are relative to the
manifest. Every audio file is checked (exists, readable, audio, not empty) when the manifest is
read, before training starts: a bad one is an error naming the manifest line, or with
``data.skip_bad_lines`` a counted skip. Sources are audio (``data.source: audio``), read as
log-mel frames stacked four to a step (or through a convolutional subsampler); targets are
characters by default.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seqkit.data.audio import audio_info
from seq2seqkit.data.readers import Pair, ReadReport, read_jsonl, read_tsv
from seq2seqkit.errors import DataError
from seq2seqkit.metrics import METRICS
from seq2seqkit.tasks.task import Task

if TYPE_CHECKING:
    from seq2seqkit.config import DataConfig


def read_manifest(data: DataConfig, split: str, report: ReadReport) -> list[Pair]:
    location = getattr(data, split)
    return manifest_pairs(Path(location), data.tsv_header, data.skip_bad_lines, report) if location else []


def manifest_pairs(
    path: Path, header: bool = False, skip_bad: bool = False, report: ReadReport | None = None
) -> list[Pair]:
    """(audio path, transcript) of each line of a TSV or JSONL manifest, the audio checked."""
    report = report if report is not None else ReadReport()
    if path.suffix in (".jsonl", ".json"):
        pairs = read_jsonl(path, "audio_filepath", "text", skip_bad, report)
    else:
        pairs = read_tsv(path, header, skip_bad, report)
    checked = []
    for pair in pairs:
        audio = path.parent / pair.src
        problem = audio_info(audio)
        if problem is None:
            checked.append(replace(pair, src=str(audio)))
        elif skip_bad:
            report.skip("missing, unreadable or empty audio")
        else:
            raise DataError(f"{pair.origin}: {problem} (set data.skip_bad_lines: true to skip such lines)")
    return checked


TASK = Task(
    "asr",
    (METRICS["wer"], METRICS["cer"]),
    readers={"manifest": read_manifest},
    defaults={
        "data": {
            "format": "manifest",
            "source": "audio",
            "tgt_tokenizer": {"type": "char"},
            "max_src_len": 3000,  # frames: 30 seconds
        },
        "model": {"frontend": "stack"},
        "decoding": {"max_input_len": 6000, "max_length_ratio": 0.5},
    },
)
