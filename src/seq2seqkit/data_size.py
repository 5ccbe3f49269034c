"""Learning curves (``seq2seqkit analyze data-size``): each recipe trained on nested, seeded shares
of its training pairs at one budget, scored on its test split with its task's metric.

This module owns the sweep: which runs it makes (``DIR/RECIPE/FRACTION``), training or resuming
each one that has not finished (so an interrupted sweep goes on where it stopped), and the table of
results. The subsets are ``data.train_fraction`` (``workflow.nested_subset``); the picture is
``plots.data_size_plot``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seq2seqkit import checkpoint
from seq2seqkit.config import Config
from seq2seqkit.errors import ConfigError
from seq2seqkit.recipes import load_config
from seq2seqkit.tasks import read_split, task_of
from seq2seqkit.workflow import subset_size, train

SCORES = "test_scores.json"  # written by training once it has tested its best weights


@dataclass(frozen=True)
class Point:
    """One run of the sweep: a recipe at a share of its training pairs."""

    recipe: str
    fraction: float
    pairs: int  # training pairs it read (after the subset, before length limits)
    metric: str
    score: float
    steps: int


def parse_fractions(text: str) -> list[float]:
    """ "0.1,0.25,0.5,1" -> [0.1, 0.25, 0.5, 1.0], each in (0, 1], sorted and distinct."""
    try:
        fractions = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--fractions must be numbers separated by commas, got {text!r}") from None
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise ConfigError(f"--fractions must lie in (0, 1], got {text!r}")
    return fractions


def budget_overrides(minutes: float | None, steps: int | None) -> list[str]:
    """The training budget every run of the sweep gets: wall-clock minutes or steps, not both."""
    if (minutes is None) == (steps is None):
        raise ConfigError("give the budget of each run: --minutes M or --steps N")
    if minutes is not None:
        if minutes <= 0:
            raise ConfigError(f"--minutes must be positive, got {minutes:g}")
        return [f"training.max_minutes={minutes}", "training.max_steps=0", "training.max_epochs=0"]
    assert steps is not None
    if steps <= 0:
        raise ConfigError(f"--steps must be positive, got {steps}")
    return [f"training.max_steps={steps}", "training.max_minutes=0", "training.max_epochs=0"]


def run_dir(out: Path, recipe: str, fraction: float) -> Path:
    return out / Path(recipe).stem / f"{fraction:g}"


def sweep(
    recipes: list[str], fractions: list[float], budget: list[str], out: Path, overrides: Sequence[str] = ()
) -> list[Point]:  # fmt: skip
    """Train (or resume, or reuse) each recipe at each fraction, recipe by recipe, fractions rising;
    the points. Every recipe is read, and its test split checked, before any training."""
    names = [Path(recipe).stem for recipe in recipes]
    if len(set(names)) < len(names):
        raise ConfigError(f"two recipes share a name ({', '.join(names)}): their runs would share folders")
    settings = [*overrides, *budget, "training.evaluate_test=true"]
    configs = {recipe: load_config(recipe, settings) for recipe in recipes}  # all checked before training
    for recipe, config in configs.items():
        if not read_split(config, "test"):
            raise ConfigError(f"{recipe}: its test split is empty, and the sweep scores each run on it")
    points: list[Point] = []
    total = len(recipes) * len(fractions)
    for recipe, config in configs.items():
        everything = len(read_split(config, "train"))
        for fraction in fractions:
            done = len(points) + 1
            model_dir, name = run_dir(out, recipe, fraction), Path(recipe).stem
            state = "done before"
            if not (model_dir / SCORES).is_file():
                resume = checkpoint.latest_checkpoint(model_dir) is not None
                _say(f"[{done}/{total}] {name} on {fraction:g} of its training pairs: "
                     f"{'resuming' if resume else 'training'} in {model_dir}")  # fmt: skip
                with contextlib.redirect_stdout(sys.stderr):  # the test report: stdout is the table
                    train(
                        load_config(recipe, [*settings, f"data.train_fraction={fraction}"]), model_dir, resume
                    )
                state = "trained"
            point = read_point(model_dir, name, fraction, subset_size(everything, fraction), config)
            _say(f"[{done}/{total}] {name} on {fraction:g} ({point.pairs:,} pairs): "
                 f"{point.metric} {point.score:.2f} ({state})")  # fmt: skip
            points.append(point)
    return points


def read_point(model_dir: Path, name: str, fraction: float, pairs: int, config: Config) -> Point:
    """A finished run's test score (its task's primary metric) and steps."""
    metric = task_of(config).primary.name
    scores = json.loads((model_dir / SCORES).read_text(encoding="utf-8"))
    if metric not in scores:
        raise ConfigError(f"{model_dir / SCORES}: no {metric} score (is it another task's run?)")
    last = checkpoint.latest_checkpoint(model_dir)
    steps = json.loads((last / "state.json").read_text())["progress"]["step"] if last else 0
    return Point(name, fraction, pairs, metric, float(scores[metric]), steps)


def table(points: list[Point]) -> str:
    """Tab-separated: recipe, fraction, training pairs, steps, the metric."""
    lines = [f"recipe\tfraction\tpairs\tsteps\t{points[0].metric if points else 'score'}"]
    lines += [f"{p.recipe}\t{p.fraction:g}\t{p.pairs}\t{p.steps}\t{p.score:.2f}" for p in points]
    return "\n".join(lines)


def _say(message: str) -> None:
    print(f"seq2seqkit: {message}", file=sys.stderr, flush=True)
