"""Tokenizers: text <-> tokens, by characters, by whitespace, or SentencePiece (BPE / unigram).

A tokenizer names the files it needs in the model directory (``files``; the model directory
writes them) and is rebuilt from them, so a model always reads and writes text the way it was
trained to. Each keeps the field separator of multi-field sources (``<sep>``) as one token.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

from seq2seq.data.vocab import FIELD_SEPARATOR

TokenizerType = Literal["char", "word", "sentencepiece"]


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[str]: ...
    def decode(self, tokens: list[str]) -> str: ...
    def files(self, prefix: str) -> dict[str, bytes]: ...


class CharTokenizer:
    """One token per character (a space is a token too), after collapsing runs of whitespace."""

    def encode(self, text: str) -> list[str]:
        first, *rest = text.split(FIELD_SEPARATOR)
        tokens = list(" ".join(first.split()))
        for field in rest:
            tokens += [FIELD_SEPARATOR, *" ".join(field.split())]
        return tokens

    def decode(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def files(self, prefix: str) -> dict[str, bytes]:
        return {}


class WordTokenizer:
    """Whitespace-separated tokens (for pre-tokenized text such as phoneme strings)."""

    def encode(self, text: str) -> list[str]:
        return text.replace(FIELD_SEPARATOR, f" {FIELD_SEPARATOR} ").split()

    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def files(self, prefix: str) -> dict[str, bytes]:
        return {}


class SentencePieceTokenizer:
    """Subwords from a SentencePiece model (Kudo and Richardson, 2018) trained on the training data."""

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, model_type: Literal["bpe", "unigram"]
    ) -> SentencePieceTokenizer:
        import sentencepiece as spm

        texts = list(texts)
        # one piece for the field separator, where sources have several fields
        separator = [FIELD_SEPARATOR] if any(FIELD_SEPARATOR in text for text in texts) else []
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            user_defined_symbols=separator,
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=0.9999,
            hard_vocab_limit=False,  # a small corpus may not have vocab_size pieces
            # our Vocabulary owns the special symbols; keep only <unk> inside SentencePiece
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            minloglevel=2,
        )
        return cls(model.getvalue())

    def encode(self, text: str) -> list[str]:
        return self.processor.encode(text, out_type=str)

    def decode(self, tokens: list[str]) -> str:
        return self.processor.decode_pieces(tokens)

    def files(self, prefix: str) -> dict[str, bytes]:
        return {f"{prefix}.spm.model": self.model_proto}


def load_tokenizer(kind: TokenizerType, directory: Path, prefix: str) -> Tokenizer:
    """Rebuild a tokenizer saved by ``save`` into a model directory."""
    if kind == "char":
        return CharTokenizer()
    if kind == "word":
        return WordTokenizer()
    return SentencePieceTokenizer((directory / f"{prefix}.spm.model").read_bytes())
