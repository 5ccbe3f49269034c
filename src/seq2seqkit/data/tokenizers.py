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

from seq2seqkit.data.vocab import FIELD_SEPARATOR

TokenizerType = Literal["char", "word", "sentencepiece"]


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[str]: ...
    def decode(self, tokens: list[str]) -> str: ...
    def files(self, prefix: str) -> dict[str, bytes]: ...
    # where each token starts or ends a word: answers decoded as spans of a context are whole words
    def word_edges(self, tokens: list[str]) -> tuple[list[bool], list[bool]]: ...


def _word_edges(pieces: list[str]) -> tuple[list[bool], list[bool]]:
    """Whether a word starts and whether one ends at each of ``pieces`` (characters, or pieces with
    a leading space): words are runs of letters and digits, and each other character, a
    punctuation mark, is a word of its own; a space is neither."""

    def boundary(left: str, right: str) -> bool:
        return not (left[-1:].isalnum() and right[:1].isalnum())  # a space is not alphanumeric

    starts, ends = [], []
    for i, piece in enumerate(pieces):
        word = not piece.isspace()
        starts.append(word and boundary(pieces[i - 1] if i else " ", piece))
        ends.append(word and boundary(piece, pieces[i + 1] if i + 1 < len(pieces) else " "))
    return starts, ends


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

    def word_edges(self, tokens: list[str]) -> tuple[list[bool], list[bool]]:
        return _word_edges(tokens)


class WordTokenizer:
    """Whitespace-separated tokens (for pre-tokenized text such as phoneme strings)."""

    def encode(self, text: str) -> list[str]:
        return text.replace(FIELD_SEPARATOR, f" {FIELD_SEPARATOR} ").split()

    def decode(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def files(self, prefix: str) -> dict[str, bytes]:
        return {}

    def word_edges(self, tokens: list[str]) -> tuple[list[bool], list[bool]]:
        return [True] * len(tokens), [True] * len(tokens)  # each token is a word


SPACE = "\u2581"  # SentencePiece's mark of a space before a piece: "▁word"


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

    def pieces(self) -> list[str]:
        """Every piece of the model but <unk> (id 0, which our Vocabulary owns)."""
        return [self.processor.id_to_piece(i) for i in range(1, self.processor.get_piece_size())]

    def sampling(self, alpha: float, nbest_size: int) -> SampledSentencePiece:
        """This model, segmenting each text by a sample (subword regularization) instead of the best."""
        return SampledSentencePiece(self, alpha, nbest_size)

    def files(self, prefix: str) -> dict[str, bytes]:
        return {f"{prefix}.spm.model": self.model_proto}

    def word_edges(self, tokens: list[str]) -> tuple[list[bool], list[bool]]:
        return _word_edges([token.replace(SPACE, " ") for token in tokens])  # ▁ marks a space


class SampledSentencePiece:
    """A SentencePiece tokenizer whose ``encode`` samples a segmentation: for a unigram model from
    the ``nbest_size`` best (-1: all) with probabilities smoothed by ``alpha`` (Kudo, 2018), for a
    BPE model by leaving out each merge with probability ``alpha`` (BPE-dropout, Provilkov et al.,
    2020). Draws follow SentencePiece's generator, which ``seed_sampling`` seeds."""

    def __init__(self, base: SentencePieceTokenizer, alpha: float, nbest_size: int) -> None:
        self.base, self.alpha, self.nbest_size = base, alpha, nbest_size

    def encode(self, text: str) -> list[str]:
        return self.base.processor.encode(
            text, out_type=str, enable_sampling=True, alpha=self.alpha, nbest_size=self.nbest_size
        )

    def decode(self, tokens: list[str]) -> str:
        return self.base.decode(tokens)

    def files(self, prefix: str) -> dict[str, bytes]:
        return self.base.files(prefix)

    def word_edges(self, tokens: list[str]) -> tuple[list[bool], list[bool]]:
        return self.base.word_edges(tokens)


def seed_sampling(seed: int) -> None:
    """Seed SentencePiece's sampling (one generator per process): the same seed, the same draws."""
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)


def load_tokenizer(kind: TokenizerType, directory: Path, prefix: str) -> Tokenizer:
    """Rebuild a tokenizer saved by ``save`` into a model directory."""
    if kind == "char":
        return CharTokenizer()
    if kind == "word":
        return WordTokenizer()
    return SentencePieceTokenizer((directory / f"{prefix}.spm.model").read_bytes())
