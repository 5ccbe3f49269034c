"""``seq2seqkit train DATA``: finding the pairs, the choices on tiny fixtures, held-out splits,
the written recipe, the warnings before training, and one-line errors for bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from seq2seqkit import auto
from seq2seqkit.data.readers import Pair
from seq2seqkit.data.sniff import find_data
from seq2seqkit.errors import DataError
from seq2seqkit.preflight import data_warnings
from seq2seqkit.recipes import check_corpora, load_config
from seq2seqkit.tasks import read_split, task_config, task_of

WORDS = [
    "the", "package", "provides", "a", "library", "for", "parsing", "and", "writing", "files", "in",
    "many", "formats", "with", "tools", "to", "convert", "them", "this", "is", "documentation",
    "of", "program", "which", "reads", "data", "from", "network",
]  # fmt: skip


def _write_tsv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _strings(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices("abcdefghij", k=rng.randint(3, 9))) for _ in range(n)]


def _sentences(n: int, seed: int = 0, length: int = 12) -> list[str]:
    """Sentences over an open vocabulary: common words, and a long tail of rarer made-up ones."""
    rng = random.Random(seed)
    rare = ["".join(rng.choices("bcdfghklmnprstvz", k=3)) + "ion" for _ in range(4000)]
    vocabulary = WORDS + rare
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    return [" ".join(rng.choices(vocabulary, weights, k=rng.randint(length // 2, length))) for _ in range(n)]


def _choices(chosen: auto.Chosen) -> dict[str, str]:
    return {c.what: c.value for c in chosen.choices}


def test_short_strings_get_characters_and_exact_match(tmp_path: Path) -> None:
    data = _write_tsv(tmp_path / "rev.tsv", [(s, s[::-1]) for s in _strings(400)])
    chosen = auto.choose([data], tmp_path / "run", minutes=1)
    choices = _choices(chosen)
    assert choices["tokenizer (source)"] == choices["tokenizer (target)"] == "characters"
    assert choices["copy"] == "off"
    assert chosen.recipe["task"] == "transduction"
    assert chosen.recipe["model"]["rnn_type"] == "gru"
    assert chosen.config.training.max_minutes == 1


def test_sentences_get_sentencepiece_and_bleu(tmp_path: Path) -> None:
    rng = random.Random(1)
    rows = [(s, " ".join(w.upper()[::-1] for w in s.split()[::-1])) for s in _sentences(600)]
    rows = [(s, t + rng.choice(["", " Q"])) for s, t in rows]
    chosen = auto.choose([_write_tsv(tmp_path / "mt.tsv", rows)], tmp_path / "run")
    data = chosen.recipe["data"]
    assert data["src_tokenizer"]["type"] == data["tgt_tokenizer"]["type"] == "sentencepiece"
    assert chosen.recipe["task"] == "translation"
    assert not chosen.recipe["model"]["decoder"].get("copy", False)


def test_copy_heavy_targets_get_copy_and_a_shared_vocabulary(tmp_path: Path) -> None:
    documents = _sentences(600, length=40)
    rows = [(d, " ".join(d.split()[:5])) for d in documents]  # a summary: the opening words
    chosen = auto.choose([_write_tsv(tmp_path / "sum.tsv", rows)], tmp_path / "run")
    assert chosen.recipe["model"]["decoder"]["copy"] is True
    assert chosen.recipe["data"]["shared_vocab"] is True
    assert chosen.recipe["task"] == "summarization"


def test_answer_spans_of_a_context_field_get_a_pointer_reader(tmp_path: Path) -> None:
    lines = []
    for context in _sentences(300, length=30):
        start = len(context.split()) // 2
        answer = " ".join(context.split()[start : start + 2])
        lines.append(
            json.dumps({"question": f"what is {answer.split()[0]}", "context": context, "answer": answer})
        )
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(lines) + "\n")
    chosen = auto.choose([data], tmp_path / "run")
    assert chosen.recipe["task"] == "qa"
    assert chosen.recipe["data"]["src_fields"] == ["question", "context"]
    assert chosen.recipe["model"]["decoder"]["output"] == "pointer"  # a reader points at the span
    assert chosen.recipe["model"]["encoder"]["field_match"] is True
    assert chosen.config.decoding.beam_size == 1


def test_held_out_splits_are_seeded_disjoint_and_reproducible() -> None:
    pairs = [Pair(s, s[::-1]) for s in _strings(1000)]
    pairs += pairs[:50]  # repeated pairs stay together
    first = auto.hold_out(pairs, ["valid", "test"], seed=1)
    again = auto.hold_out(pairs, ["valid", "test"], seed=1)
    other = auto.hold_out(pairs, ["valid", "test"], seed=2)
    assert first == again and first != other
    sources = {split: {p.src for p in first[split]} for split in first}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["valid"]
    assert not sources["valid"] & sources["test"]
    assert sum(len(v) for v in first.values()) == len(pairs)  # nothing lost
    assert 50 <= len(first["test"]) <= 60


def test_written_recipe_reproduces_the_chosen_configuration(tmp_path: Path) -> None:
    data = _write_tsv(tmp_path / "rev.tsv", [(s, s[::-1]) for s in _strings(400)])
    out = tmp_path / "run"
    chosen = auto.choose([data], out, minutes=2)
    recipe = auto.write(chosen, out)
    assert load_config(recipe) == chosen.config
    config = load_config(recipe)
    written = {split: read_split(config, split) for split in ("train", "valid", "test")}
    assert [(p.src, p.tgt) for p in written["test"]] == [(p.src, p.tgt) for p in chosen.splits["test"]]
    assert sum(map(len, written.values())) == 400


def test_files_beside_the_data_are_its_splits(tmp_path: Path) -> None:
    for split, n in (("train", 300), ("dev", 20), ("test", 30)):
        _write_tsv(tmp_path / f"{split}.tsv", [(s, s[::-1]) for s in _strings(n, seed=n)])
    chosen = auto.choose([tmp_path], tmp_path / "run")
    assert load_config(auto.write(chosen, tmp_path / "run")) == chosen.config
    assert not chosen.held_out
    assert chosen.recipe["data"]["valid"].endswith("dev.tsv")
    assert [len(chosen.splits[s]) for s in ("train", "valid", "test")] == [300, 20, 30]


def test_parallel_files_need_their_sides_named(tmp_path: Path) -> None:
    for side in ("en", "de"):
        (tmp_path / f"train.{side}").write_text("".join(f"{s} {side}\n" for s in _sentences(100)))
    with pytest.raises(DataError, match="--pair de-en"):
        find_data([tmp_path])
    found = find_data([tmp_path / "train.en", tmp_path / "train.de"], pair="en-de")
    assert (found.data["src_suffix"], found.data["tgt_suffix"]) == ("en", "de")


def test_jsonl_target_field_by_name_or_flag(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "a", "label": "b"}) + "\n")
    with pytest.raises(DataError, match=r"d.jsonl:1: which field is the target\? .*--target"):
        find_data([data])
    assert find_data([data], target="label").data["tgt_field"] == "label"
    data.write_text(json.dumps({"word": "a", "output": "b"}) + "\n")
    assert find_data([data]).data | {} == find_data([data]).data
    assert find_data([data]).data["tgt_field"] == "output"


@pytest.mark.parametrize(
    ("name", "content", "target", "message"),
    [
        ("one.tsv", "just one column\n", None, r"one.tsv:1: one column"),
        ("empty.tsv", "", None, r"empty.tsv: empty file"),
        ("mixed.jsonl", '{"src": "a", "tgt": "b"}\n{"src": "a", "out": "b"}\n', None,
         r"mixed.jsonl:2: fields src, out differ"),
        ("blob.tsv", b"\x00\x01\x02\tx\n", None, r"blob.tsv:1: contains a NUL byte"),
        ("t.jsonl", '{"src": "a", "tgt": "b"}\n', "answer", r"t.jsonl:1: --target 'answer' is not a field"),
        ("notes.txt", "plain text without tabs\n", None, r"notes.txt:1: cannot tell the format"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_file_and_line(
    tmp_path: Path, name: str, content: str | bytes, target: str | None, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message) as error:
        auto.choose([path], tmp_path / "run", target=target)
    assert "\n" not in str(error.value)


def _warnings(raw: dict, splits: dict[str, list[Pair]]) -> list[str]:
    config = task_config({**raw, "data": {"train": "unused", **raw.get("data", {})}})
    return data_warnings(config, task_of(config), splits)


def test_each_warning_fires_on_its_fixture() -> None:
    sentences = _sentences(300, length=20)
    train = [Pair(s, s.split()[0] + " " + s.split()[1]) for s in sentences[:250]]
    repeated = {"train": train, "valid": train[:10], "test": []}
    assert any("data.valid: 10 of its 10 pairs" in w for w in _warnings({}, repeated))
    # a word vocabulary of mostly unique words
    unique = [Pair(f"w{i} v{i} u{i}", f"t{i} s{i} r{i} q{i}") for i in range(6000)]
    word = {"data": {"src_tokenizer": {"type": "word"}}}
    assert any("data.src_tokenizer: word gives" in w for w in _warnings(word, {"train": unique}))
    # targets copied from their sources, copy off
    copied = [Pair(s, " ".join(s.split()[:6])) for s in sentences]
    sp = {"type": "sentencepiece"}
    no_copy = {"data": {"src_tokenizer": sp, "tgt_tokenizer": sp}}
    assert any("model.decoder.copy is off" in w for w in _warnings(no_copy, {"train": copied}))
    # one-word targets scored by BLEU
    labels = [Pair(s, s.split()[0]) for s in sentences]
    assert any("BLEU, which stays near 0" in w for w in _warnings({"task": "translation"}, {"train": labels}))
    assert not _warnings({"task": "transduction"}, {"train": labels})


@pytest.mark.parametrize(
    "name", ["toy_reverse", "g2p", "mt-debian-en-de", "mt-debian-en-fr", "summarize-debian", "qa-squad"]
)
def test_no_warning_on_our_recipes_with_their_own_data(name: str) -> None:
    config = load_config(name)
    try:
        check_corpora(config.data)
    except DataError:
        pytest.skip("../shared/data is not present")
    splits = {split: read_split(config, split) for split in ("train", "valid", "test")}
    assert data_warnings(config, task_of(config), splits) == []
