"""One child evaluation that can run in any process: the search's, a local worker's, a Ray task.

A :class:`TaskSpec` names a task by what its ``search_task`` needs (the child settings, the
run's seed, the data directory); a
process that receives a :class:`ChildEvaluator` builds the task from it once (cached per
process: PTB is loaded once per worker, not once per child). Evaluating an item
``(index, arch_json)`` gives ``(index, arch_json, ChildResult, seconds)``, the tuple the search
loop logs with :func:`pynas.search.records.child_record`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pynas.tasks.base import ChildResult, ChildSettings, SearchTask
from pynas.tasks.registry import get_task

ChildItem = tuple[int, str]  # (child index, canonical JSON of its architecture)
ChildOutcome = tuple[int, str, ChildResult, float]  # (index, arch JSON, result, seconds)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a process needs to build a search task: the task, its child settings, the
    run's seed, the data directory, and torch threads."""

    name: str
    child: ChildSettings
    seed: int = 0
    data_dir: str | None = None
    threads: int = 1  # torch threads in a worker process

    def key(self) -> str:
        return json.dumps(
            [self.name, self.child.to_dict(), self.seed, self.data_dir, self.threads],
            sort_keys=True,
        )


_TASKS: dict[str, SearchTask] = {}  # per-process cache: TaskSpec.key() -> SearchTask


def build_task(spec: TaskSpec) -> SearchTask:
    """The SearchTask of `spec`, built once per process; sets torch's thread count."""
    key = spec.key()
    if key not in _TASKS:
        import torch

        torch.set_num_threads(spec.threads)
        _TASKS[key] = get_task(spec.name).search_task(spec.child, spec.seed, spec.data_dir)
    return _TASKS[key]


def evaluate_item(task: Any, item: ChildItem) -> ChildOutcome:
    """Train and score one child; an exception becomes a failed result (SPEC §5)."""
    index, arch_json = item
    start = time.monotonic()
    try:
        result = task.evaluate(task.space.arch_from_json(arch_json), index)
    except Exception as exc:  # a crashing child never stops the search
        result = ChildResult.failed(f"{type(exc).__name__}: {exc}"[:500])
    return index, arch_json, result, time.monotonic() - start


class ChildEvaluator:
    """Picklable callable ``item -> ChildOutcome`` for executors that run children elsewhere.

    Pickling keeps only the spec; the receiving process builds the task on first use. The two
    extra methods are the hooks an executor calls when the worker running an item dies:
    ``failed`` gives the record of a child whose worker died on every attempt, ``retried``
    notes the attempts of a child that succeeded after its worker died.
    """

    def __init__(self, spec: TaskSpec, task: Any | None = None) -> None:
        self.spec = spec
        self._task = task  # the caller's already-built task (in-process use only)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = state["spec"]
        self._task = None

    @property
    def task(self) -> Any:
        if self._task is None:
            self._task = build_task(self.spec)
        return self._task

    def __call__(self, item: ChildItem) -> ChildOutcome:
        return evaluate_item(self.task, item)

    def failed(self, item: ChildItem, reason: str, attempts: int) -> ChildOutcome:
        index, arch_json = item
        return index, arch_json, ChildResult.failed(reason, attempts=attempts), 0.0

    def retried(self, outcome: ChildOutcome, attempts: int) -> ChildOutcome:
        outcome[2].metrics["attempts"] = attempts
        return outcome
