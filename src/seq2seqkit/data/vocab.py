"""Vocabulary: token <-> id, with the four specials at fixed ids and size / frequency limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = range(4)
# Between the fields of a source with several (a question and its context): an ordinary token at no
# fixed id, which every tokenizer keeps whole (data/tokenizers.py).
FIELD_SEPARATOR = "<sep>"


def join_fields(fields: Sequence[str]) -> str:
    """Several source fields as one source text."""
    return f" {FIELD_SEPARATOR} ".join(field.strip() for field in fields)


class Vocabulary:
    """Specials first (<pad>=0, <unk>=1, <sos>=2, <eos>=3), then tokens by falling frequency."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary must not repeat a token")
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(
        cls,
        sequences: Iterable[Sequence[str]],
        max_size: int | None = None,
        min_freq: int = 1,
        reserved: Sequence[str] = (),
    ) -> Vocabulary:
        """From tokenized sequences; ties in frequency are broken alphabetically (deterministic).
        ``reserved`` tokens (tags put before sources) follow the specials, whatever their counts."""
        counts = Counter(token for seq in sequences for token in seq)
        for special in (*SPECIALS, *reserved):
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [token for token, count in ranked if count >= min_freq]
        first = [*SPECIALS, *reserved]
        if max_size is not None:
            kept = kept[: max(0, max_size - len(first))]
        return cls([*first, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str], extended: Sequence[str] = ()) -> list[int]:
        """Ids of ``tokens``; an unknown token listed in ``extended`` (a source's own words, from
        ``encode_extended``) gets its extended id, any other <unk>."""
        if not extended:
            return [self.index.get(token, UNK_ID) for token in tokens]
        extra = {token: len(self.tokens) + k for k, token in enumerate(extended)}
        return [self.index.get(token, extra.get(token, UNK_ID)) for token in tokens]

    def encode_extended(self, tokens: Sequence[str]) -> tuple[list[int], list[str]]:
        """Ids over the vocabulary extended by this sequence's out-of-vocabulary tokens (See et al.,
        2017): the k-th distinct unknown token gets id len(self) + k. Returns (ids, the unknown
        tokens in id order), which ``decode`` takes back as ``extended``."""
        extended: dict[str, int] = {}
        ids = []
        for token in tokens:
            i = self.index.get(token)
            if i is None:
                i = extended.setdefault(token, len(self.tokens) + len(extended))
            ids.append(i)
        return ids, list(extended)

    def decode(self, ids: Iterable[int], extended: Sequence[str] = ()) -> list[str]:
        """Ids -> tokens, stopping at <eos> and leaving out the other specials but <unk>. Ids past
        the vocabulary name ``extended`` tokens (a source's words, from ``encode_extended``)."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i in (PAD_ID, SOS_ID):
                continue
            out.append(self.tokens[i] if i < len(self.tokens) else extended[i - len(self.tokens)])
        return out

    def to_text(self) -> str:
        """One token per line, in id order (the vocabulary file format)."""
        return "".join(token + "\n" for token in self.tokens)

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(path.read_text(encoding="utf-8").split("\n")[:-1])
