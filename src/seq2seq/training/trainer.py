"""The training loop: teacher forcing, validation, checkpoints, early stopping, exact resume.

``train(config, output_dir)`` reads the data, builds (or, resuming, reloads) the pipeline,
trains until a budget (steps, epochs, minutes) or early stopping ends it, keeps the best weights
by the task's primary metric on the validation set, and finally scores them on the test set.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import random
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from seq2seq import checkpoint
from seq2seq.build import (
    build_model,
    build_task,
    build_tokenizers,
    build_vocabularies,
    read_split,
)
from seq2seq.config import Config
from seq2seq.data.batching import Batch, BatchSampler, collate, token_batches
from seq2seq.data.readers import Pair, ReadReport
from seq2seq.data.tokenizers import load_tokenizer
from seq2seq.data.vocab import Vocabulary
from seq2seq.device import peak_memory_mb, release_free_memory, use_bfloat16
from seq2seq.errors import ConfigError, Seq2SeqError
from seq2seq.evaluation import EvaluationResult, evaluate
from seq2seq.pipeline import Pipeline
from seq2seq.tasks import Task
from seq2seq.training.loss import batch_loss
from seq2seq.training.schedule import LearningRateSchedule

log = logging.getLogger("seq2seq")
# Steps between handing freed heap pages back to the OS (device.release_free_memory). Matched
# en-de model, 300 steps: peak RSS 2,251 MB never, 1,881 MB every 10 steps at the same tok/s,
# 1,693 MB every 2 steps but 11% slower (docs/speed.md).
RELEASE_MEMORY_EVERY = 10


class TrainingInterrupted(Seq2SeqError):
    """Raised after SIGINT/SIGTERM once the last checkpoint is safely written."""


@dataclass
class Progress:
    """Where training stands; saved with every checkpoint (JSON) so that resuming is exact."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # index of the next batch of this epoch
    target_tokens: int = 0
    elapsed: float = 0.0  # seconds of training, over all sessions
    best_score: float | None = None
    best_step: int = 0
    validations_without_improvement: int = 0
    nonfinite_steps: int = 0
    schedule: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingData:
    src: list[list[int]]
    tgt: list[list[int]]


def train(config: Config, output_dir: Path | None = None, resume: bool = False) -> Path:
    """Train as configured; returns the model directory."""
    out = Path(output_dir or config.output_dir)
    _prepare_output_dir(out, resume)
    _setup_logging(out / "train.log")
    cfg = config.training
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    report = ReadReport()
    train_pairs = read_split(config.data, "train", report)
    valid_pairs = read_split(config.data, "valid", report)
    test_pairs = read_split(config.data, "test", report)  # now: a bad file fails before training
    if not train_pairs:
        raise ConfigError("the training split is empty")
    if report.total_skipped:
        log.info("skipped %d bad pairs: %s", report.total_skipped, report.skipped)

    pipeline = _load_pipeline(out, config) if resume else _new_pipeline(config, train_pairs)
    _check_free_space(out, pipeline.model)
    if not resume:
        pipeline.save(out)
    data = _encode_training_data(pipeline, train_pairs)
    task = build_task(config)
    trainer = Trainer(config, pipeline, data, valid_pairs, task, out)
    if resume:
        trainer.restore()
    trainer.run()

    best = out / checkpoint.WEIGHTS
    checkpoint.load_weights(best, pipeline.model)
    if cfg.evaluate_test and test_pairs:
        beam = config.decoding.beam_size
        result = evaluate(pipeline, test_pairs, task, beam=beam)
        greedy = evaluate(pipeline, test_pairs, task, beam=1) if beam > 1 else None
        _print_test_report(result, beam, greedy, out)
    return out


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
        probe = out / ".write-test"
        probe.write_bytes(b"x" * 1024)
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{out}: cannot write the model directory ({err.strerror})") from None


