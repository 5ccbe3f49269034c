"""Learning-rate schedules: constant, reduce-on-plateau, linear warmup + cosine decay, and linear
warmup + inverse square root decay (the Transformer's, Vaswani et al., 2017, 5.3, with ``lr`` as
its peak instead of d_model^-0.5).

Kept as one small class with a JSON-able state, so that resuming restores it exactly.
"""

from __future__ import annotations

import math
from typing import Any, Literal

ScheduleKind = Literal["constant", "plateau", "warmup_cosine", "inverse_sqrt"]


class LearningRateSchedule:
    """lr(step, progress): ``progress`` in [0, 1] is how much of the training budget is used."""

    def __init__(
        self,
        kind: ScheduleKind,
        base_lr: float,
        *,
        warmup_steps: int = 0,
        min_lr: float = 0.0,
        factor: float = 0.5,
        patience: int = 2,
        higher_is_better: bool = True,
    ) -> None:
        self.kind = kind
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.min_lr = min_lr
        self.factor = factor
        self.patience = patience
        self.higher_is_better = higher_is_better
        self.scale = 1.0  # plateau: product of the reductions so far
        self.best: float | None = None
        self.bad_validations = 0

    def lr(self, step: int, progress: float) -> float:
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "warmup_cosine":
            cosine = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
            return warmup * (self.min_lr + (self.base_lr - self.min_lr) * cosine)
        if self.kind == "inverse_sqrt":  # lr * min(step / warmup, sqrt(warmup / step))
            decay = math.sqrt(self.warmup_steps / (step + 1)) if step + 1 > self.warmup_steps else 1.0
            return warmup * max(self.min_lr, self.base_lr * decay)
        return warmup * max(self.min_lr, self.base_lr * self.scale)

    def observe(self, metric: float) -> None:
        """Plateau: after ``patience`` validations without improvement, multiply lr by factor."""
        if self.kind != "plateau":
            return
        improved = self.best is None or (metric > self.best if self.higher_is_better else metric < self.best)
        if improved:
            self.best, self.bad_validations = metric, 0
            return
        self.bad_validations += 1
        if self.bad_validations > self.patience:
            self.scale *= self.factor
            self.bad_validations = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = state["scale"]
        self.best = state["best"]
        self.bad_validations = state["bad_validations"]
