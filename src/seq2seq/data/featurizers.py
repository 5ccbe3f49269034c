"""Featurizers: what turns a side of a pair into the model's input, and (targets) back into text.

Every place that turns text into model input goes through one of these: training data, validation
batches, generation. A source featurizer gives ``Encoded`` features: token ids for text, or (a
later featurizer for audio) a (frames, features) float tensor, with a label per position for
attention pictures. The target side is always text: ids out, text back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from seq2seq.data.batching import Features
from seq2seq.data.tokenizers import Tokenizer, TokenizerType, load_tokenizer
from seq2seq.data.vocab import Vocabulary


class Encoded(NamedTuple):
    """features: what the model reads (ids, or frames x features); labels: one name per position."""

    features: Features
    labels: list[str]


class SourceFeaturizer(Protocol):
    """Source text (or a path to audio) -> model input. ``vocab`` is None where there are no
    source tokens (audio); ``files`` are what the model directory must keep to rebuild it."""

    @property
    def vocab(self) -> Vocabulary | None: ...

    def encode(self, source: str) -> Encoded: ...
    def files(self, prefix: str) -> dict[str, bytes]: ...


class TextFeaturizer:
    """Text <-> ids through a tokenizer and a vocabulary (either side of a text model)."""

    def __init__(self, tokenizer: Tokenizer, vocab: Vocabulary) -> None:
        self.tokenizer = tokenizer
        self.vocab = vocab

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
