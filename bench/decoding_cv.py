"""Decoding settings chosen without reading the figure they report: a two-fold cross-validation,
by speaker, of a speech model's valid split (AN4's is the only held-out split we have, and its
test set is held out from us).

    flock /tmp/cpu.lock .venv/bin/python bench/decoding_cv.py runs/asr-an4-transformer --lm runs/lm-an4

Decodes the valid split once per setting of the grid (joint CTC/attention search: beam x CTC
weight x LM weight), then splits the utterances into two halves by speaker (the folder holding the
audio file). On each half it picks the setting with the lowest WER there and decodes the other
half's utterances with it; the cross-validated WER scores those outputs over the whole split, so
no utterance is scored by a setting chosen on it. Also printed: each setting's WER on the whole
split, and the best of them (the optimistic figure, chosen where it is read).
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from pathlib import Path

import torch

import seq2seqkit
from seq2seqkit.evaluation import score, segments_of
from seq2seqkit.tasks import read_split, task_of

Setting = tuple[int, float, float]  # beam, CTC weight, LM weight


def speaker_folds(paths: list[str]) -> list[int]:
    """Fold 0 or 1 of each utterance: whole speakers, the larger ones first, each to the smaller fold."""
    speakers = Counter(Path(p).parent.name for p in paths)
    sizes, fold_of = [0, 0], {}
    for speaker, count in sorted(speakers.items(), key=lambda item: (-item[1], item[0])):
        fold = sizes.index(min(sizes))
        fold_of[speaker] = fold
        sizes[fold] += count
    return [fold_of[Path(p).parent.name] for p in paths]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a trained speech model directory (with a CTC head)")
    parser.add_argument("--lm", type=Path, help="a language model directory for shallow fusion")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--ctc-weights", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.0, 0.2, 0.3, 0.5, 0.7])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = seq2seqkit.load(args.model)
    task = task_of(pipeline.config)
    segments = segments_of(read_split(pipeline.config, "valid"), False)
    paths = [str(s.source) for s in segments]
    folds = speaker_folds(paths)

    def wer(texts: list[str], fold: int | None = None) -> float:
        """WER over the whole split, or over one fold's utterances."""
        chosen = [i for i, f in enumerate(folds) if fold is None or f == fold]
        return score(task, [texts[i] for i in chosen], [segments[i] for i in chosen])["WER"]

    grid = list(itertools.product(args.beams, args.ctc_weights, args.lm_weights if args.lm else [0.0]))
    outputs: dict[Setting, list[str]] = {}
    print(f"{args.model}: {len(paths)} valid utterances, folds of {folds.count(0)} and {folds.count(1)}")
    print("beam\tctc_weight\tlm_weight\tWER\tCER\tWER fold 0\tWER fold 1")
    for beam, ctc, weight in grid:
        lm = {"lm": str(args.lm), "lm_weight": weight} if args.lm else {}
        pipeline.set_decoding(method="joint", beam_size=beam, ctc_weight=ctc, **lm)
        texts = outputs[beam, ctc, weight] = [o.text for o in pipeline.generate(paths, beam=beam)]
        cer = score(task, texts, segments)["CER"]
        print(
            beam,
            ctc,
            weight,
            f"{wer(texts):.2f}",
            f"{cer:.2f}",
            f"{wer(texts, 0):.2f}",
            f"{wer(texts, 1):.2f}",
            sep="\t",
        )
    chosen = [min(grid, key=lambda setting: (wer(outputs[setting], fold), setting)) for fold in (0, 1)]
    crossed = [outputs[chosen[1 - fold]][i] for i, fold in enumerate(folds)]  # the other fold's choice
    best = min(grid, key=lambda setting: (wer(outputs[setting]), setting))
    print(f"chosen on fold 0: {chosen[0]}; on fold 1: {chosen[1]} (beam, ctc_weight, lm_weight)")
    print(f"cross-validated: WER {wer(crossed):.2f} CER {score(task, crossed, segments)['CER']:.2f}")
    print(f"best on the whole split, chosen where it is read: {best}, WER {wer(outputs[best]):.2f}")


if __name__ == "__main__":
    main()
