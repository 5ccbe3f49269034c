"""The training loop: teacher forcing, validation, checkpoints, early stopping, exact resume.

``Trainer`` optimizes a model on encoded training data with a given loss until a budget (steps,
epochs, minutes) or early stopping ends it. It knows nothing of tasks or text: validation scores
come from a callback, and the best weights by the primary score (its name and direction given)
are kept in the model directory. The workflow around it is ``seq2seqkit.workflow.train``. With
several processes (``training/distributed.py``) each rank trains on its share of every batch
through DistributedDataParallel, and rank 0 alone validates and writes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seq2seqkit import checkpoint
from seq2seqkit.config import TrainingConfig
from seq2seqkit.data.batching import Batch, BatchSampler, Features, collate, token_batches
from seq2seqkit.device import autocast_dtype, peak_memory_mb, release_free_memory
from seq2seqkit.errors import ConfigError, Seq2SeqError
from seq2seqkit.model.reader import Network
from seq2seqkit.training.distributed import World
from seq2seqkit.training.loss import Loss
from seq2seqkit.training.reporter import Reporter
from seq2seqkit.training.schedule import LearningRateSchedule

log = logging.getLogger("seq2seqkit")
# Steps between handing freed heap pages back to the OS (device.release_free_memory). Matched
# en-de model, 300 steps: peak RSS 2,251 MB never, 1,881 MB every 10 steps at the same tok/s,
# 1,693 MB every 2 steps but 11% slower (docs/speed.md).
RELEASE_MEMORY_EVERY = 10
# the budget warning measures the speed between these steps (after the first, slower ones)
SPEED_STEPS = (5, 25)


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
class EncodedPairs:
    """Model inputs of a split: src[i] (ids or frames x features) pairs with target ids tgt[i].
    For a copying model also both sides' ids over each source's extended vocabulary."""

    src: list[Features]
    tgt: list[list[int]]
    src_extended: list[list[int]] | None = None
    tgt_extended: list[list[int]] | None = None
    # this split as epoch N trains on it (subword sampling, speed perturbation, weighted sources)
    resample: Callable[[int], EncodedPairs] | None = None

    def for_epoch(self, epoch: int) -> EncodedPairs:
        return self if self.resample is None else self.resample(epoch)

    def select(self, indices: Sequence[int]) -> EncodedPairs:
        """These entries, in this order (one may come several times)."""
        src_extended, tgt_extended = self.src_extended, self.tgt_extended
        return EncodedPairs(
            [self.src[i] for i in indices],
            [self.tgt[i] for i in indices],
            None if src_extended is None else [src_extended[i] for i in indices],
            None if tgt_extended is None else [tgt_extended[i] for i in indices],
        )

    def batch(self, indices: list[int]) -> Batch:
        extended = None
        if self.src_extended is not None and self.tgt_extended is not None:
            extended = ([self.src_extended[i] for i in indices], [self.tgt_extended[i] for i in indices])
        return collate([self.src[i] for i in indices], [self.tgt[i] for i in indices], indices, extended)


@dataclass(frozen=True)
class Selection:
    """Which validation score picks the best checkpoint, and in which direction."""

    metric: str
    higher_is_better: bool

    def improves(self, value: float, best: float | None) -> bool:
        return best is None or (value > best if self.higher_is_better else value < best)


PERPLEXITY = Selection("valid_ppl", higher_is_better=False)  # of the validation targets


class Trainer:
    """Runs the optimization loop for one model; owns optimizer, schedule and progress.

    validate: called at each validation, returns scores by metric name (``selection.metric`` among
    them) of the model as it is; the trainer adds the teacher-forced loss of ``valid``. Without
    it (a language model, which generates nothing to score) the perplexity of ``valid`` is the
    score (select it with ``PERPLEXITY``).
    """

    _speed_from: float | None = None  # elapsed seconds at SPEED_STEPS[0] of this session

    def __init__(
        self,
        *,
        config: TrainingConfig,
        model: Network,
        loss: Loss,
        data: EncodedPairs,
        valid: EncodedPairs,
        validate: Callable[[], dict[str, float]] | None,
        selection: Selection,
        out: Path,
        world: World | None = None,
    ) -> None:
        self.cfg = config
        self.model = model
        self.loss = loss
        self.pairs = data  # the training pairs; self.data, the current epoch's version of them
        self.data, self.data_epoch = data.for_epoch(0), 0
        self.valid = valid
        self.validate = validate or self._perplexity
        self.selection = selection
        self.out = out
        self.world = world = world or World()
        self.device = next(model.parameters()).device
        self.network = world.wrap(model)  # what the training steps call: DDP on several processes
        optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        # fused: one kernel for all parameters instead of a Python loop of small ops
        self.optimizer = optimizer_class(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
        )
        self.schedule = LearningRateSchedule(
            config.scheduler,
            config.lr,
            warmup_steps=config.warmup_steps,
            min_lr=config.min_lr,
            factor=config.plateau_factor,
            patience=config.plateau_patience,
            higher_is_better=selection.higher_is_better,
        )
        self.sampler = self._batch_sampler(self.data)
        self.batches_per_epoch = len(self.sampler.epoch(0))
        self.total_steps = self._total_steps()
        if config.scheduler == "warmup_cosine" and not (self.total_steps or config.max_minutes):
            raise ConfigError(
                "training.scheduler warmup_cosine needs a budget: max_steps, max_epochs or max_minutes"
            )
        self.progress = Progress()
        self.autocast_dtype = autocast_dtype(self.device, config.precision, training=True)
        # float16 (GPUs without bfloat16) needs its gradients scaled to stay representable
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.stop_signal: int | None = None  # received by this process
        self.stopping = False  # agreed by all processes: stop after this step
        self._clock = (0.0, 0.0)  # (monotonic time when run() started, elapsed before it)
        self.reporter = Reporter(out, config.tensorboard and world.is_main, bar=world.is_main)

    def _total_steps(self) -> int:
        limits = [self.cfg.max_steps] if self.cfg.max_steps else []
        if self.cfg.max_epochs:
            limits.append(self.cfg.max_epochs * self.batches_per_epoch)
        return min(limits) if limits else 0

    def restore(self) -> None:
        """Continue from the model directory's latest checkpoint."""
        latest = checkpoint.latest_checkpoint(self.out)
        assert latest is not None  # checked before training started
        state = checkpoint.load_training_state(latest, self.model, self.optimizer)
        self.progress = Progress(**state["progress"])
        self._restore_rng(state["rng"])
        self.schedule.load_state_dict(self.progress.schedule)
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        p = self.progress
        log.info("resumed at step %d (epoch %d, batch %d)", p.step, p.epoch, p.batch_in_epoch)

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
            "training: %d pairs, %d batches per epoch, on %s%s, precision %s, %d threads",
            len(self.data.src),
            self.batches_per_epoch,
            self.device,
            f" x {self.world.size} processes" if self.world.distributed else "",
            str(self.autocast_dtype or torch.float32).removeprefix("torch."),
            torch.get_num_threads(),
        )
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.reporter.start(self.total_steps, p.step)
        self._clock = (time.monotonic(), p.elapsed)
        release_free_memory()  # what preparing the data (e.g. SentencePiece training) freed
        try:
            self._loop()
            if self.world.is_main and self.cfg.average_last > 1:
                self._validate_average()
        finally:
            self.reporter.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        best = p.best_score if p.best_score is not None else float("nan")
        log.info(
            "finished at step %d (epoch %d) after %.1f min; best %s %.2f at step %d; peak memory %d MB",
            p.step, p.epoch + 1, p.elapsed / 60, self.selection.metric, best, p.best_step, peak_memory_mb(),
        )  # fmt: skip
        if self.device.type == "cuda":
            log.info("peak GPU memory %d MB", torch.cuda.max_memory_allocated(self.device) // 2**20)

    def _loop(self) -> None:
        p = self.progress
        for indices in self._remaining_batches():
            loss, elapsed = self._train_step(indices)
            self._count_step(indices, loss, elapsed)
            if p.step % RELEASE_MEMORY_EVERY == 0:
                release_free_memory()
            if p.step % self.cfg.log_every == 0:
                self.reporter.report(p.step, p.epoch + 1, loss, self._lr)
            if self.stopping:
                self._save_last()
                self.world.barrier()  # no rank leaves before rank 0 has written the checkpoint
                raise TrainingInterrupted(
                    f"interrupted at step {p.step}; checkpoint saved in {self.out}. "
                    f"Resume with: seq2seqkit train CONFIG --output {self.out} --resume"
                )
            if p.step % self.cfg.validate_every == 0:
                if self._validate_and_save():
                    return  # early stopping
                self.reporter.restart_window()
            if self._budget_spent():
                break
        if p.step % self.cfg.validate_every != 0:
            self._validate_and_save()  # the final weights get their validation too

    def _batch_sampler(self, data: EncodedPairs) -> BatchSampler:
        # batch_tokens per rank: every rank draws the same batches of size * batch_tokens and
        # trains on its share of each (World.share)
        return BatchSampler(
            [len(s) for s in data.src],
            [len(t) for t in data.tgt],
            self.cfg.batch_tokens * self.world.size,
            self.cfg.seed,
        )

    def _start_epoch(self, epoch: int) -> None:
        """Train this epoch on the pairs as it has them (segmented anew with subword sampling, at
        drawn speeds with speed perturbation, mixed by weight from several sources)."""
        if epoch == self.data_epoch:
            return
        data = self.pairs.for_epoch(epoch)
        if data is not self.data:
            self.data, self.sampler = data, self._batch_sampler(data)
        self.data_epoch = epoch

    def _remaining_batches(self) -> Iterator[list[int]]:
        """Batches from the saved data position on, epoch after epoch, until a budget ends.

        The position advances in ``_count_step``, after the step: a checkpoint saved in between
        never points at a batch already trained on.
        """
        p = self.progress
        while not self._budget_spent():
            self._start_epoch(p.epoch)
            batches = self.sampler.epoch(p.epoch)
            while p.batch_in_epoch < len(batches):
                yield batches[p.batch_in_epoch]
            p.epoch += 1
            p.batch_in_epoch = 0
            if self.cfg.max_epochs and p.epoch >= self.cfg.max_epochs:
                return

    def _count_step(self, indices: list[int], loss: float, elapsed: float) -> None:
        p = self.progress
        p.batch_in_epoch += 1
        p.step += 1
        p.elapsed = elapsed
        tokens = sum(len(self.data.tgt[i]) + 1 for i in indices)
        p.target_tokens += tokens
        self.reporter.step(p.step, tokens, loss, self._lr)
        if p.step == SPEED_STEPS[0]:
            self._speed_from = p.elapsed
        elif p.step == SPEED_STEPS[1] and self._speed_from is not None and self.world.is_main:
            self._warn_short_budget((p.elapsed - self._speed_from) / (SPEED_STEPS[1] - SPEED_STEPS[0]))

    def _warn_short_budget(self, seconds_per_step: float) -> None:
        """Warn when max_minutes, the budget that ends first, buys less than one epoch at this speed."""
        minutes = self.cfg.max_minutes
        if not minutes or (self.total_steps and self.total_steps * seconds_per_step < 60 * minutes):
            return
        epochs = 60 * minutes / (seconds_per_step * self.batches_per_epoch)
        if epochs < 1:
            log.warning(
                "warning: training.max_minutes %g buys about %.2f epochs at the speed of the first steps "
                "(%.2f s a step, %d steps an epoch): raise it to %d or more, or train a smaller model",
                minutes, epochs, seconds_per_step, self.batches_per_epoch, math.ceil(minutes / epochs),
            )  # fmt: skip

    @property
    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.stop_signal = signum
        log.info("signal %d received: saving a checkpoint after this step", signum)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _elapsed(self) -> float:
        started, elapsed_before = self._clock
        return elapsed_before + time.monotonic() - started

    def _train_step(self, indices: list[int]) -> tuple[float, float]:
        """One optimizer step on the batch ``indices`` (this rank's share of it); its loss (NaN
        for a skipped step), and the seconds of training so far (agreed by all ranks)."""
        lr = self.schedule.lr(self.progress.step, self._budget_progress())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        mine, counts = self.world.share(indices)
        batch = self.data.batch(mine).to(self.device)
        self.network.train()
        with self._autocast():
            output = self.network(batch.src, batch.src_lengths, batch.tgt_in, self.cfg.teacher_forcing_ratio)
            loss = self.loss(output, batch, self.cfg.label_smoothing)
        # the loss is a mean over this share's target tokens; weighted by the share's part of the
        # batch's tokens, DDP's mean of the ranks' gradients is the gradient of the batch's mean
        share = self._token_count(mine) / self._token_count(indices) if counts else 0.0
        batch_loss, elapsed = self._agree(loss.item() * share)
        self.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(batch_loss):  # on any rank: all skip the step
            self._skip_nonfinite(batch_loss)
            return float("nan"), elapsed
        self.progress.nonfinite_steps = 0
        self.scaler.scale(loss * (share * self.world.size)).backward()
        if self.cfg.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return batch_loss, elapsed if self.world.distributed else self._elapsed()

    def _token_count(self, indices: list[int]) -> int:
        return sum(len(self.data.tgt[i]) + 1 for i in indices)

    def _agree(self, weighted_loss: float) -> tuple[float, float]:
        """(the batch's loss, seconds of training) over all ranks, in one all-reduce; a stop signal
        any rank received reaches all. The ranks take their clocks' mean, so that all see a time
        budget spent at the same step."""
        stop = self.stop_signal is not None
        if not self.world.distributed:
            self.stopping = stop
            return weighted_loss, self._elapsed()
        loss, stops, clocks = self.world.sum([weighted_loss, float(stop), self._elapsed()], self.device)
        self.stopping = stops > 0
        if self.stopping and not stop:
            log.info("another process received a signal: saving a checkpoint after this step")
        return loss, clocks / self.world.size

    def _skip_nonfinite(self, loss: float) -> None:
        p = self.progress
        p.nonfinite_steps += 1
        log.warning("step %d: loss is %s; step skipped (%d in a row)", p.step + 1, loss, p.nonfinite_steps)
        if p.nonfinite_steps >= self.cfg.max_nonfinite_steps:
            raise Seq2SeqError(
                f"training diverged: {p.nonfinite_steps} non-finite losses in a row at step "
                f"{p.step + 1}; the last good checkpoint is in {checkpoint.latest_checkpoint(self.out)}. "
                "Try a lower training.lr or gradient clipping."
            )

    @functools.cached_property
    def _validation_batches(self) -> list[Batch]:
        """The validation pairs as teacher-forcing batches, built once for every validation."""
        src, tgt = self.valid.src, self.valid.tgt
        batches = token_batches([len(s) for s in src], [len(t) for t in tgt], self.cfg.batch_tokens)
        return [self.valid.batch(b) for b in batches]

    def _perplexity(self) -> dict[str, float]:
        return {PERPLEXITY.metric: math.exp(min(self.validation_loss()[0], 50.0))}

    def validation_loss(self) -> tuple[float, int]:
        """(mean NLL per target token, tokens) of the validation pairs under teacher forcing."""
        total, tokens = 0.0, 0
        self.model.eval()
        with torch.inference_mode():
            for batch in self._validation_batches:
                batch = batch.to(self.device)
                n = batch.num_tgt_tokens
                output = self.model(batch.src, batch.src_lengths, batch.tgt_in)
                total += self.loss.nll(output, batch).item() * n
                tokens += n
        return total / max(tokens, 1), tokens

    def _validate_and_save(self) -> bool:
        """Validate, keep the best weights, save the last checkpoint; True to stop early. Rank 0
        validates; the others take its progress (best score, patience), schedule and decision."""
        stop = self._validate() if self.world.is_main else False
        if self.world.distributed:
            progress, schedule, stop = self.world.broadcast(
                (self.progress.__dict__, self.schedule.state_dict(), stop)
            )
            self.progress.__dict__.update(progress)  # in place: the loop holds the object
            self.schedule.load_state_dict(schedule)
        self._save_last()
        return stop

    def _validate(self) -> bool:
        """Validate and keep the best weights; True to stop early."""
        p = self.progress
        if not self.valid.src:
            self._save_best()
            return False
        nll, _ = self.validation_loss()
        scores = self.validate()
        value = scores[self.selection.metric]
        improved = self.selection.improves(value, p.best_score)
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
            "lr": self._lr,
            "valid_loss": nll,
            "valid_ppl": math.exp(min(nll, 50.0)),
            **scores,
        }
        self.reporter.validation(record, scores, improved)
        self._keep_for_averaging()
        patience = self.cfg.early_stopping_patience
        if patience and p.validations_without_improvement >= patience:
            log.info("early stopping: no improvement in %d validations", patience)
            return True
        return False

    def _keep_for_averaging(self) -> None:
        """The weights of this validation, beside those of the last ``average_last`` - 1."""
        if self.cfg.average_last < 2:
            return
        directory = self.out / checkpoint.AVERAGING
        directory.mkdir(exist_ok=True)
        checkpoint.save_weights(directory / f"step-{self.progress.step:09d}.safetensors", self.model)
        for old in sorted(directory.glob("step-*.safetensors"))[: -self.cfg.average_last]:
            old.unlink()

    def _validate_average(self) -> None:
        """Validate the mean of the kept weights; keep it as the best weights if it scores higher."""
        p = self.progress
        paths = sorted((self.out / checkpoint.AVERAGING).glob("step-*.safetensors"))
        if len(paths) < 2 or not self.valid.src:
            return
        self.model.load_state_dict(checkpoint.average_weights(paths))
        scores = self.validate()
        value = scores[self.selection.metric]
        improved = self.selection.improves(value, p.best_score)
        steps = [int(path.stem.removeprefix("step-")) for path in paths]
        log.info(
            "average of the weights at steps %s: %s %.2f, %s the best (%.2f at step %d)",
            ", ".join(map(str, steps)), self.selection.metric, value,
            "better than" if improved else "not better than", p.best_score or 0.0, p.best_step,
        )  # fmt: skip
        record = {"steps": steps, "kept": improved, **scores}
        checkpoint.atomic_write(self.out / "averaged.json", json.dumps(record, indent=1).encode())
        if improved:
            p.best_score, p.best_step = value, p.step
            self._save_best()

    def _save_last(self) -> None:
        """The checkpoint to resume from, written by rank 0 with every rank's random state."""
        rng = self._rng_states()
        if not self.world.is_main:
            return
        self.progress.schedule = self.schedule.state_dict()
        state = {"progress": self.progress.__dict__, "scaler": self.scaler.state_dict()}
        try:
            checkpoint.save_checkpoint(self.out, self.progress.step, self.model, self.optimizer, state, rng)
        except OSError as err:  # e.g. the disk filled up during training
            raise Seq2SeqError(f"{self.out}: cannot write a checkpoint ({err.strerror or err})") from None

    def _rng_states(self) -> dict[str, torch.Tensor]:
        """The random generators' states (dropout, scheduled sampling) of every rank: ``torch``
        (and ``cuda``) for rank 0, ``torch.rank1`` ... for the others."""
        states = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        gathered = {}
        for name, state in states.items():
            for rank, part in enumerate(self.world.gather(state.to(self.device))):
                gathered[name if rank == 0 else f"{name}.rank{rank}"] = part.cpu()
        return gathered

    def _restore_rng(self, states: dict[str, torch.Tensor]) -> None:
        suffix = f".rank{self.world.rank}" if self.world.rank else ""
        if f"torch{suffix}" not in states:  # saved by fewer processes: a fresh stream for this one
            log.warning("no saved random state for rank %d; resuming it with a new seed", self.world.rank)
            torch.manual_seed(self.cfg.seed + self.world.rank + self.progress.step)
            return
        torch.set_rng_state(states[f"torch{suffix}"])
        if self.device.type == "cuda" and f"cuda{suffix}" in states:
            torch.cuda.set_rng_state(states[f"cuda{suffix}"], self.device)

    def _save_best(self) -> None:
        try:
            checkpoint.save_weights(self.out / checkpoint.WEIGHTS, self.model)
        except OSError as err:
            raise Seq2SeqError(f"{self.out}: cannot write the best weights ({err.strerror or err})") from None
