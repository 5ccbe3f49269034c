"""``train(config, output_dir)``: the whole training workflow around the loop.

Prepare the model directory, read the task's splits, build the pipeline (featurizers and model)
or reload it to resume, encode the data, run the ``Trainer`` with the task's validation, then
score the best weights on the test split; the model card (``model_card.py``) is written when
training starts and rewritten when it ends. Under torchrun every process runs this; rank 0 alone
builds the featurizers and writes the model directory, which the others then read.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from seq2seqkit import checkpoint
from seq2seqkit.build import build_featurizers, build_loss, load_featurizers, model_for
from seq2seqkit.config import Config, DataConfig
from seq2seqkit.data.audio import AudioFeaturizer
from seq2seqkit.data.featurizers import Encoded, TextFeaturizer, answer_span, shorten, tagged, window_around
from seq2seqkit.data.readers import Pair, ReadReport
from seq2seqkit.data.tokenizers import SentencePieceTokenizer, seed_sampling
from seq2seqkit.data.vocab import UNK_ID
from seq2seqkit.device import configure_memory, resolve_device
from seq2seqkit.errors import ConfigError
from seq2seqkit.evaluation import EvaluationResult, evaluate
from seq2seqkit.model_card import PairCounts, write_model_card
from seq2seqkit.pipeline import Pipeline
from seq2seqkit.preflight import data_warnings
from seq2seqkit.recipes import check_corpora
from seq2seqkit.tasks import Task, task_of
from seq2seqkit.training.distributed import World
from seq2seqkit.training.reporter import setup_logging
from seq2seqkit.training.trainer import PERPLEXITY, EncodedPairs, Selection, Trainer

log = logging.getLogger("seq2seqkit")
SUBSET_SEED = 20260  # of data.train_fraction's shuffle: fixed, not the run's seed, so subsets nest
DROPPED_SHARE = 0.01  # of the training pairs, past the length limits: more is warned about


def train(config: Config, output_dir: str | Path | None = None, resume: bool = False) -> Path:
    """Train as configured (on one process, or as one rank of several under torchrun); returns
    the model directory."""
    configure_memory()
    device = resolve_device(config.training.device)
    world = World.from_environment(device)
    try:
        out = _train(config, Path(output_dir or config.output_dir), resume, world.device(device), world)
        # Ranks leave together: a rank that tore its process group down and exited while rank 0
        # was still testing and writing aborted now and then in gloo ("terminate called without an
        # active exception": 4 of 160 two-process runs, 0 of 100 with this barrier), failing a
        # run that had succeeded.
        world.barrier()
        return out
    finally:
        world.close()


def _train(config: Config, out: Path, resume: bool, device: torch.device, world: World) -> Path:
    _prepare_output_dir(out, resume)
    if world.is_main:
        setup_logging(out / "train.log")
    else:  # the others only say what goes wrong
        logging.getLogger("seq2seqkit").setLevel(logging.WARNING)
    cfg = config.training
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    task = task_of(config)
    train_pairs, valid_pairs, test_pairs = _read_splits(task, config)
    if world.is_main and not resume:
        splits = {"train": train_pairs, "valid": valid_pairs, "test": test_pairs}
        for warning in data_warnings(config, task, splits):
            log.warning("warning: %s", warning)
        pipeline = _new_pipeline(config, train_pairs, device)
        _check_free_space(out, pipeline.model, cfg.average_last)
        pipeline.save(out)
    world.barrier()  # the others read the featurizers rank 0 built
    if resume or not world.is_main:
        pipeline = _load_pipeline(out, config, device)
    if world.rank:  # dropout draws differ between ranks; DDP gives all of them rank 0's weights
        torch.manual_seed(cfg.seed + world.rank)
    data = _encode_training_data(pipeline, train_pairs)
    trainer = Trainer(
        config=cfg,
        model=pipeline.model,
        loss=build_loss(
            pipeline.model, coverage_weight=cfg.coverage_loss_weight, ctc_weight=config.model.ctc_weight
        ),
        data=data,
        valid=_encode_validation_data(pipeline, valid_pairs),
        validate=(lambda: evaluate(pipeline, valid_pairs, task, beam=1).scores) if task.metrics else None,
        selection=Selection(task.primary.name, task.primary.higher_is_better) if task.metrics else PERPLEXITY,
        out=out,
        world=world,
    )
    if resume:
        trainer.restore()
    counts = PairCounts(len(train_pairs), len(data.src), len(valid_pairs), len(test_pairs))
    if world.is_main:
        write_model_card(out, config, trainer, counts, finished=False)
    trainer.run()
    if not world.is_main:
        return out

    checkpoint.load_weights(out / checkpoint.WEIGHTS, pipeline.model)
    if cfg.evaluate_test and test_pairs and task.metrics:
        beam = 1 if pipeline.model.output_kind == "pointer" else config.decoding.beam_size  # no beam
        _test_report(pipeline, test_pairs, task, beam, out)
    write_model_card(out, config, trainer, counts, finished=True)
    return out


def dry_run(config: Config) -> list[str]:
    """The warnings that training ``config`` would print before it starts (data_warnings)."""
    task = task_of(config)
    train_pairs, valid_pairs, test_pairs = _read_splits(task, config)
    return data_warnings(config, task, {"train": train_pairs, "valid": valid_pairs, "test": test_pairs})


def _read_splits(task: Task, config: Config) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Train, valid and test pairs; the test split is read now, so a bad file fails before training."""
    check_corpora(config.data)
    report = ReadReport()
    train_pairs = _read_training_sources(task, config.data, report)
    valid_pairs, test_pairs = (task.read(config.data, s, report) for s in ("valid", "test"))
    if report.total_skipped:
        log.info("skipped %d bad pairs: %s", report.total_skipped, report.skipped)
    if config.data.train_targets == "first":
        everything = len(train_pairs)
        train_pairs = first_target_each(train_pairs)
        log.info("training on the first target of each source: %d of the %d training pairs "
                 "(data.train_targets first)", len(train_pairs), everything)  # fmt: skip
    if config.data.train_fraction < 1.0:
        everything = len(train_pairs)
        train_pairs = nested_subset(train_pairs, config.data.train_fraction)
        log.info("training on %d of the %d training pairs (data.train_fraction %g)",
                 len(train_pairs), everything, config.data.train_fraction)  # fmt: skip
    return train_pairs, valid_pairs, test_pairs


