"""Finding a user's pairs in what they give ``seq2seqkit train DATA``: which format, which fields
are the source and which the target, and which valid and test files lie beside them.

- **TSV** (``.tsv``, or any text file whose first line holds a TAB): the last column is the
  target, the earlier ones are source fields. A first row of column names (``source``,
  ``target``...) is read as a header. A first column of audio files makes it a speech manifest.
- **JSONL** (``.jsonl``/``.json``, or a first line starting with ``{``): ``--target`` names the
  target field; without it, the first of ``tgt``, ``target``, ``output``, ``answer``, ``summary``.
  Every other field is a source field, in file order; every line must hold the first line's fields.
  ``audio_filepath`` and ``text`` (NeMo's manifest) make it a speech manifest.
- **Parallel text**: two files ``STEM.X`` and ``STEM.Y``, or a folder holding ``train.X`` and
  ``train.Y``. Suffixes ``src`` and ``tgt`` say which side is which; otherwise ``--pair X-Y``.

A folder is searched for ``train.tsv``, ``train.jsonl``, ``train.X``/``train.Y``, or a single
TSV or JSONL file; a file named
with ``train`` finds its splits by the same name with ``valid`` (or ``dev``) and ``test``.
The result is a recipe's data section (``Found.data``); nothing is read beyond the first lines
and, for JSONL, each line's field names. Problems are one-line ``DataError``s naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seq2seqkit.data.readers import read_lines
from seq2seqkit.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".sph")
TARGET_NAMES = ("tgt", "target", "output", "answer", "summary")
# a first TSV row made only of such names (and at least one of them) is a header
COLUMN_NAMES = {
    *TARGET_NAMES, "src", "source", "input", "text", "question", "context", "document", "article",
    "word", "pronunciation", "phonemes", "label", "path", "audio", "transcript", "sentence", "translation",
    "en", "de", "fr", "es", "query", "response", "prompt", "completion",
}  # fmt: skip
SPLIT_WORDS = {"valid": ("valid", "dev", "validation", "val"), "test": ("test",)}
TEXT_FORMATS = {".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class Found:
    """data: the recipe's data section (format, train, valid, test, fields). what: one line
    saying what was found. audio: sources are audio files (a speech manifest)."""

    data: dict[str, Any]
    what: str
    audio: bool = False
    fields: tuple[str, ...] = field(default=())


def find_data(paths: Sequence[str | Path], target: str | None = None, pair: str | None = None) -> Found:
    """The data that ``paths`` (one file or folder, or two parallel files) hold."""
    files = [Path(p) for p in paths]
    for path in files:
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
    if len(files) == 2:
        return _parallel(files[0], files[1], pair)
    if len(files) != 1:
        raise DataError("give one data file or folder, or two parallel files (STEM.X STEM.Y)")
    path = files[0]
    if path.is_dir():
        return _folder(path, target, pair)
    return _file(path, target)


def _folder(folder: Path, target: str | None, pair: str | None) -> Found:
    for suffix in TEXT_FORMATS:
        if (folder / f"train{suffix}").is_file():
            return _file(folder / f"train{suffix}", target)
    sides = sorted(p for p in folder.glob("train.*") if p.is_file())
    if len(sides) == 2:
        return _parallel(sides[0], sides[1], pair)
    files = [p for p in folder.iterdir() if p.suffix in TEXT_FORMATS and p.is_file()]
    if len(files) == 1:
        return _file(files[0], target)
    raise DataError(
        f"{folder}: expected train.tsv, train.jsonl, two parallel files train.X and train.Y, or a single "
        "TSV or JSONL file in it" + (f" (found {', '.join(p.name for p in sides)})" if sides else "")
    )


def _parallel(first: Path, second: Path, pair: str | None) -> Found:
    stem = first.with_suffix("")
    if second.with_suffix("") != stem or not first.suffix or first.suffix == second.suffix:
        raise DataError(
            f"{first}, {second}: parallel files must be named STEM.X and STEM.Y (e.g. train.en train.de)"
        )
    suffixes = {first.suffix[1:], second.suffix[1:]}
    if pair:
        src, _, tgt = pair.partition("-")
        if {src, tgt} != suffixes:
            raise DataError(f"--pair {pair}: the files' suffixes are {' and '.join(sorted(suffixes))}")
    elif suffixes == {"src", "tgt"}:
        src, tgt = "src", "tgt"
    else:
        a, b = sorted(suffixes)
        raise DataError(
            f"{stem}.{a}, {stem}.{b}: which side is the source? Say it with --pair {a}-{b} (or {b}-{a}), "
            "or name the files .src and .tgt"
        )
    for side in (src, tgt):
        _first_line(Path(f"{stem}.{side}"))  # an empty or binary file is an error now
    splits = {split: _sibling(stem, split, lambda s: all(Path(f"{s}.{x}").is_file() for x in (src, tgt)))
              for split in SPLIT_WORDS}  # fmt: skip
    data = {"format": "parallel", "train": str(stem), **splits, "src_suffix": src, "tgt_suffix": tgt}
    return Found(data, f"parallel text {stem}.{src} -> {stem}.{tgt}")


def _file(path: Path, target: str | None) -> Found:
    number, first = _first_line(path)
    kind = TEXT_FORMATS.get(path.suffix)
    if kind is None:
        kind = "jsonl" if first.lstrip().startswith("{") else "tsv" if "\t" in first else ""
    if not kind:
        raise DataError(
            f"{path}:{number}: cannot tell the format: expected TSV (source, TAB, target), JSONL, "
            "or two parallel files STEM.X STEM.Y"
        )
    stem = path.with_name(path.name[: -len(path.suffix)] if path.suffix else path.name)
    splits = {split: _sibling(stem, split, lambda s: Path(f"{s}{path.suffix}").is_file(), path.suffix)
              for split in SPLIT_WORDS}  # fmt: skip
    if kind == "jsonl":
        return _jsonl(path, number, first, target, splits)
    return _tsv(path, number, first, target, splits)


def _tsv(path: Path, number: int, first: str, target: str | None, splits: dict[str, str]) -> Found:
    columns = [c.strip() for c in first.split("\t")]
    if len(columns) < 2:
        raise DataError(
            f"{path}:{number}: one column; a TSV of pairs needs the source column(s), a TAB, then the target"
        )
    header = all(re.fullmatch(r"[a-z_][a-z0-9_ ]*", c.lower()) for c in columns) and any(
        c.lower() in COLUMN_NAMES for c in columns
    )
    if target is not None and (not header or columns[-1] != target):
        raise DataError(f"{path}: --target {target!r}: in a TSV the target is the last column")
    data_row = first
    if header:
        data_row = next((line for n, line in read_lines(path) if n > number and line.strip()), "")
    data = {"format": "tsv", "train": str(path), **splits, "tsv_header": header}
    if data_row.split("\t")[0].strip().lower().endswith(AUDIO_SUFFIXES):
        if len(columns) != 2:
            raise DataError(
                f"{path}:{number}: a speech manifest has two columns: audio path, TAB, transcript"
            )
        return Found({**data, "format": "manifest"}, f"speech manifest {path}", audio=True)
    names = tuple(columns[:-1]) if header else tuple(f"column{i + 1}" for i in range(len(columns) - 1))
    if len(names) > 1:
        data["src_fields"] = list(names)
    what = f"TSV {path}: {len(names)} source column{'s' * (len(names) > 1)}, target column {len(columns)}"
    return Found(data, what + (" (first row: column names)" if header else ""), fields=names)


def _jsonl(path: Path, number: int, first: str, target: str | None, splits: dict[str, str]) -> Found:
    try:
        record = json.loads(first)
    except ValueError:
        raise DataError(f"{path}:{number}: not valid JSON") from None
    if not isinstance(record, dict) or not record:
        raise DataError(f"{path}:{number}: expected a JSON object of fields")
    names = list(record)
    _check_fields(path, names)
    data: dict[str, Any] = {"format": "jsonl", "train": str(path), **splits}
    if {"audio_filepath", "text"} <= set(names) and target in (None, "text"):
        return Found({**data, "format": "manifest"}, f"speech manifest {path}", audio=True)
    listed = ", ".join(names)
    if target is not None and target not in record:
        raise DataError(f"{path}:{number}: --target {target!r} is not a field (fields: {listed})")
    target = target or next((n for n in TARGET_NAMES if n in record), None)
    if target is None:
        raise DataError(
            f"{path}:{number}: which field is the target? Name it with --target (fields: {listed})"
        )
    sources = tuple(n for n in names if n != target)
    if not sources:
        raise DataError(f"{path}:{number}: no source field beside the target {target!r}")
    data |= {
        "tgt_field": target,
        **({"src_fields": list(sources)} if len(sources) > 1 else {"src_field": sources[0]}),
    }
    return Found(data, f"JSONL {path}: source {' + '.join(sources)} -> target {target}", fields=sources)


def _check_fields(path: Path, names: list[str]) -> None:
    """Every line of a JSONL file holds the first line's fields, no more and no fewer."""
    expected = set(names)
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DataError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(record, dict) or set(record) != expected:
            found = ", ".join(record) if isinstance(record, dict) else type(record).__name__
            raise DataError(
                f"{path}:{number}: fields {found} differ from the first line's ({', '.join(names)})"
            )


def _first_line(path: Path) -> tuple[int, str]:
    """(number, text) of the first non-empty line; an empty file is an error."""
    for number, line in read_lines(path):
        if line.strip():
            return number, line
    raise DataError(f"{path}: empty file")


def _sibling(stem: Path, split: str, exists: Any, suffix: str = "") -> str:
    """The ``split`` file beside a training file named with "train" (train.tsv -> valid.tsv,
    dev.tsv; my_train -> my_dev), or ""."""
    if "train" not in stem.name:
        return ""
    for word in SPLIT_WORDS[split]:
        candidate = stem.with_name(stem.name.replace("train", word))
        if exists(candidate):
            return f"{candidate}{suffix}"
    return ""
