"""How often the field-match feature fires, by token id and on normalised text, over a split.

    .venv/bin/python bench/field_match_stats.py runs/qa-squad-reader [--split valid] [--limit 1000]

For a model trained with ``model.encoder.field_match`` on two-field sources (a question <sep> its
paragraph), encodes the split's first ``--limit`` sources with the model's tokenizer and counts
the paragraph tokens that match the question by id and by ``build.match_keys`` (lower case, no
word-boundary mark), and the pieces most often gained and lost by normalising. No training: it
says what ``encoder.field_match_normalized`` changes in the model's input.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch

import seq2seqkit
from seq2seqkit.build import COMMON_TOKENS, match_keys, separator_id
from seq2seqkit.data.vocab import PAD_ID, SPECIALS
from seq2seqkit.model.frontends import FieldMatchEmbedding
from seq2seqkit.tasks import read_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    pipeline = seq2seqkit.load(args.model)
    vocab, separator = pipeline.source.vocab, separator_id(pipeline.source.vocab)
    if vocab is None or separator is None:
        raise SystemExit(f"{args.model}: not a model of two-field text sources")
    common = len(SPECIALS) + COMMON_TOKENS
    by_id = FieldMatchEmbedding(len(vocab.tokens), 1, PAD_ID, separator, common)
    normalised = FieldMatchEmbedding(len(vocab.tokens), 1, PAD_ID, separator, common, match_keys(vocab))
    paragraph = matched_id = matched_text = 0
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for pair in read_split(pipeline.config, args.split)[: args.limit]:
        encoded = pipeline.source.encode(pair.src)
        src = torch.tensor([list(encoded.features)])
        a, b = by_id.field_features(src)[0], normalised.field_features(src)[0]
        paragraph += int((a >= 1).sum())
        matched_id += int((a == 2).sum())
        matched_text += int((b == 2).sum())
        gained.update(encoded.labels[i] for i in torch.nonzero((b == 2) & (a != 2))[:, 0].tolist())
        lost.update(encoded.labels[i] for i in torch.nonzero((a == 2) & (b != 2))[:, 0].tolist())
    print(f"paragraph tokens {paragraph}: matched by id {matched_id} ({100 * matched_id / paragraph:.2f}%), "
          f"normalised {matched_text} ({100 * matched_text / paragraph:.2f}%)")  # fmt: skip
    print(f"gained {gained.total()}: {gained.most_common(10)}")
    print(f"lost {lost.total()}: {lost.most_common(10)}")


if __name__ == "__main__":
    main()
