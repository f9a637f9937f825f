"""The one registry of tasks: ``TASKS[name]`` is the :class:`~pynas.tasks.base.Task` of that
package. Nothing outside a task's package and this file names a task."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pynas.tasks.base import SearchTask, Task
from pynas.tasks.cifar10 import TASK as CIFAR10
from pynas.tasks.ptb import TASK as PTB
from pynas.tasks.toy import TASK as TOY

TASKS: dict[str, Task] = {task.name: task for task in (PTB, TOY, CIFAR10)}
#: The task of ``pynas.build_model`` when none is named.
DEFAULT_TASK = PTB.name


def get_task(name: str) -> Task:
    """The task called `name`; ValueError naming the known ones otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {list(TASKS)}")
    return TASKS[name]


def make_task(
    name: str, child: Mapping[str, Any], seed: int, data_dir: str | os.PathLike[str] | None = None
) -> SearchTask:
    """The search task of `name` with child settings in their run.json form (DataError if the
    data is missing)."""
    task = get_task(name)
    return task.search_task(task.child_settings(child), seed, data_dir)


def tasks_with(option: str) -> list[str]:
    """Names of the tasks whose retrain takes `option` (a grid axis or a training option)."""
    return [
        t.name for t in TASKS.values() if option in t.retrain_grid or option in t.retrain_options
    ]
