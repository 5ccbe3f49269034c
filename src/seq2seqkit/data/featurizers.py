"""Featurizers: what turns a side of a pair into the model's input, and (targets) back into text.

Every place that turns text into model input goes through one of these: training data, validation
batches, generation. A source featurizer gives ``Encoded`` features: token ids for text, or (a
later featurizer for audio) a (frames, features) float tensor, with a label per position for
attention pictures. The target side is always text: ids out, text back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from torch import Tensor

from seq2seqkit.data.batching import Features
from seq2seqkit.data.tokenizers import Tokenizer, TokenizerType, WordTokenizer, load_tokenizer
from seq2seqkit.data.vocab import FIELD_SEPARATOR, Vocabulary


class Encoded(NamedTuple):
    """features: what the model reads (ids, or frames x features); labels: one name per position."""

    features: Features
    labels: list[str]


class SourceFeaturizer(Protocol):
    """Source text (or a path to audio) -> model input. ``vocab`` is None where there are no
    source tokens (audio); ``files`` are what the model directory must keep to rebuild it."""

    @property
    def vocab(self) -> Vocabulary | None: ...
    @property
    def input_size(self) -> int: ...  # the vocabulary's size, or features per frame

    def encode(self, source: str) -> Encoded: ...
    def files(self, prefix: str) -> dict[str, bytes]: ...


class TextFeaturizer:
    """Text <-> ids through a tokenizer and a vocabulary (either side of a text model)."""

    def __init__(self, tokenizer: Tokenizer, vocab: Vocabulary) -> None:
        self.tokenizer = tokenizer
        self.vocab = vocab

    @property
    def input_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> Encoded:
        tokens = self.tokenizer.encode(text)
        return Encoded(self.vocab.encode(tokens), tokens)

    def ids(self, text: str, extended: Sequence[str] = ()) -> list[int]:
        """Ids of ``text``; words in ``extended`` (a source's unknown words) get extended ids."""
        return self.vocab.encode(self.tokenizer.encode(text), extended)

    def decode(self, ids: Sequence[int], extended: Sequence[str] = ()) -> tuple[list[str], str]:
        """(tokens, detokenized text) of output ids, up to <eos>; ``extended`` names ids past the
        vocabulary (copied source words)."""
        tokens = self.vocab.decode(ids, extended)
        return tokens, self.tokenizer.decode(tokens)

    def files(self, prefix: str) -> dict[str, bytes]:
        """The tokenizer's files and ``{prefix}_vocab.txt``."""
        return {**self.tokenizer.files(prefix), f"{prefix}_vocab.txt": self.vocab.to_text().encode("utf-8")}

    @classmethod
    def load(cls, tokenizer: TokenizerType, directory: Path, prefix: str) -> TextFeaturizer:
        """Rebuild from the files that ``files(prefix)`` wrote into ``directory``."""
        return cls(
            load_tokenizer(tokenizer, directory, prefix), Vocabulary.load(directory / f"{prefix}_vocab.txt")
        )


def tagged(encoded: Encoded, tag: str, vocab: Vocabulary) -> Encoded:
    """``encoded`` (text) with the token ``tag`` of the source vocabulary before it: a source marked
    as synthetic (tagged back-translation)."""
    assert not isinstance(encoded.features, Tensor), "tags go before text sources"
    return Encoded([vocab.index[tag], *encoded.features], [tag, *encoded.labels])


def shorten(encoded: Encoded, limit: int, window: bool = False) -> Encoded:
    """``encoded`` cut to ``limit`` positions: its start, or with ``window`` (a source of several
    fields, e.g. a question and its context) the first fields whole and the window of the last
    field that shares the most words with them (the part of a long context a question is about)."""
    if len(encoded.labels) <= limit:
        return encoded
    if not window or FIELD_SEPARATOR not in encoded.labels or isinstance(encoded.features, Tensor):
        return Encoded(encoded.features[:limit], encoded.labels[:limit])
    last_field = context_start(encoded.labels)
    room = limit - last_field
    if room <= 0:
        return Encoded(encoded.features[:limit], encoded.labels[:limit])
    start = _best_window(encoded.labels[:last_field], encoded.labels[last_field:], room) + last_field
    kept = [*range(last_field), *range(start, start + room)]
    return Encoded([encoded.features[i] for i in kept], [encoded.labels[i] for i in kept])


def _best_window(query: list[str], text: list[str], size: int) -> int:
    """Start of the ``size``-token window of ``text`` holding the most tokens that occur in
    ``query`` (ignoring case and SentencePiece's word marks); the earliest among equals."""
    words = {_word(token) for token in query} - {""}
    hits = [int(_word(token) in words) for token in text]
    count = best = sum(hits[:size])
    best_start = 0
    for start in range(1, len(text) - size + 1):
        count += hits[start + size - 1] - hits[start - 1]
        if count > best:
            best_start, best = start, count
    return best_start


def _word(token: str) -> str:
    """A token compared across fields: lower case, without SentencePiece's word mark; tokens of
    one or two characters (articles, punctuation, short pieces) match too often to count."""
    word = token.lstrip("\u2581").lower()
    return word if len(word) > 2 else ""


def context_start(labels: Sequence[str]) -> int:
    """The first position of a source's last field (after its last <sep>; 0 for one field)."""
    return len(labels) - list(labels)[::-1].index(FIELD_SEPARATOR) if FIELD_SEPARATOR in labels else 0


def _text(labels: Sequence[str], words: bool) -> tuple[str, list[int]]:
    """The lower-cased text that ``labels`` spell (pieces with SentencePiece's word mark, characters,
    or ``words``, which get spaces between them), and where each label's text ends in it."""
    text, ends = "", []
    for label in labels:
        text += (" " if words and text else "") + label.replace("\u2581", " ").lower()
        ends.append(len(text))
    return text, ends


def answer_span(encoded: Encoded, answer: str, tokenizer: Tokenizer) -> tuple[int, int] | None:
    """The first and last positions of the first place in the last field of ``encoded`` that reads
    ``answer`` (as the tokenizer normalises it; lower case; not inside a longer word); or None."""
    first, words = context_start(encoded.labels), isinstance(tokenizer, WordTokenizer)
    text, ends = _text(encoded.labels[first:], words)
    wanted = _text(tokenizer.encode(answer), words)[0].strip()
    found = re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text) if wanted else None
    if found is None:
        return None
    start = next(i for i, end in enumerate(ends) if end > found.start())
    last = next(i for i, end in enumerate(ends) if end >= found.end())
    return first + start, first + last


def window_around(
    encoded: Encoded, limit: int, span: tuple[int, int], offset: float
) -> tuple[Encoded, tuple[int, int]]:
    """``encoded`` cut to ``limit`` positions, its first fields whole and a window of its last field
    that holds ``span``, placed at ``offset`` (0-1) of the room around it; and the span's positions
    in the cut. Unchanged when it fits (or when the span cannot fit)."""
    first = context_start(encoded.labels)
    room = limit - first
    start, end = span
    if len(encoded.labels) <= limit or end - start + 1 > room:
        return encoded, span
    lowest, highest = max(first, end - room + 1), min(start, len(encoded.labels) - room)
    begin = lowest + round(offset * (highest - lowest))
    kept = [*range(first), *range(begin, begin + room)]
    features = encoded.features
    assert not isinstance(features, Tensor), "a window of text ids"
    cut = Encoded([features[i] for i in kept], [encoded.labels[i] for i in kept])
    return cut, (start - begin + first, end - begin + first)
