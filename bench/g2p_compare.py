"""Where a G2P model and Phonetisaurus go wrong: the words each gets wrong, by word length.

    bash bench/g2p_phonetisaurus.sh                      # writes $PEERS/phonetisaurus/test.predicted
    .venv/bin/python bench/g2p_compare.py runs/g2p [--beam 5]

Decodes the test split with the model and reads Phonetisaurus's predictions for the same words
(its first pronunciation per word, as bench/g2p_phonetisaurus.sh scores it). Prints the share of
words that both, only the model or only Phonetisaurus get wrong (a word is right when it matches
one of its references), WER of each by spelling length, and a sample of the words only the model
gets wrong.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import Counter
from pathlib import Path

import seq2seqkit
from seq2seqkit.evaluation import segments_of
from seq2seqkit.tasks import read_split, task_of

LENGTHS = [(1, 5), (6, 8), (9, 11), (12, 99)]  # letters; about 1,200 / 3,300 / 1,500 / 300 test words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--examples", type=int, default=12)
    peers = Path(os.environ.get("PEERS", "/tmp/peers"))
    parser.add_argument("--predicted", type=Path, default=peers / "phonetisaurus" / "test.predicted")
    args = parser.parse_args()
    if not args.predicted.is_file():
        raise SystemExit(f"{args.predicted}: no Phonetisaurus predictions (run bench/g2p_phonetisaurus.sh)")
    phonetisaurus: dict[str, str] = {}
    for line in args.predicted.read_text().splitlines():
        word, _, phonemes = line.partition(" ")
        phonetisaurus.setdefault(word, phonemes.strip())

    pipeline = seq2seqkit.load(args.model)
    test = segments_of(read_split(pipeline.config, "test"), task_of(pipeline.config).group_references)
    ours = [h.text for h in pipeline.generate([s.source for s in test], beam=args.beam)]
    ours_right = [o in s.references for o, s in zip(ours, test, strict=True)]
    theirs_right = [phonetisaurus.get(s.source, "") in s.references for s in test]

    n = len(test)
    share = Counter(zip(ours_right, theirs_right, strict=True))
    percent = {key: 100 * count / n for key, count in share.items()}
    print(f"{n} test words; WER: model {100 - 100 * sum(ours_right) / n:.2f}, "
          f"Phonetisaurus {100 - 100 * sum(theirs_right) / n:.2f}")  # fmt: skip
    for name, key in (
        ("both", (False, False)),
        ("the model only", (False, True)),
        ("Phonetisaurus only", (True, False)),
    ):
        print(f"wrong in {name}: {percent.get(key, 0.0):.2f}% of the words")
    print("letters\twords\tWER model\tWER Phonetisaurus")
    for low, high in LENGTHS:
        rows = [i for i, s in enumerate(test) if low <= len(s.source) <= high]
        wrong_ours = 100 * sum(not ours_right[i] for i in rows) / max(len(rows), 1)
        wrong_theirs = 100 * sum(not theirs_right[i] for i in rows) / max(len(rows), 1)
        print(f"{low}-{high}\t{len(rows)}\t{wrong_ours:.1f}\t{wrong_theirs:.1f}")
    only_ours = [i for i in range(n) if not ours_right[i] and theirs_right[i]]
    print("word\tmodel\tPhonetisaurus (right)")
    for i in random.Random(0).sample(only_ours, min(args.examples, len(only_ours))):
        print(f"{test[i].source}\t{ours[i]}\t{phonetisaurus[test[i].source]}")


if __name__ == "__main__":
    main()