def _check_free_space(out: Path, model: torch.nn.Module) -> None:
    """Checkpoints hold weights + two Adam moments, twice during rotation, plus the best weights."""
    needed = 8 * 4 * sum(p.numel() for p in model.parameters())
    free = shutil.disk_usage(out).free
    if free < needed:
        raise ConfigError(
            f"{out}: only {free / 1e6:.0f} MB free on its disk; checkpoints need about {needed / 1e6:.0f} MB"
        )


def _setup_logging(path: Path) -> None:
    """INFO to the log file and, through tqdm (so the progress bar stays intact), to stderr."""

    class TqdmHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tqdm.write(self.format(record), file=sys.stderr)

    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    console = TqdmHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(lambda record: not getattr(record, "shown_by_bar", False))
    log.addHandler(file_handler)
    log.addHandler(console)
    log.setLevel(logging.INFO)
    log.propagate = False


def _new_pipeline(config: Config, train_pairs: list[Pair]) -> Pipeline:
    data = config.data
    src_tokenizer, tgt_tokenizer = build_tokenizers(data, train_pairs)
    src_vocab, tgt_vocab = build_vocabularies(
        data,
        [src_tokenizer.encode(p.src) for p in train_pairs],
        [tgt_tokenizer.encode(p.tgt) for p in train_pairs],
    )
    model = build_model(config.model, len(src_vocab), len(tgt_vocab))
    log.info(
        "vocabularies: source %d, target %d; model: %s parameters",
        len(src_vocab),
        len(tgt_vocab),
        f"{sum(p.numel() for p in model.parameters()):,}",
    )
    return Pipeline(config, model, src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab)


def _load_pipeline(out: Path, config: Config) -> Pipeline:
    saved = checkpoint.load_config_from_dir(out)
    if saved.model != config.model or saved.data != config.data:
        raise ConfigError(
            f"{out}: the model or data section differs from the run being resumed; "
            "only training settings may change on resume"
        )
    src_tokenizer = load_tokenizer(config.data.src_tokenizer.type, out, "src")
    tgt_tokenizer = load_tokenizer(config.data.tgt_tokenizer.type, out, "tgt")
    src_vocab = Vocabulary.load(out / "src_vocab.txt")
    tgt_vocab = Vocabulary.load(out / "tgt_vocab.txt")
    model = build_model(config.model, len(src_vocab), len(tgt_vocab))
    return Pipeline(config, model, src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab)


def _encode_training_data(pipeline: Pipeline, pairs: list[Pair]) -> TrainingData:
    """Token ids of the training pairs, without those over the length limits (counted)."""
    data = pipeline.config.data
    src, tgt, dropped = [], [], 0
    for pair in pairs:
        s = pipeline.src_vocab.encode(pipeline.src_tokenizer.encode(pair.src))
        t = pipeline.tgt_vocab.encode(pipeline.tgt_tokenizer.encode(pair.tgt))
        if len(s) > data.max_src_len or len(t) > data.max_tgt_len or not s:
            dropped += 1
            continue
        src.append(s)
        tgt.append(t)
    log.info(
        "training pairs: %d kept, %d dropped as longer than max_src_len %d / max_tgt_len %d",
        len(src),
        dropped,
        data.max_src_len,
        data.max_tgt_len,
    )
    if not src:
        raise ConfigError("no training pair is within data.max_src_len / data.max_tgt_len")
    return TrainingData(src, tgt)


def _print_test_report(
    result: EvaluationResult, beam: int, greedy: EvaluationResult | None, out: Path
) -> None:
    """The test scores with the configured beam (and greedy, when that beam is wider), a few
    examples, and ``test_scores.json``."""
    print(f"test ({len(result.segments)} segments, beam {beam}): {result.summary()}")
    if greedy is not None:
        print(f"test ({len(greedy.segments)} segments, greedy): {greedy.summary()}")
    for segment, hyp in list(zip(result.segments, result.hypotheses, strict=True))[:8]:
        mark = "ok " if hyp in segment.references else "err"
        print(f"  {mark} {segment.source}  ->  {hyp}    (reference: {' | '.join(segment.references)})")
    scores: dict[str, object] = {"beam": beam, "segments": len(result.segments), **result.scores}
    if greedy is not None:
        scores["greedy"] = greedy.scores
    checkpoint.atomic_write(out / "test_scores.json", json.dumps(scores, indent=1).encode())


