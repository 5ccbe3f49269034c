"""What a set of pairs looks like, in the figures that decide a recipe: lengths, symbols, word
types and how often they recur, and how much of each target its source already holds.

``profile(pairs)`` is read by ``auto.py`` (choosing a recipe from the data) and by
``preflight.py`` (warnings before training). It looks at text only: an audio source is a path.
Words are whitespace-separated and compared lower-cased, without surrounding punctuation, as
SQuAD's normalisation compares answers.
"""

from __future__ import annotations

import statistics
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from seq2seqkit.data.readers import Pair
from seq2seqkit.data.vocab import FIELD_SEPARATOR

SAMPLE = 20000  # pairs a profile reads, evenly spaced: enough for its quantiles and ratios


def words(text: str) -> list[str]:
    """Lower-cased words without the punctuation around them (empty ones dropped)."""
    stripped = (w.strip(string.punctuation + "“”‘’«»„") for w in text.lower().split())
    return [w for w in stripped if w]


@dataclass(frozen=True)
class SideProfile:
    """One side's figures: lengths (median and 99th percentile), in characters and words."""

    median_chars: float
    p99_chars: float
    median_words: float
    p99_words: float
    symbols: int  # distinct characters
    word_types: int
    singleton_share: float  # word types seen once, of all types
    words_per_type: float  # word tokens per type: how often a word-level vocabulary sees each

    @classmethod
    def of(cls, texts: Sequence[str]) -> SideProfile:
        chars = sorted(len(t) for t in texts)
        lengths = sorted(len(t.split()) for t in texts)
        counts = Counter(w for t in texts for w in t.split())
        return cls(
            median_chars=statistics.median(chars),
            p99_chars=_quantile(chars, 0.99),
            median_words=statistics.median(lengths),
            p99_words=_quantile(lengths, 0.99),
            symbols=len(set().union(*map(set, texts))),
            word_types=len(counts),
            singleton_share=sum(1 for c in counts.values() if c == 1) / max(1, len(counts)),
            words_per_type=sum(counts.values()) / max(1, len(counts)),
        )


@dataclass(frozen=True)
class Profile:
    """pairs: how many were read; the figures are of an evenly spaced sample of at most SAMPLE.
    copy_share: the share of target words found in their own source (DrQA-style normalised).
    span_share: the share of targets that are a word span of the source's last field.
    shared_symbols: the share of target characters whose symbol also occurs in sources (one
    script on both sides, or two).
    fields: source fields (joined with <sep>). sample: the pairs the shares are of."""

    pairs: int
    src: SideProfile
    tgt: SideProfile
    copy_share: float
    span_share: float
    shared_symbols: float
    fields: int
    sample: tuple[Pair, ...] = field(default=(), repr=False)

    @property
    def is_short_output(self) -> bool:
        """Targets of a few words or characters (a word, its phonemes, a name, a code, a label), not
        sentences."""
        return self.tgt.median_words <= 3 or self.tgt.median_chars <= 20


def profile(pairs: Sequence[Pair]) -> Profile:
    """The figures of ``pairs`` (at least one): lengths and types of all of them, the shares of
    an evenly spaced sample."""
    step = max(1, len(pairs) // SAMPLE)
    sample = list(pairs[::step])
    copied = total = spans = 0
    for pair in sample:
        src_words = words(pair.src)
        tgt_words = words(pair.tgt)
        known = set(src_words)
        copied += sum(1 for w in tgt_words if w in known)
        total += len(tgt_words)
        spans += _is_span(tgt_words, words(pair.src.split(FIELD_SEPARATOR)[-1]))
    src_symbols = set().union(*(set(p.src) for p in sample))
    tgt_chars = Counter(c for p in sample for c in p.tgt if not c.isspace())
    return Profile(
        pairs=len(pairs),
        src=SideProfile.of([p.src for p in pairs]),
        tgt=SideProfile.of([p.tgt for p in pairs]),
        copy_share=copied / max(1, total),
        span_share=spans / len(sample),
        shared_symbols=sum(n for c, n in tgt_chars.items() if c in src_symbols) / max(1, tgt_chars.total()),
        fields=1 + sample[0].src.count(FIELD_SEPARATOR),
        sample=tuple(sample),
    )


def _is_span(needle: list[str], haystack: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
