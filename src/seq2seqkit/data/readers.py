"""Readers of parallel data: line-aligned text files, TSV and JSONL.

A source may have several fields (a question and its context): TSV and JSONL readers take the
number or names of the source fields and join them with the field separator (``data/vocab.py``).

Every problem is reported as a ``DataError`` naming the file and line. With
``skip_bad_lines`` the reader instead skips empty or malformed pairs and counts them in
``ReadReport``; undecodable bytes, binary files and mismatched line counts are always errors,
because skipping them would silently misalign or lose data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seq2seqkit.data.vocab import join_fields
from seq2seqkit.errors import DataError


@dataclass(frozen=True)
class Pair:
    """One source/target example; ``origin`` is "file:line" for error messages. A training pair of
    a weighted or tagged source (data.extra_train) carries its weight and its tag token."""

    src: str
    tgt: str
    origin: str = ""
    weight: float = 1.0
    tag: str = ""


@dataclass
class ReadReport:
    """What a reader skipped, by reason (only when asked to skip)."""

    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, text without the line break) of a UTF-8 text file."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a text file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err})") from None
    with handle:
        yield from decode_lines(handle, str(path))


def decode_lines(stream: Iterable[bytes], name: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of a binary stream such as stdin; ``name`` is used in errors."""
    for number, raw in enumerate(stream, start=1):
        if b"\0" in raw:
            raise DataError(f"{name}:{number}: contains a NUL byte; is this a binary file?")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{name}:{number}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            ) from None
        yield number, text.rstrip("\r\n")


def read_parallel(
    src_path: Path, tgt_path: Path, skip_bad_lines: bool = False, report: ReadReport | None = None
) -> list[Pair]:
    """Line N of ``src_path`` pairs with line N of ``tgt_path``."""
    report = report if report is not None else ReadReport()
    src_lines = list(read_lines(src_path))
    tgt_lines = list(read_lines(tgt_path))
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
            "line N of one must pair with line N of the other"
        )
    pairs = []
    for (number, src), (_, tgt) in zip(src_lines, tgt_lines, strict=True):
        pair = Pair(src.strip(), tgt.strip(), f"{src_path}:{number}")
        if _usable(pair, f"{src_path if not pair.src else tgt_path}:{number}", skip_bad_lines, report):
            pairs.append(pair)
    return pairs


def read_tsv(
    path: Path,
    header: bool = False,
    skip_bad_lines: bool = False,
    report: ReadReport | None = None,
    src_columns: int = 1,
) -> list[Pair]:
    """Tab-separated columns: ``src_columns`` source fields, then the target; ``header`` skips the
    first row."""
    report = report if report is not None else ReadReport()
    pairs = []
    for number, line in read_lines(path):
        if header and number == 1:
            continue
        columns = line.split("\t")
        if len(columns) != src_columns + 1:
            message = (
                f"{path}:{number}: expected {src_columns + 1} tab-separated columns, found {len(columns)}"
            )
            if not skip_bad_lines:
                raise DataError(message)
            report.skip("wrong number of columns")
            continue
        src = columns[0].strip() if src_columns == 1 else join_fields(columns[:-1])
        pair = Pair(src, columns[-1].strip(), f"{path}:{number}")
        if _usable(pair, f"{path}:{number}", skip_bad_lines, report):
            pairs.append(pair)
    return pairs


def read_jsonl(
    path: Path,
    src_field: str | Sequence[str] = "src",
    tgt_field: str = "tgt",
    skip_bad_lines: bool = False,
    report: ReadReport | None = None,
) -> list[Pair]:
    """One JSON object per line, with string fields ``src_field`` (one name, or several to join)
    and ``tgt_field``."""
    report = report if report is not None else ReadReport()
    src_fields = [src_field] if isinstance(src_field, str) else list(src_field)
    pairs = []
    for number, line in read_lines(path):
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, found {type(record).__name__}")
            missing = [name for name in (*src_fields, tgt_field) if name not in record]
            if missing:
                raise ValueError(
                    f"missing field {missing[0]!r} (has: {', '.join(map(repr, record)) or 'none'})"
                )
            fields, tgt = [record[name] for name in src_fields], record[tgt_field]
            if not all(isinstance(value, str) for value in (*fields, tgt)):
                names = ", ".join(repr(name) for name in src_fields)
                raise ValueError(f"fields {names} and {tgt_field!r} must be strings")
            src = fields[0] if len(fields) == 1 else join_fields(fields)
        except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
            if not skip_bad_lines:
                reason = "nested too deeply" if isinstance(err, RecursionError) else err
                raise DataError(f"{where}: {reason}") from None
            report.skip("malformed JSON record")
            continue
        pair = Pair(src.strip(), tgt.strip(), where)
        if _usable(pair, where, skip_bad_lines, report):
            pairs.append(pair)
    return pairs


def json_source(line: str, fields: Sequence[str], where: str) -> str:
    """The source in one input line of a model with several source fields: a JSON object holding
    ``fields`` as strings, joined with the field separator; an empty line is an empty source."""
    if not line.strip():
        return ""
    names = ", ".join(map(repr, fields))
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        raise DataError(f"{where}: expected a JSON object with the fields {names}") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with the fields {names}")
    for name in fields:
        if not isinstance(record.get(name), str):
            problem = "missing" if name not in record else "not a string"
            raise DataError(f"{where}: field {name!r} is {problem} (this model reads the fields {names})")
    return join_fields([record[name] for name in fields])


def _usable(pair: Pair, where: str, skip_bad_lines: bool, report: ReadReport) -> bool:
    """False (counted) for a pair with an empty side when skipping; an error otherwise."""
    if pair.src and pair.tgt:
        return True
    side = "source" if not pair.src else "target"
    if not skip_bad_lines:
        raise DataError(f"{where}: empty {side} line (set data.skip_bad_lines: true to skip such pairs)")
    report.skip(f"empty {side}")
    return False
