"""Warnings before training, for every recipe, hand-written or chosen from the data: what in the
recipe and its data will make training go wrong, each one line naming the value and what to change.

``data_warnings`` reads the splits and the config before anything is built: a word vocabulary
the data cannot train, evaluation pairs repeated from training, a target mostly copied from its
source while copy is off, and a selection metric that cannot move on these outputs. Two more are
measured where their figures exist: the training workflow warns when the length limits drop more
than 1% of the training pairs, and the trainer when the time budget buys less than one epoch at the
speed of the first steps.
"""

from __future__ import annotations

from seq2seqkit.config import Config
from seq2seqkit.data.profile import Profile, profile
from seq2seqkit.data.readers import Pair
from seq2seqkit.tasks import Task

REPEATED_SHARE = 0.01  # of an evaluation split found in training
COPY_SHARE = 0.5  # of target words found in their source
SINGLETON_SHARE = 0.5  # of a word vocabulary's types seen once
LARGE_WORD_VOCABULARY = 5000


def data_warnings(config: Config, task: Task, splits: dict[str, list[Pair]]) -> list[str]:
    """The warnings that the data and config give before training (texts; none for good data)."""
    train = splits["train"]
    if not train:
        return []
    warnings = _repeated(train, splits)
    if config.data.source == "audio":
        return warnings
    prof = profile(train)
    return warnings + _vocabulary(config, prof) + _copy(config, prof) + _metric(config, task, prof)


def _repeated(train: list[Pair], splits: dict[str, list[Pair]]) -> list[str]:
    seen = {(p.src, p.tgt) for p in train}
    warnings = []
    for split in ("valid", "test"):
        pairs = splits.get(split) or []
        repeated = sum(1 for p in pairs if (p.src, p.tgt) in seen)
        if pairs and repeated / len(pairs) > REPEATED_SHARE:
            warnings.append(
                f"data.{split}: {repeated:,} of its {len(pairs):,} pairs ({repeated / len(pairs):.0%}) are "
                "also "
                f"training pairs, so its scores overstate held-out quality: remove them from one of the files"
            )
    return warnings


def _vocabulary(config: Config, prof: Profile) -> list[str]:
    warnings = []
    for side, tokenizer, figures in (
        ("src", config.data.src_tokenizer, prof.src),
        ("tgt", config.data.tgt_tokenizer, prof.tgt),
    ):
        if (
            tokenizer.type == "word"
            and figures.word_types > LARGE_WORD_VOCABULARY
            and figures.singleton_share > SINGLETON_SHARE
        ):
            warnings.append(
                f"data.{side}_tokenizer: word gives {figures.word_types:,} types, "
                f"{figures.singleton_share:.0%} "
                "of them seen once, too many for the data to train (and a slow output layer): use "
                "{type: sentencepiece, vocab_size: 8000} or {type: char}"
            )
    return warnings


def _copy(config: Config, prof: Profile) -> list[str]:
    decoder = config.model.decoder
    if decoder.copy or decoder.output == "pointer" or config.data.tgt_tokenizer.type == "char":
        return []
    if prof.copy_share < COPY_SHARE:
        return []
    return [
        f"model.decoder.copy is off, but {prof.copy_share:.0%} of target words occur in their source: set "
        "model.decoder.copy: true (with data.shared_vocab: true) so that unseen words can be copied"
    ]


def _metric(config: Config, task: Task, prof: Profile) -> list[str]:
    if not task.metrics:  # a language model: perplexity
        return []
    primary = task.primary.name
    words = prof.tgt.median_words
    if primary == "BLEU" and words <= 3:
        return [
            f"task {config.task} selects checkpoints by BLEU, which stays near 0 on outputs of median "
            f"{words:g} words: set task: transduction (exact match, then chrF)"
        ]
    if primary == "exact match" and words >= 10:
        return [
            f"task {config.task} selects checkpoints by exact match, which stays near 0 on outputs of median "
            f"{words:g} words: set task: translation (BLEU, chrF)"
        ]
    return []
