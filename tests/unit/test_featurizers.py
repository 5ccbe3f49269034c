"""Featurizers turn text into model input and ids back into text; several source fields keep
their separator as one token; extended-vocabulary ids name the source's own words."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seq2seqkit.build import build_tokenizer
from seq2seqkit.config import TokenizerConfig
from seq2seqkit.data.batching import collate
from seq2seqkit.data.featurizers import Encoded, TextFeaturizer, shorten
from seq2seqkit.data.tokenizers import CharTokenizer, WordTokenizer
from seq2seqkit.data.vocab import FIELD_SEPARATOR, UNK_ID, Vocabulary, join_fields


def test_text_featurizer_round_trip_and_files(tmp_path: Path) -> None:
    vocab = Vocabulary.build([["a", "b", "c"]])
    featurizer = TextFeaturizer(WordTokenizer(), vocab)
    encoded = featurizer.encode("a c zz")
    assert encoded.labels == ["a", "c", "zz"]
    assert encoded.features == [vocab.index["a"], vocab.index["c"], UNK_ID]
    assert featurizer.decode([*encoded.features, 3, 5]) == (["a", "c", "<unk>"], "a c <unk>")
    for name, data in featurizer.files("src").items():
        (tmp_path / name).write_bytes(data)
    loaded = TextFeaturizer.load("word", tmp_path, "src")
    assert loaded.encode("b a") == featurizer.encode("b a")


def test_extended_vocabulary_names_the_sources_unknown_words() -> None:
    vocab = Vocabulary.build([["the", "cat"]])
    ids, unknown = vocab.encode_extended(["the", "libfoo2", "cat", "libfoo2", "v1.2"])
    size = len(vocab)
    assert unknown == ["libfoo2", "v1.2"]
    assert ids == [vocab.index["the"], size, vocab.index["cat"], size, size + 1]
    assert vocab.decode([*ids, 3], extended=unknown) == ["the", "libfoo2", "cat", "libfoo2", "v1.2"]
    with pytest.raises(IndexError):
        vocab.decode([size + 2], extended=unknown)


def test_joined_fields_keep_their_separator_as_one_token() -> None:
    source = join_fields(["Who wrote it?", "  It was   written by Ann. "])
    assert source == f"Who wrote it? {FIELD_SEPARATOR} It was   written by Ann."
    chars = CharTokenizer().encode(source)
    assert chars.count(FIELD_SEPARATOR) == 1 and "<" not in chars
    assert chars[chars.index(FIELD_SEPARATOR) - 1] == "?"  # no space token around the separator
    assert WordTokenizer().encode(f"a{FIELD_SEPARATOR}b") == ["a", FIELD_SEPARATOR, "b"]
    texts = [join_fields([f"question {i}", f"context number {i}"]) for i in range(200)]
    pieces = build_tokenizer(TokenizerConfig(type="sentencepiece", vocab_size=40), texts).encode(texts[0])
    assert FIELD_SEPARATOR in pieces


def test_text_without_a_separator_tokenizes_as_before() -> None:
    assert CharTokenizer().encode("  a  b ") == ["a", " ", "b"]
    assert WordTokenizer().encode(" x  y ") == ["x", "y"]


def test_collate_pads_float_features_as_well_as_ids() -> None:
    frames = [torch.ones(3, 2), torch.full((5, 2), 2.0)]
    batch = collate(frames, [[4], [5, 6]], [0, 1])
    assert batch.src.shape == (2, 5, 2) and batch.src.dtype == torch.float32
    assert batch.src_lengths.tolist() == [3, 5]
    assert batch.src[0, 3:].abs().sum() == 0


def test_shorten_keeps_the_start_or_the_context_window_a_question_is_about() -> None:
    vocab = Vocabulary.build([])
    featurizer = TextFeaturizer(WordTokenizer(), vocab)
    context = "the city was founded long ago . its river is named Elbe and flows north ."
    source = featurizer.encode(join_fields(["which river flows there", context]))
    question_end = source.labels.index(FIELD_SEPARATOR) + 1

    start = shorten(source, 8)
    assert start.labels == source.labels[:8] and start.features == source.features[:8]

    window = shorten(source, question_end + 6, window=True)
    assert window.labels[:question_end] == source.labels[:question_end]
    assert window.labels[question_end:] == ["river", "is", "named", "Elbe", "and", "flows"]
    assert len(window.features) == len(window.labels)

    assert shorten(source, 200, window=True) is source
    single = featurizer.encode(context)  # one field: nothing to match, so the start
    assert shorten(single, 5, window=True).labels == single.labels[:5]


def test_shorten_cuts_float_features_at_their_start() -> None:
    frames = Encoded(torch.arange(12.0).reshape(6, 2), ["a", FIELD_SEPARATOR, "b", "c", "d", "e"])
    cut = shorten(frames, 3, window=True)
    assert torch.equal(cut.features, frames.features[:3]) and cut.labels == ["a", FIELD_SEPARATOR, "b"]