def _read_training_sources(task: Task, data: DataConfig, report: ReadReport) -> list[Pair]:
    """The pairs of data.train, then of each data.extra_train source, each pair carrying its
    source's weight and tag."""
    pairs = task.read(data, "train", report)
    if not pairs:
        raise ConfigError("the training split is empty")
    if data.train_weight != 1.0:
        pairs = [dataclasses.replace(pair, weight=data.train_weight) for pair in pairs]
    for i, extra in enumerate(data.extra_train):
        read = task.read(dataclasses.replace(data, train=extra.path), "train", report)
        if not read:
            raise ConfigError(f"data.extra_train[{i}]: {extra.path} holds no training pairs")
        pairs += [dataclasses.replace(pair, weight=extra.weight, tag=extra.tag) for pair in read]
        log.info("training source %s: %d pairs, weight %g%s", extra.path, len(read), extra.weight,
                 f", tagged {extra.tag}" if extra.tag else "")  # fmt: skip
    return pairs


def first_target_each(pairs: list[Pair]) -> list[Pair]:
    """Each source's first pair, in file order: its other targets (variants) are dropped."""
    first: dict[str, Pair] = {}
    for pair in pairs:
        first.setdefault(pair.src, pair)
    return list(first.values())


def subset_size(pairs: int, fraction: float) -> int:
    return max(1, round(fraction * pairs))


def nested_subset(pairs: list[Pair], fraction: float) -> list[Pair]:
    """The first ``fraction`` of the pairs in one fixed shuffle, in their file order: a smaller
    fraction's pairs are all in a larger one's, and every recipe on the same data gets the same."""
    order = list(range(len(pairs)))
    random.Random(SUBSET_SEED).shuffle(order)
    keep = sorted(order[: subset_size(len(pairs), fraction)])
    return [pairs[i] for i in keep]


