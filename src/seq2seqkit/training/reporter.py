"""What training tells the person running it: the log file and console, the progress bar with
loss and tokens/s, ``validations.jsonl`` and, when asked, TensorBoard."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from seq2seqkit.device import peak_memory_mb
from seq2seqkit.errors import ConfigError

log = logging.getLogger("seq2seqkit")


def setup_logging(path: Path) -> None:
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


def format_scores(scores: dict[str, float]) -> str:
    return "  ".join(f"{name} {value:.2f}" for name, value in scores.items())


class Reporter:
    """Progress bar, periodic loss / learning rate / tokens-per-second reports and validation records
    of one training run in ``out``."""

    def __init__(self, out: Path, tensorboard: bool, bar: bool = True) -> None:
        self.out = out
        self.tensorboard = _tensorboard(out) if tensorboard else None
        self.show_bar = bar  # off on all but one of several processes
        self.bar: tqdm | None = None
        self._window = (time.monotonic(), 0)  # (start, target tokens) of the current tokens/s window

    def start(self, total_steps: int, step: int) -> None:
        self.bar = tqdm(total=total_steps or None, initial=step, unit="step", dynamic_ncols=True,
                        disable=None if self.show_bar else True, file=sys.stderr)  # fmt: skip
        self.restart_window()

    def restart_window(self) -> None:
        """Tokens/s from now on (validation time is not training time)."""
        self._window = (time.monotonic(), 0)

    def step(self, step: int, tokens: int, loss: float, lr: float) -> None:
        """One training step done, with ``tokens`` target tokens."""
        self._window = (self._window[0], self._window[1] + tokens)
        if self.bar is not None:
            self.bar.update(1)
        if self.tensorboard is not None and math.isfinite(loss):  # NaN: a skipped step
            self.tensorboard.add_scalar("train/loss", loss, step)
            self.tensorboard.add_scalar("train/lr", lr, step)

    def report(self, step: int, epoch: int, loss: float, lr: float) -> None:
        """Loss and tokens/s since the last report: on the bar, and in the log file (and on the
        console when there is no bar)."""
        window_start, tokens = self._window
        rate = tokens / max(time.monotonic() - window_start, 1e-9)
        shown = self.bar is not None and not self.bar.disable
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}", epoch=epoch)
        log.info(
            "step %d epoch %d loss %.4f lr %.2e tok/s %.0f peak memory %d MB",
            step, epoch, loss, lr, rate, peak_memory_mb(),
            extra={"shown_by_bar": shown},
        )  # fmt: skip
        self.restart_window()

    def validation(self, record: dict[str, Any], scores: dict[str, float], improved: bool) -> None:
        """One validation: a line of ``validations.jsonl``, TensorBoard scalars and the log."""
        with open(self.out / "validations.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, number in record.items():
                if name not in ("step", "epoch"):
                    self.tensorboard.add_scalar(f"valid/{name}", number, record["step"])
        log.info(
            "validation at step %d: loss %.3f ppl %.2f %s%s",
            record["step"],
            record["valid_loss"],
            record["valid_ppl"],
            format_scores({name: value for name, value in scores.items() if name != "valid_ppl"}),
            "  (new best)" if improved else "",
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "training.tensorboard needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(str(out / "tensorboard"))