class Trainer:
    """Runs the optimization loop for one pipeline; owns optimizer, schedule and progress."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        data: TrainingData,
        valid_pairs: list[Pair],
        task: Task,
        out: Path,
    ) -> None:
        self.config = config
        self.cfg = config.training
        self.pipeline = pipeline
        self.model = pipeline.model
        self.data = data
        self.valid_pairs = valid_pairs
        self.task = task
        self.out = out
        optimizer_class = torch.optim.AdamW if self.cfg.optimizer == "adamw" else torch.optim.Adam
        # fused: one kernel for all parameters instead of a Python loop of small ops
        self.optimizer = optimizer_class(
            self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True
        )
        self.schedule = LearningRateSchedule(
            self.cfg.scheduler,
            self.cfg.lr,
            warmup_steps=self.cfg.warmup_steps,
            min_lr=self.cfg.min_lr,
            factor=self.cfg.plateau_factor,
            patience=self.cfg.plateau_patience,
            higher_is_better=task.primary.higher_is_better,
        )
        self.sampler = BatchSampler(
            [len(s) for s in data.src], [len(t) for t in data.tgt], self.cfg.batch_tokens, self.cfg.seed
        )
        self.batches_per_epoch = len(self.sampler.epoch(0))
        self.total_steps = self._total_steps()
        if self.cfg.scheduler == "warmup_cosine" and not (self.total_steps or self.cfg.max_minutes):
            raise ConfigError(
                "training.scheduler warmup_cosine needs a budget: max_steps, max_epochs or max_minutes"
            )
        self.progress = Progress()
        self.use_bf16 = use_bfloat16(self.cfg.precision)
        self.stop_signal: int | None = None
        self._clock = (0.0, 0.0)  # (monotonic time when run() started, elapsed before it)
        self._window = (0.0, 0)  # (start, target tokens) of the current tokens/s window
        self.tensorboard = self._tensorboard() if self.cfg.tensorboard else None

    def _total_steps(self) -> int:
        limits = [self.cfg.max_steps] if self.cfg.max_steps else []
        if self.cfg.max_epochs:
            limits.append(self.cfg.max_epochs * self.batches_per_epoch)
        return min(limits) if limits else 0

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "training.tensorboard needs the tensorboard package (pip install tensorboard)"
            ) from None
        return SummaryWriter(str(self.out / "tensorboard"))

    def restore(self) -> None:
        latest = checkpoint.latest_checkpoint(self.out)
        assert latest is not None  # checked before training started
        state = checkpoint.load_training_state(latest, self.model, self.optimizer)
        self.progress = Progress(**state["progress"])
        self.schedule.load_state_dict(self.progress.schedule)
        log.info(
            "resumed at step %d (epoch %d, batch %d)",
            self.progress.step,
            self.progress.epoch,
            self.progress.batch_in_epoch,
        )

    def _budget_progress(self) -> float:
        fractions = []
        if self.total_steps:
            fractions.append(self.progress.step / self.total_steps)
        if self.cfg.max_minutes:
            fractions.append(self.progress.elapsed / (60 * self.cfg.max_minutes))
        return max(fractions) if fractions else 0.0

    def _budget_spent(self) -> bool:
        return self._budget_progress() >= 1.0

    def run(self) -> None:
        p = self.progress
        log.info(
            "training: %d pairs, %d batches per epoch, precision %s, %d threads",
            len(self.data.src),
            self.batches_per_epoch,
            "bfloat16" if self.use_bf16 else "float32",
            torch.get_num_threads(),
        )
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=self.total_steps or None, initial=p.step, unit="step", dynamic_ncols=True,
                   disable=None, file=sys.stderr)  # fmt: skip
        self._clock = (time.monotonic(), p.elapsed)
        self._window = (time.monotonic(), 0)  # start and target tokens of the tok/s window
        release_free_memory()  # what preparing the data (e.g. SentencePiece training) freed
        try:
            stopped_early = False
            for indices in self._remaining_batches():
                loss = self._train_step(indices)
                self._count_step(indices)
                bar.update(1)
                if p.step % RELEASE_MEMORY_EVERY == 0:
                    release_free_memory()
                if p.step % self.cfg.log_every == 0:
                    self._report(loss, bar)
                if self.stop_signal is not None:
                    self._save_last()
                    raise TrainingInterrupted(
                        f"interrupted at step {p.step}; checkpoint saved in {self.out}. "
                        f"Resume with: seq2seq train CONFIG --output {self.out} --resume"
                    )
                if p.step % self.cfg.validate_every == 0:
                    if self._validate_and_save():
                        stopped_early = True
                        break
                    self._window = (time.monotonic(), 0)  # tokens/s measures training steps only
                if self._budget_spent():
                    break
            if not stopped_early and p.step % self.cfg.validate_every != 0:
                self._validate_and_save()  # the final weights get their validation too
        finally:
            bar.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        best = p.best_score if p.best_score is not None else float("nan")
        log.info(
            "finished at step %d (epoch %d) after %.1f min; best %s %.2f at step %d; peak memory %d MB",
            p.step, p.epoch + 1, p.elapsed / 60, self.task.primary.name, best, p.best_step,
            peak_memory_mb(),
        )  # fmt: skip

    def _remaining_batches(self) -> Iterator[list[int]]:
        """Batches from the saved data position on, epoch after epoch, until a budget ends.

        The position advances in ``_count_step``, after the step: a checkpoint saved in between
        never points at a batch already trained on.
        """
        p = self.progress
        while not self._budget_spent():
            batches = self.sampler.epoch(p.epoch)
            while p.batch_in_epoch < len(batches):
                yield batches[p.batch_in_epoch]
            p.epoch += 1
            p.batch_in_epoch = 0
            if self.cfg.max_epochs and p.epoch >= self.cfg.max_epochs:
                return

    def _count_step(self, indices: list[int]) -> None:
        p = self.progress
        p.batch_in_epoch += 1
        p.step += 1
        started, elapsed_before = self._clock
        p.elapsed = elapsed_before + time.monotonic() - started
        tokens = sum(len(self.data.tgt[i]) + 1 for i in indices)
        p.target_tokens += tokens
        self._window = (self._window[0], self._window[1] + tokens)

    def _report(self, loss: float, bar: tqdm) -> None:
        """Loss and tokens/s since the last report: on the bar, and in the log file (and on the
        console when there is no bar)."""
        p = self.progress
        window_start, tokens = self._window
        rate = tokens / max(time.monotonic() - window_start, 1e-9)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}", epoch=p.epoch + 1)
        lr = self.optimizer.param_groups[0]["lr"]
        log.info(
            "step %d epoch %d loss %.4f lr %.2e tok/s %.0f peak memory %d MB",
            p.step, p.epoch + 1, loss, lr, rate, peak_memory_mb(),
            extra={"shown_by_bar": not bar.disable},
        )  # fmt: skip
        self._window = (time.monotonic(), 0)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.stop_signal = signum
        log.info("signal %d received: saving a checkpoint after this step", signum)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_step(self, indices: list[int]) -> float:
        p = self.progress
        lr = self.schedule.lr(p.step, self._budget_progress())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = collate([self.data.src[i] for i in indices], [self.data.tgt[i] for i in indices], indices)
        self.model.train()
        with self._autocast():
            loss = batch_loss(self.model, batch, self.cfg.label_smoothing, self.cfg.teacher_forcing_ratio)
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            p.nonfinite_steps += 1
            log.warning(
                "step %d: loss is %s; step skipped (%d in a row)", p.step + 1, loss.item(), p.nonfinite_steps
            )
            if p.nonfinite_steps >= self.cfg.max_nonfinite_steps:
                raise Seq2SeqError(
                    f"training diverged: {p.nonfinite_steps} non-finite losses in a row at step "
                    f"{p.step + 1}; the last good checkpoint is in {checkpoint.latest_checkpoint(self.out)}. "
                    "Try a lower training.lr or gradient clipping."
                )
            return float("nan")
        p.nonfinite_steps = 0
        loss.backward()
        if self.cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
        self.optimizer.step()
        if self.tensorboard is not None:
            self.tensorboard.add_scalar("train/loss", loss.item(), p.step + 1)
            self.tensorboard.add_scalar("train/lr", lr, p.step + 1)
        return loss.item()

    @functools.cached_property
    def _validation_batches(self) -> list[Batch]:
        """The validation pairs as teacher-forcing batches, built once for every validation."""
        pipe = self.pipeline
        src = [pipe.src_vocab.encode(pipe.source_tokens(p.src)) for p in self.valid_pairs]
        tgt = [pipe.tgt_vocab.encode(pipe.tgt_tokenizer.encode(p.tgt)) for p in self.valid_pairs]
        keep = [i for i in range(len(src)) if src[i]]
        batches = token_batches(
            [len(src[i]) for i in keep], [len(tgt[i]) for i in keep], self.cfg.batch_tokens
        )
        return [collate([src[keep[q]] for q in b], [tgt[keep[q]] for q in b], b) for b in batches]

    def validation_loss(self) -> tuple[float, int]:
        """(mean NLL per target token, tokens) of the validation pairs under teacher forcing."""
        total, tokens = 0.0, 0
        self.model.eval()
        with torch.inference_mode():
            for batch in self._validation_batches:
                n = batch.num_tgt_tokens
                total += batch_loss(self.model, batch).item() * n
                tokens += n
        return total / max(tokens, 1), tokens

    def _validate_and_save(self) -> bool:
        """Validate, keep the best weights, save the last checkpoint; True to stop early."""
        p = self.progress
        if not self.valid_pairs:
            self._save_best()
            self._save_last()
            return False
        nll, _ = self.validation_loss()
        result = evaluate(self.pipeline, self.valid_pairs, self.task, beam=1)
        primary = self.task.primary
        value = result.scores[primary.name]
        improved = p.best_score is None or (
            value > p.best_score if primary.higher_is_better else value < p.best_score
        )
        if improved:
            p.best_score, p.best_step = value, p.step
            p.validations_without_improvement = 0
            self._save_best()
        else:
            p.validations_without_improvement += 1
        self.schedule.observe(value)
        record = {
            "step": p.step,
            "epoch": p.epoch + 1,
            "elapsed_s": round(p.elapsed, 1),
            "lr": self.optimizer.param_groups[0]["lr"],
            "valid_loss": nll,
            "valid_ppl": math.exp(min(nll, 50.0)),
            **result.scores,
        }
        with open(self.out / "validations.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, number in record.items():
                if name not in ("step", "epoch"):
                    self.tensorboard.add_scalar(f"valid/{name}", number, p.step)
        log.info(
            "validation at step %d: loss %.3f ppl %.2f %s%s",
            p.step,
            nll,
            record["valid_ppl"],
            result.summary(),
            "  (new best)" if improved else "",
        )
        self._save_last()
        patience = self.cfg.early_stopping_patience
        if patience and p.validations_without_improvement >= patience:
            log.info("early stopping: no improvement in %d validations", patience)
            return True
        return False

    def _save_last(self) -> None:
        self.progress.schedule = self.schedule.state_dict()
        state = {"progress": self.progress.__dict__}
        try:
            checkpoint.save_checkpoint(self.out, self.progress.step, self.model, self.optimizer, state)
        except OSError as err:  # e.g. the disk filled up during training
            raise Seq2SeqError(f"{self.out}: cannot write a checkpoint ({err.strerror or err})") from None

    def _save_best(self) -> None:
        try:
            checkpoint.save_weights(self.out / checkpoint.WEIGHTS, self.model)
        except OSError as err:
            raise Seq2SeqError(f"{self.out}: cannot write the best weights ({err.strerror or err})") from None