def _prepare_output_dir(out: Path, resume: bool) -> None:
    """Fail now, not after hours, if the directory is unusable or holds another run."""
    if resume and checkpoint.latest_checkpoint(out) is None:
        raise ConfigError(f"{out}: nothing to resume (no {checkpoint.CHECKPOINTS}/latest)")
    # a directory with files but no checkpoint is a run that died while starting: start it again
    if not resume and checkpoint.latest_checkpoint(out) is not None:
        raise ConfigError(
            f"{out} already holds a trained model; pass --resume to continue it, or choose another --output"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"  # one per process: several may start at once
        probe.write_bytes(b"x" * 1024)
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{out}: cannot write the model directory ({err.strerror})") from None


def _check_free_space(out: Path, model: torch.nn.Module, averaged: int = 0) -> None:
    """Checkpoints hold weights + two Adam moments, twice during rotation, plus the best weights
    and those kept for averaging."""
    needed = (8 + averaged) * 4 * sum(p.numel() for p in model.parameters())
    free = shutil.disk_usage(out).free
    if free < needed:
        raise ConfigError(
            f"{out}: only {free / 1e6:.0f} MB free on its disk; checkpoints need about {needed / 1e6:.0f} MB"
        )


def _new_pipeline(config: Config, train_pairs: list[Pair], device: torch.device) -> Pipeline:
    source, target = build_featurizers(config.data, train_pairs)
    model = model_for(config.model, source, target, device)
    log.info(
        "source: %s; target vocabulary %d; model: %s parameters",
        f"{source.input_size} features per frame"
        if source.vocab is None
        else f"vocabulary {source.input_size}",
        len(target.vocab),
        f"{sum(p.numel() for p in model.parameters()):,}",
    )
    return Pipeline(config, model, source, target)


def _load_pipeline(out: Path, config: Config, device: torch.device) -> Pipeline:
    saved = checkpoint.load_config_from_dir(out)
    if saved.model != config.model or saved.data != config.data:
        raise ConfigError(
            f"{out}: the model or data section differs from the run being resumed; "
            "only training settings may change on resume"
        )
    source, target = load_featurizers(config.data, out)
    model = model_for(config.model, source, target, device)
    return Pipeline(config, model, source, target)


def _encoded_pairs(pipeline: Pipeline) -> EncodedPairs:
    copying = pipeline.model.copy_gate is not None
    return EncodedPairs([], [], [] if copying else None, [] if copying else None)


def _target(
    pipeline: Pipeline, source: Encoded, text: str
) -> tuple[list[int], tuple[list[int], list[int]] | None]:
    """The target's ids, and for a copying model both sides' ids over the source's extended
    vocabulary (the plain target ids are those with <unk> for extended ones)."""
    if pipeline.model.copy_gate is None:
        return pipeline.target.ids(text), None
    vocab = pipeline.target.vocab
    src_extended, unknown = vocab.encode_extended(source.labels)
    tgt_extended = pipeline.target.ids(text, unknown)
    return [i if i < len(vocab) else UNK_ID for i in tgt_extended], (src_extended, tgt_extended)


def _append(
    encoded: EncodedPairs, source: Encoded, ids: list[int], extended: tuple[list[int], list[int]] | None
) -> None:
    encoded.src.append(source.features)
    encoded.tgt.append(ids)
    if extended is not None and encoded.src_extended is not None and encoded.tgt_extended is not None:
        encoded.src_extended.append(extended[0])
        encoded.tgt_extended.append(extended[1])


TrainingPair = tuple[Encoded, list[int], tuple[list[int], list[int]] | None]


def _encode_pair(pipeline: Pipeline, pair: Pair) -> tuple[TrainingPair | None, bool]:
    """A training pair's model inputs, None when over the length limits (a source over
    data.max_src_len is cut instead, as data.long_sources says); and whether its source was cut."""
    data = pipeline.config.data
    source = pipeline.source.encode(pair.src)
    if pair.tag:
        assert pipeline.source.vocab is not None, "tags go before text sources (config check)"
        source = tagged(source, pair.tag, pipeline.source.vocab)
    cut = len(source.features) > data.max_src_len and data.long_sources != "drop"
    if cut:
        source = shorten(source, data.max_src_len, window=data.long_sources == "window")
    ids, extended = _target(pipeline, source, pair.tgt)
    empty = not len(source.features) and _reads_source(pipeline)
    if empty or len(source.features) > data.max_src_len or len(ids) > data.max_tgt_len:
        return None, cut
    return (source, ids, extended), cut


def _encode_training_data(pipeline: Pipeline, pairs: list[Pair]) -> EncodedPairs:
    """Model inputs of the training pairs: sources over data.max_src_len dropped or cut
    (data.long_sources), targets over data.max_tgt_len dropped; both counted. With subword
    sampling or speed perturbation configured, each epoch gets its own version of them, segmented
    anew or at drawn speeds (``EncodedPairs.for_epoch``)."""
    if pipeline.model.output_kind == "pointer":
        return _encode_reader_pairs(pipeline, pairs, training=True)
    data = pipeline.config.data
    encoded, dropped, cut, kept = _encoded_pairs(pipeline), 0, 0, []
    for index, pair in enumerate(pairs):
        entry, was_cut = _encode_pair(pipeline, pair)
        cut += was_cut
        if entry is None:
            dropped += 1
            continue
        _append(encoded, *entry)
        kept.append(index)
    log.info(
        "training pairs: %d kept (%d sources cut to their %s), %d dropped as longer than "
        "max_src_len %d / max_tgt_len %d",
        len(encoded.src),
        cut,
        "best window" if data.long_sources == "window" else "start",
        dropped,
        data.max_src_len,
        data.max_tgt_len,
    )
    if not encoded.src:
        raise ConfigError("no training pair is within data.max_src_len / data.max_tgt_len")
    if dropped > DROPPED_SHARE * len(pairs):
        log.warning(
            "warning: data.max_src_len %d / data.max_tgt_len %d drop %.1f%% of the training pairs (%d): "
            "raise them, or set data.long_sources: start to cut long sources instead",
            data.max_src_len, data.max_tgt_len, 100 * dropped / len(pairs), dropped,
        )  # fmt: skip
    _vary_by_epoch(pipeline, encoded, [pairs[i] for i in kept])
    return encoded


def _vary_by_epoch(pipeline: Pipeline, encoded: EncodedPairs, pairs: list[Pair]) -> None:
    """Give ``encoded`` (the training ``pairs`` as first encoded) its version for each epoch where
    the config varies it: segmented anew (subword sampling) or at drawn speeds (speed perturbation),
    then mixed by the pairs' weights."""
    data, seed = pipeline.config.data, pipeline.config.training.seed
    speeds = data.audio.speed_perturbation if data.source == "audio" else ()
    if speeds:
        encoded.resample = partial(_perturbed_epoch, _speed_variants(pipeline, pairs), speeds, encoded, seed)
    elif data.src_tokenizer.sampling.alpha or data.tgt_tokenizer.sampling.alpha:
        encoded.resample = partial(_sampled_epoch, _sampling_pipeline(pipeline), pairs, encoded)
    weights = [pair.weight for pair in pairs]
    if any(weight != 1.0 for weight in weights):
        encoded.resample = partial(_weighted_epoch, encoded.resample, encoded, weights, seed)


def weighted_indices(weights: list[float], rng: random.Random) -> list[int]:
    """One epoch's entries under their weights (upsampling factors): each entry of weight w comes
    floor(w) times, and a random share frac(w) of the entries of that weight once more, so the
    entries of each weight fill exactly their share of the epoch (at least one entry)."""
    groups: dict[float, list[int]] = {}
    for i, weight in enumerate(weights):
        groups.setdefault(weight, []).append(i)
    indices: list[int] = []
    for weight, members in groups.items():
        whole, part = divmod(weight, 1.0)
        extra = round(part * len(members))
        indices += members * int(whole) + rng.sample(members, max(extra, 1 if whole == 0 else 0))
    return indices


def _weighted_epoch(
    vary: Callable[[int], EncodedPairs] | None,
    first: EncodedPairs,
    weights: list[float],
    seed: int,
    epoch: int,
) -> EncodedPairs:
    """Epoch ``epoch``'s pairs (as ``vary`` makes them, or as first encoded) mixed by their
    weights, drawn with the run's seed and the epoch, so that a resumed run draws the same."""
    pairs = first if vary is None else vary(epoch)
    return pairs.select(weighted_indices(weights, random.Random(f"{seed}/mix/{epoch}")))


def _sampling_pipeline(pipeline: Pipeline) -> Pipeline:
    """The pipeline whose text featurizers sample segmentations where data.*_tokenizer.sampling says."""
    sampling = copy.copy(pipeline)
    data = pipeline.config.data
    for side, rate in (("source", data.src_tokenizer.sampling), ("target", data.tgt_tokenizer.sampling)):
        featurizer = getattr(pipeline, side)
        if rate.alpha and isinstance(featurizer.tokenizer, SentencePieceTokenizer):
            sampled = featurizer.tokenizer.sampling(rate.alpha, rate.nbest_size)
            setattr(sampling, side, TextFeaturizer(sampled, featurizer.vocab))
    return sampling


def _sampled_epoch(sampling: Pipeline, pairs: list[Pair], best: EncodedPairs, epoch: int) -> EncodedPairs:
    """The training ``pairs`` segmented by sampling for ``epoch`` (subword regularization), seeded
    by the run's seed and the epoch so that a resumed run sees the same segmentations. A pair whose
    sample is over the length limits keeps its best segmentation (``best``, entry for entry with
    ``pairs``) that epoch, so each epoch trains the same pairs."""
    started = time.perf_counter()
    seed_sampling(sampling.config.training.seed * 100003 + epoch)
    encoded, kept_best = _encoded_pairs(sampling), 0
    for j, pair in enumerate(pairs):
        entry, _ = _encode_pair(sampling, pair)
        if entry is not None:
            _append(encoded, *entry)
            continue
        kept_best += 1
        _append_best(encoded, best, j)
    log.info(
        "epoch %d: training pairs segmented anew by sampling in %.1f s (%d over the length limits kept "
        "their best segmentation)", epoch + 1, time.perf_counter() - started, kept_best,
    )  # fmt: skip
    return encoded


def _append_best(encoded: EncodedPairs, best: EncodedPairs, j: int) -> None:
    """Append entry ``j`` of ``best``, the pairs as first encoded."""
    encoded.src.append(best.src[j])
    encoded.tgt.append(best.tgt[j])
    if encoded.src_extended is not None and encoded.tgt_extended is not None:
        assert best.src_extended is not None and best.tgt_extended is not None
        encoded.src_extended.append(best.src_extended[j])
        encoded.tgt_extended.append(best.tgt_extended[j])


def _speed_variants(pipeline: Pipeline, pairs: list[Pair]) -> dict[float, list[TrainingPair | None]]:
    """The training pairs with their audio at each speed of data.audio.speed_perturbation but 1,
    computed once (None where a speed puts a pair over the length limits)."""
    assert isinstance(pipeline.source, AudioFeaturizer), "speed perturbation needs audio sources"
    started, variants = time.perf_counter(), {}
    for speed in sorted(set(pipeline.config.data.audio.speed_perturbation) - {1.0}):
        at_speed = copy.copy(pipeline)
        at_speed.source = pipeline.source.at_speed(speed)
        variants[speed] = [_encode_pair(at_speed, pair)[0] for pair in pairs]
    log.info("speed perturbation: the training audio at %s computed in %.0f s",
             ", ".join(f"{s:g}x" for s in variants), time.perf_counter() - started)  # fmt: skip
    return variants


def _perturbed_epoch(
    variants: dict[float, list[TrainingPair | None]], speeds: tuple[float, ...], best: EncodedPairs,
    seed: int, epoch: int,
) -> EncodedPairs:  # fmt: skip
    """Each training pair at a speed drawn from ``speeds`` for ``epoch`` (seeded by the run's seed
    and the epoch, so a resumed run draws the same); at 1, or where that speed is over the length
    limits, as first encoded (``best``)."""
    rng = random.Random(f"{seed}/speed/{epoch}")
    encoded = EncodedPairs([], [])
    for j in range(len(best.src)):
        speed = rng.choice(speeds)
        entry = variants[speed][j] if speed in variants else None
        if entry is None:
            _append_best(encoded, best, j)
        else:
            _append(encoded, *entry)
    return encoded


def _encode_reader_pairs(pipeline: Pipeline, pairs: list[Pair], training: bool) -> EncodedPairs:
    """A pointer reader's inputs, and as targets the answer's first and last positions in its
    paragraph. In training a source over data.max_src_len keeps a window of its paragraph that
    holds the answer, placed at random per pair (seeded by its index), so short windows buy epochs
    (Min et al., 2018); in validation a source is cut as generation cuts it. A pair whose answer
    is not in its (cut) paragraph is left out and counted."""
    assert isinstance(pipeline.source, TextFeaturizer), "a pointer reader reads text"
    tokenizer, limit = pipeline.source.tokenizer, pipeline.config.data.max_src_len
    encoded, missing = _encoded_pairs(pipeline), 0
    for index, pair in enumerate(pairs):
        source = pipeline.source.encode(pair.src) if training else pipeline.encode_source(pair.src)
        span = answer_span(source, pair.tgt, tokenizer)
        if span is None:
            missing += 1
            continue
        if training:
            source, span = window_around(source, limit, span, random.Random(index).random())
        _append(encoded, source, list(span), None)
    log.info(
        "%s pairs: %d with their answer's position, %d left out (the answer's words are not in the %s)",
        "training" if training else "validation", len(encoded.src), missing,
        "paragraph" if training else "paragraph as generation cuts it",
    )  # fmt: skip
    if training and not encoded.src:
        raise ConfigError("no training answer occurs in its paragraph (model.decoder.output pointer)")
    return encoded


def _encode_validation_data(pipeline: Pipeline, pairs: list[Pair]) -> EncodedPairs:
    """Model inputs of the validation pairs as generation sees them (cut to decoding.max_input_len)."""
    if pipeline.model.output_kind == "pointer":
        return _encode_reader_pairs(pipeline, pairs, training=False)
    encoded = _encoded_pairs(pipeline)
    for pair in pairs:
        source = pipeline.encode_source(pair.src)
        if len(source.features) or not _reads_source(pipeline):
            _append(encoded, source, *_target(pipeline, source, pair.tgt))
    return encoded


def _reads_source(pipeline: Pipeline) -> bool:
    """False for a language model (context none): its pairs' sources are empty."""
    return pipeline.config.model.decoder.context != "none"


def _test_report(pipeline: Pipeline, pairs: list[Pair], task: Task, beam: int, out: Path) -> None:
    """The test scores with the configured beam (and greedy, when that beam is wider), a few
    examples, and ``test_scores.json``."""
    result = evaluate(pipeline, pairs, task, beam=beam)
    greedy = evaluate(pipeline, pairs, task, beam=1) if beam > 1 else None
    print(f"test ({len(result.segments)} segments, beam {beam}): {result.summary()}")
    if greedy is not None:
        print(f"test ({len(greedy.segments)} segments, greedy): {greedy.summary()}")
    _print_examples(result)
    scores: dict[str, object] = {"beam": beam, "segments": len(result.segments), **result.scores}
    if greedy is not None:
        scores["greedy"] = greedy.scores
    checkpoint.atomic_write(out / "test_scores.json", json.dumps(scores, indent=1).encode())


def _print_examples(result: EvaluationResult, count: int = 8, width: int = 80) -> None:
    """The first ``count`` test outputs; sources longer than ``width`` characters (documents) are cut."""
    for segment, hyp in list(zip(result.segments, result.hypotheses, strict=True))[:count]:
        mark = "ok " if hyp in segment.references else "err"
        source = segment.source if len(segment.source) <= width else segment.source[: width - 3] + "..."
        print(f"  {mark} {source}  ->  {hyp}    (reference: {' | '.join(segment.references)})")
