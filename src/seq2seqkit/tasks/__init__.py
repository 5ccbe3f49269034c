"""Applications, one module each: a ``Task`` holds its readers, metrics, reference grouping and
config defaults. A plain dict of the registered tasks; ``task:`` in a config must name one.

Adding an application is adding a module here (and its featurizer, frontend or output head
where it needs new ones), registered in ``TASKS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seq2seqkit.data.readers import Pair, ReadReport
from seq2seqkit.tasks import asr, g2p, qa, summarization, synthetic, translation
from seq2seqkit.tasks.task import GENERAL_READERS, Task

if TYPE_CHECKING:
    from seq2seqkit.config import Config

TASKS: dict[str, Task] = {
    task.name: task
    for task in (translation.TASK, summarization.TASK, qa.TASK, asr.TASK, g2p.TASK, *synthetic.TASKS)
}


def task_of(config: Config) -> Task:
    return TASKS[config.task]


def read_split(config: Config, split: str, report: ReadReport | None = None) -> list[Pair]:
    """The pairs of ``split`` ("train", "valid" or "test") as the config's task reads them."""
    return task_of(config).read(config.data, split, report)


__all__ = ["GENERAL_READERS", "TASKS", "Task", "read_split", "task_of"]
