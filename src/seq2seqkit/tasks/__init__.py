"""Applications, one module each: a ``Task`` holds its readers, metrics, reference grouping and
config defaults. A plain dict of the registered tasks; ``task:`` in a config must name one, and
``task_config`` makes a config for one (its defaults under the recipe's values, and the formats it
reads checked). The config knows no task: the dependency runs from here to ``config``.

Adding an application is adding a module here (and its featurizer, frontend or output head
where it needs new ones), registered in ``TASKS``.
"""

from __future__ import annotations

import difflib
from typing import Any

from seq2seqkit.config import Config, config_from_dict, merge
from seq2seqkit.data.readers import Pair, ReadReport
from seq2seqkit.errors import ConfigError
from seq2seqkit.tasks import asr, g2p, language_model, qa, summarization, synthetic, transduction, translation
from seq2seqkit.tasks.task import GENERAL_READERS, Task

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        translation.TASK,
        summarization.TASK,
        qa.TASK,
        asr.TASK,
        g2p.TASK,
        transduction.TASK,
        language_model.TASK,
        *synthetic.TASKS,
    )
}


def task_of(config: Config) -> Task:
    return _registered(config.task, "config")


def _registered(name: Any, source: str) -> Task:
    if not isinstance(name, str) or name not in TASKS:
        close = difflib.get_close_matches(str(name), TASKS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{source}: task = {name!r} is not a registered task{hint} (allowed: {', '.join(TASKS)})"
        )
    return TASKS[name]


def task_config(raw: dict[str, Any], source: str = "config") -> Config:
    """The config of ``raw`` for the task it names (default: translation): the task's defaults
    fill in what ``raw`` leaves unset, and ``data.format`` must be one the task reads."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    task = _registered(raw.get("task", Config.task), source)
    config = config_from_dict(merge(dict(task.defaults), raw), source)
    data = config.data
    formats = [*GENERAL_READERS, *task.readers]
    if data.format not in formats:
        close = difflib.get_close_matches(data.format, formats, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{source}: data.format = {data.format!r} is not a format of task {task.name!r}{hint} "
            f"(allowed: {', '.join(formats)})"
        )
    if data.format in GENERAL_READERS and not data.train:
        raise ConfigError(f"{source}: data.train is required for data.format {data.format!r}")
    if (task is language_model.TASK) != (config.model.decoder.context == "none"):
        raise ConfigError(
            f"{source}: model.decoder.context none (a decoder conditioned on nothing) goes with task "
            f"language_model and only with it; here task {task.name!r} has context "
            f"{config.model.decoder.context!r}"
        )
    return config


def read_split(config: Config, split: str, report: ReadReport | None = None) -> list[Pair]:
    """The pairs of ``split`` ("train", "valid" or "test") as the config's task reads them."""
    return task_of(config).read(config.data, split, report)


__all__ = ["GENERAL_READERS", "TASKS", "Task", "read_split", "task_config", "task_of"]
