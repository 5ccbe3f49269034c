"""Vocabulary: fixed special ids, frequency order, size limits, encode/decode and the file format."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seqkit.data.vocab import (
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    SOS,
    SOS_ID,
    SPECIALS,
    UNK,
    UNK_ID,
    Vocabulary,
)

# b x3, a x3, c x2, d x1: a and b tie, so alphabetical order puts a first
SEQUENCES = [["b", "a", "c"], ["b", "a", "d"], ["c", "b", "a"]]


def test_specials_have_fixed_ids() -> None:
    vocab = Vocabulary.build(SEQUENCES)
    assert (PAD_ID, UNK_ID, SOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert vocab.tokens[:4] == [PAD, UNK, SOS, EOS]
    assert [vocab.index[s] for s in SPECIALS] == [0, 1, 2, 3]


def test_frequency_order_with_alphabetical_tie_break() -> None:
    assert Vocabulary.build(SEQUENCES).tokens[4:] == ["a", "b", "c", "d"]


def test_order_does_not_depend_on_input_order() -> None:
    reordered = [list(reversed(seq)) for seq in reversed(SEQUENCES)]
    assert Vocabulary.build(reordered).tokens == Vocabulary.build(SEQUENCES).tokens


def test_specials_in_the_data_are_not_counted_twice() -> None:
    vocab = Vocabulary.build([[PAD, "x", EOS, UNK, SOS, "x"]])
    assert vocab.tokens == [*SPECIALS, "x"]


@pytest.mark.parametrize(
    ("max_size", "expected"),
    [(None, ["a", "b", "c", "d"]), (7, ["a", "b", "c"]), (5, ["a"]), (4, []), (100, ["a", "b", "c", "d"])],
)
def test_max_size_counts_the_specials(max_size: int | None, expected: list[str]) -> None:
    vocab = Vocabulary.build(SEQUENCES, max_size=max_size)
    assert vocab.tokens[4:] == expected
    assert len(vocab) == 4 + len(expected)


@pytest.mark.parametrize(
    ("min_freq", "expected"), [(1, ["a", "b", "c", "d"]), (2, ["a", "b", "c"]), (3, ["a", "b"]), (4, [])]
)
def test_min_freq(min_freq: int, expected: list[str]) -> None:
    assert Vocabulary.build(SEQUENCES, min_freq=min_freq).tokens[4:] == expected


def test_max_size_and_min_freq_together() -> None:
    assert Vocabulary.build(SEQUENCES, max_size=5, min_freq=2).tokens[4:] == ["a"]


def test_unknown_tokens_encode_to_unk() -> None:
    vocab = Vocabulary.build(SEQUENCES)
    assert vocab.encode(["a", "zzz", "d", ""]) == [4, UNK_ID, 7, UNK_ID]


def test_decode_stops_at_eos_and_drops_pad_and_sos() -> None:
    vocab = Vocabulary.build(SEQUENCES)
    ids = [SOS_ID, 4, PAD_ID, 5, UNK_ID, EOS_ID, 6, 7]
    assert vocab.decode(ids) == ["a", "b", UNK]


def test_decode_inverts_encode_for_known_tokens() -> None:
    vocab = Vocabulary.build(SEQUENCES)
    tokens = ["d", "a", "c", "c", "b"]
    assert vocab.decode(vocab.encode(tokens)) == tokens
    assert vocab.decode([*vocab.encode(tokens), EOS_ID, *vocab.encode(["a"])]) == tokens


@pytest.mark.parametrize(
    "tokens",
    [["x", "<pad>", "<unk>", "<sos>", "<eos>"], ["<pad>", "<unk>", "<sos>"], [*SPECIALS, "a", "a"]],
)
def test_constructor_rejects_bad_token_lists(tokens: list[str]) -> None:
    with pytest.raises(ValueError):
        Vocabulary(tokens)


def test_file_round_trip(tmp_path: Path) -> None:
    vocab = Vocabulary.build(SEQUENCES + [["ä", "日本", "▁", "x y"]])
    text = vocab.to_text()
    assert text.splitlines() == vocab.tokens
    path = tmp_path / "vocab.txt"
    path.write_text(text, encoding="utf-8")
    loaded = Vocabulary.load(path)
    assert loaded.tokens == vocab.tokens
    assert loaded.index == vocab.index


# tokens as the tokenizers produce them: no whitespace inside a token
TOKEN = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=4
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(sequences=st.lists(st.lists(TOKEN, max_size=8), max_size=8), max_size=st.none() | st.integers(4, 12))
def test_build_properties_and_round_trip(
    tmp_path_factory: pytest.TempPathFactory, sequences: list[list[str]], max_size: int | None
) -> None:
    vocab = Vocabulary.build(sequences, max_size=max_size)
    assert vocab.tokens[:4] == list(SPECIALS)
    assert max_size is None or len(vocab) <= max_size
    counts = {t: sum(seq.count(t) for seq in sequences) for t in vocab.tokens[4:]}
    ranks = [(-counts[t], t) for t in vocab.tokens[4:]]
    assert ranks == sorted(ranks)
    for seq in sequences:
        ids = vocab.encode(seq)
        assert all(0 <= i < len(vocab) for i in ids)
        assert all((tok in vocab.index) == (i != UNK_ID) for tok, i in zip(seq, ids, strict=True))
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text(vocab.to_text(), encoding="utf-8")
    assert Vocabulary.load(path).tokens == vocab.tokens
