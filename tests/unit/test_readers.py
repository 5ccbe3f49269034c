"""Readers: every bad input is a DataError naming the file and line; skipping is counted."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from seq2seqkit.data.readers import Pair, ReadReport, read_jsonl, read_lines, read_parallel, read_tsv
from seq2seqkit.errors import DataError


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _parallel(tmp_path: Path, src: str | bytes, tgt: str | bytes) -> tuple[Path, Path]:
    return _write(tmp_path / "train.src", src), _write(tmp_path / "train.tgt", tgt)


# ---- read_lines ---------------------------------------------------------------------------------


def test_read_lines_numbers_from_one_and_strips_line_breaks(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", "first\r\nsecond\n\nlast without newline")
    assert list(read_lines(path)) == [(1, "first"), (2, "second"), (3, ""), (4, "last without newline")]


def test_read_lines_keeps_other_whitespace(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", " a\tb \n")
    assert list(read_lines(path)) == [(1, " a\tb ")]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=re.escape(f"{path}: no such file")):
        list(read_lines(path))


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: is a directory")):
        list(read_lines(tmp_path))


def test_non_utf8_names_file_line_and_byte(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin1.txt", b"ok\nalso ok\ncaf\xe9\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:3: not valid UTF-8 (byte 0xe9 at column 4)")):
        list(read_lines(path))


def test_binary_file_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "model.bin", b"text\n\x89PNG\x00\x01\x02")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: contains a NUL byte")):
        list(read_lines(path))


def test_a_10_mb_line_is_read(tmp_path: Path) -> None:
    line = "word " * (2 * 1024 * 1024)  # 10 MiB
    src, tgt = _parallel(tmp_path, line + "\nshort\n", "target\nshort\n")
    pairs = read_parallel(src, tgt)
    assert len(pairs) == 2
    assert len(pairs[0].src) == len(line) - 1  # stripped of the trailing space


# ---- read_parallel ------------------------------------------------------------------------------


def test_parallel_pairs_line_n_with_line_n(tmp_path: Path) -> None:
    src, tgt = _parallel(tmp_path, "a b\n c d \n", "x\ny z\n")
    assert read_parallel(src, tgt) == [
        Pair("a b", "x", f"{src}:1"),
        Pair("c d", "y z", f"{src}:2"),
    ]


def test_parallel_mismatched_line_counts(tmp_path: Path) -> None:
    src, tgt = _parallel(tmp_path, "a\nb\nc\n", "x\ny\n")
    with pytest.raises(DataError) as err:
        read_parallel(src, tgt)
    assert f"{src} has 3 lines but {tgt} has 2" in str(err.value)


@pytest.mark.parametrize("skip", [False, True])
def test_parallel_mismatch_is_an_error_even_when_skipping(tmp_path: Path, skip: bool) -> None:
    src, tgt = _parallel(tmp_path, "a\n", "x\ny\n")
    with pytest.raises(DataError, match="has 1 lines but"):
        read_parallel(src, tgt, skip_bad_lines=skip)


@pytest.mark.parametrize(
    ("src_text", "tgt_text", "bad_side", "side"),
    [("a\n  \nc\n", "x\ny\nz\n", "src", "source"), ("a\nb\nc\n", "x\ny\n\t\n", "tgt", "target")],
)
def test_parallel_empty_line(tmp_path: Path, src_text: str, tgt_text: str, bad_side: str, side: str) -> None:
    src, tgt = _parallel(tmp_path, src_text, tgt_text)
    bad_file, line = (src, 2) if bad_side == "src" else (tgt, 3)
    with pytest.raises(DataError, match=re.escape(f"{bad_file}:{line}: empty {side} line")):
        read_parallel(src, tgt)
    report = ReadReport()
    pairs = read_parallel(src, tgt, skip_bad_lines=True, report=report)
    assert len(pairs) == 2
    assert report.skipped == {f"empty {side}": 1}
    assert report.total_skipped == 1


def test_parallel_bad_bytes_are_errors_even_when_skipping(tmp_path: Path) -> None:
    src, tgt = _parallel(tmp_path, b"a\n\xff\n", "x\ny\n")
    with pytest.raises(DataError, match=re.escape(f"{src}:2: not valid UTF-8")):
        read_parallel(src, tgt, skip_bad_lines=True)


def test_parallel_missing_target(tmp_path: Path) -> None:
    src = _write(tmp_path / "train.src", "a\n")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'train.tgt'}: no such file")):
        read_parallel(src, tmp_path / "train.tgt")


# ---- read_tsv -----------------------------------------------------------------------------------


def test_tsv(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.tsv", "hello\tbonjour\n cat \tchat\n")
    assert read_tsv(path) == [Pair("hello", "bonjour", f"{path}:1"), Pair("cat", "chat", f"{path}:2")]


def test_tsv_header_is_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.tsv", "source\ttarget\nhello\tbonjour\n")
    assert [(p.src, p.tgt) for p in read_tsv(path, header=True)] == [("hello", "bonjour")]
    assert [(p.src, p.tgt) for p in read_tsv(path)] == [("source", "target"), ("hello", "bonjour")]


def test_tsv_header_line_may_have_any_shape(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.tsv", "just a title\nhello\tbonjour\n")
    assert len(read_tsv(path, header=True)) == 1


@pytest.mark.parametrize(("line", "found"), [("one column", 1), ("a\tb\tc", 3), ("\t\t\t", 4)])
def test_tsv_wrong_column_count(tmp_path: Path, line: str, found: int) -> None:
    path = _write(tmp_path / "d.tsv", f"ok\tfine\n{line}\nalso\tfine\n")
    with pytest.raises(
        DataError, match=re.escape(f"{path}:2: expected 2 tab-separated columns, found {found}")
    ):
        read_tsv(path)
    report = ReadReport()
    assert len(read_tsv(path, skip_bad_lines=True, report=report)) == 2
    assert report.skipped == {"wrong number of columns": 1}


def test_tsv_empty_side(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.tsv", "ok\tfine\nsrc\t \n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: empty target line")):
        read_tsv(path)
    report = ReadReport()
    assert len(read_tsv(path, skip_bad_lines=True, report=report)) == 1
    assert report.skipped == {"empty target": 1}


# ---- read_jsonl ---------------------------------------------------------------------------------


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    return _write(tmp_path / "d.jsonl", "".join(line + "\n" for line in lines))


GOOD = json.dumps({"src": "hello", "tgt": "bonjour"})


def test_jsonl(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, GOOD, json.dumps({"tgt": " chat ", "src": "cat", "extra": 1}))
    assert read_jsonl(path) == [Pair("hello", "bonjour", f"{path}:1"), Pair("cat", "chat", f"{path}:2")]


def test_jsonl_custom_field_names(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, json.dumps({"document": "long text", "summary": "short"}))
    pairs = read_jsonl(path, src_field="document", tgt_field="summary")
    assert [(p.src, p.tgt) for p in pairs] == [("long text", "short")]
    with pytest.raises(DataError, match=re.escape(f"{path}:1: missing field 'src'")):
        read_jsonl(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"src": "a"}', "missing field 'tgt' (has: 'src')"),
        ("{}", "missing field 'src' (has: none)"),
        ('{"src": "a", "tgt": ', "Expecting value"),
        ("not json", "Expecting value"),
        ('["a", "b"]', "expected a JSON object, found list"),
        ('"a string"', "expected a JSON object, found str"),
        ("null", "expected a JSON object, found NoneType"),
        ('{"src": "a", "tgt": 3}', "fields 'src' and 'tgt' must be strings"),
        ('{"src": ["a"], "tgt": "b"}', "fields 'src' and 'tgt' must be strings"),
    ],
)
def test_jsonl_malformed_record(tmp_path: Path, line: str, message: str) -> None:
    path = _jsonl(tmp_path, GOOD, line, GOOD)
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert str(err.value).startswith(f"{path}:2: ")
    assert message in str(err.value)
    report = ReadReport()
    assert len(read_jsonl(path, skip_bad_lines=True, report=report)) == 2
    assert report.skipped == {"malformed JSON record": 1}


def test_jsonl_empty_line_is_malformed(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, GOOD, "")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: ")):
        read_jsonl(path)


def test_jsonl_empty_field(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, GOOD, json.dumps({"src": "  ", "tgt": "x"}))
    with pytest.raises(DataError, match=re.escape(f"{path}:2: empty source line")):
        read_jsonl(path)
    report = ReadReport()
    assert len(read_jsonl(path, skip_bad_lines=True, report=report)) == 1
    assert report.skipped == {"empty source": 1}


def test_report_accumulates_across_reads(tmp_path: Path) -> None:
    report = ReadReport()
    tsv = _write(tmp_path / "d.tsv", "a\tb\nbad\n\tx\n")
    jsonl = _jsonl(tmp_path, GOOD, "[]")
    read_tsv(tsv, skip_bad_lines=True, report=report)
    read_jsonl(jsonl, skip_bad_lines=True, report=report)
    assert report.skipped == {"wrong number of columns": 1, "empty source": 1, "malformed JSON record": 1}
    assert report.total_skipped == 3


# ---- fuzz: any bytes either read or raise DataError ---------------------------------------------

# bytes with a bias towards the characters that matter to the formats
PIECES = [b"\n", b"\r", b"\t", b" ", b"a", b'"src"', b'"tgt"', b":", b"{", b"}", b",", b'"', b"\\",
          b"[", b"]", b"1", b"null", b"\xc3\xa9", b"\xff", b"\x00", b"\xe9"]  # fmt: skip
FUZZ_BYTES = st.one_of(st.binary(max_size=200), st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join))


def _read_all(path: Path, other: Path, skip: bool, header: bool) -> dict[str, int]:
    """Run every reader on ``path``; count how many read it and how many raised DataError."""
    readers = [
        lambda: list(read_lines(path)),
        lambda: read_parallel(path, other, skip_bad_lines=skip),
        lambda: read_tsv(path, header=header, skip_bad_lines=skip),
        lambda: read_jsonl(path, skip_bad_lines=skip),
    ]
    outcomes = {"read": 0, "DataError": 0}
    for read in readers:
        try:
            result = read()
        except DataError as err:
            assert str(err).startswith(str(path.parent))  # names the file
            outcomes["DataError"] += 1
        else:
            outcomes["read"] += 1
            pairs = [p for p in result if isinstance(p, Pair)]
            assert all(p.src and p.tgt and p.src == p.src.strip() for p in pairs)
    return outcomes


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=FUZZ_BYTES, other=FUZZ_BYTES, skip=st.booleans(), header=st.booleans())
def test_fuzz_readers_only_raise_data_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, other: bytes, skip: bool, header: bool
) -> None:
    directory = tmp_path_factory.mktemp("fuzz")
    outcomes = _read_all(_write(directory / "a", data), _write(directory / "b", other), skip, header)
    event(f"read by {outcomes['read']} of 4 readers")


def test_random_files_exercise_both_outcomes(tmp_path: Path) -> None:
    rng = random.Random(0)
    totals = {"read": 0, "DataError": 0}
    for n in range(150):

        def sample() -> bytes:
            return b"".join(rng.choices(PIECES, k=rng.randint(0, 40)))

        path, other = _write(tmp_path / f"{n}.a", sample()), _write(tmp_path / f"{n}.b", sample())
        for key, count in _read_all(path, other, rng.random() < 0.5, rng.random() < 0.5).items():
            totals[key] += count
    # 600 reads in all: both outcomes are common (about 60 read, 540 rejected with seed 0)
    assert totals["read"] > 30
    assert totals["DataError"] > 300


def test_deeply_nested_json_is_a_data_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, "[" * 100_000)
    with pytest.raises(DataError, match=re.escape(f"{path}:1")):
        read_jsonl(path)


@pytest.mark.parametrize("name", ["file.txt/child", "x" * 300])
def test_unopenable_paths_are_data_errors(tmp_path: Path, name: str) -> None:
    _write(tmp_path / "file.txt", "a\n")
    with pytest.raises(DataError):
        list(read_lines(tmp_path / name))


def test_several_source_fields_are_joined_with_the_separator(tmp_path: Path) -> None:
    tsv = tmp_path / "qa.tsv"
    tsv.write_text("Who? \tAnn wrote it.\tAnn\nbad line\tonly two\n")
    with pytest.raises(DataError, match=re.escape(f"{tsv}:2: expected 3 tab-separated columns, found 2")):
        read_tsv(tsv, src_columns=2)
    report = ReadReport()
    assert read_tsv(tsv, skip_bad_lines=True, report=report, src_columns=2) == [
        Pair("Who? <sep> Ann wrote it.", "Ann", f"{tsv}:1")
    ]
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text(json.dumps({"question": "Who?", "context": "Ann wrote it.", "answer": "Ann"}) + "\n")
    pairs = read_jsonl(jsonl, ["question", "context"], "answer")
    assert pairs == [Pair("Who? <sep> Ann wrote it.", "Ann", f"{jsonl}:1")]
    with pytest.raises(DataError, match="missing field 'title'"):
        read_jsonl(jsonl, ["title", "context"], "answer")


def test_squad_layout_gives_a_pair_per_answer(tmp_path: Path) -> None:
    from seq2seqkit.tasks.qa import squad_pairs

    path = tmp_path / "dev.json"
    qas = [
        {"id": "1", "question": "Who wrote it?", "answers": [{"text": "Ann"}, {"text": "Ann Lee"}]},
        {"id": "2", "question": "When?", "answers": [{"text": " 1999 "}]},
    ]
    path.write_text(
        json.dumps({"version": "1.1", "data": [{"paragraphs": [{"context": "Ann wrote it.", "qas": qas}]}]})
    )
    pairs = squad_pairs(path)
    assert [(p.src, p.tgt) for p in pairs] == [
        ("Who wrote it? <sep> Ann wrote it.", "Ann"),
        ("Who wrote it? <sep> Ann wrote it.", "Ann Lee"),
        ("When? <sep> Ann wrote it.", "1999"),
    ]
    assert pairs[2].origin == f"{path}: data[0].paragraphs[0].qas[1]"


def test_squad_errors_name_the_file_and_the_question(tmp_path: Path) -> None:
    from seq2seqkit.tasks.qa import squad_pairs

    path = tmp_path / "bad.json"
    qas = [{"question": "Who?", "answers": []}, {"question": "What?", "answers": [{"text": "x"}]}]
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "text", "qas": qas}]}]}))
    with pytest.raises(DataError, match=re.escape(f"{path}: data[0].paragraphs[0].qas[0]: no answer text")):
        squad_pairs(path)
    report = ReadReport()
    assert len(squad_pairs(path, skip_bad=True, report=report)) == 1 and report.total_skipped == 1
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a SQuAD JSON file"):
        squad_pairs(path)
    with pytest.raises(DataError, match="no such file"):
        squad_pairs(tmp_path / "missing.json")
