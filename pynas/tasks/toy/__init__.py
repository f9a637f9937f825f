"""The toy task: a quick smoke and demo task that needs no data.

A synthetic reward over a small declared space, highest for one fixed architecture. It is also
the worked example of a task package (README, "Add a task"): a space, a typed child settings
dataclass, an evaluation and a budget, behind :class:`pynas.tasks.base.Task`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from pynas.spaces import DecisionSpace
from pynas.tasks.base import Budget, ChildResult, SearchTask, Task

TOY_SPACE = DecisionSpace(
    {
        "op0": ["conv3", "conv5", "pool", "identity"],
        "op1": ["conv3", "conv5", "pool", "identity"],
        "op2": ["conv3", "conv5", "pool", "identity"],
        "width": [16, 32, 64, 128],
        "depth": [2, 4, 6, 8],
        "skip": [False, True],
    }
)
TOY_TARGET = {"op0": "conv5", "op1": "pool", "op2": "conv3", "width": 64, "depth": 6, "skip": True}


def toy_reward(arch: dict[str, Any]) -> float:
    """Fraction of decisions equal to TOY_TARGET, squared (1.0 only for the target)."""
    matches = sum(arch[k] == v for k, v in TOY_TARGET.items())
    return (matches / len(TOY_TARGET)) ** 2


@dataclass(frozen=True)
class ToyChild:
    """A toy child's settings: how many seconds each evaluation waits (tests, demos)."""

    delay: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ToyTask(Task):
    name = "toy"
    help = "a quick smoke/demo task with a synthetic reward, no data"
    takes_delay = True

    def budgets(self) -> dict[str, Callable[[], Budget]]:
        return {"default": default_budget}

    def child_settings(self, data: Mapping[str, Any]) -> ToyChild:
        return ToyChild(delay=float(data.get("delay", 0.0)))

    def with_delay(self, child: ToyChild, seconds: float) -> ToyChild:  # type: ignore[override]
        return replace(child, delay=seconds)

    def search_task(
        self, child: ToyChild, seed: int, data_dir: str | os.PathLike[str] | None = None
    ) -> SearchTask:  # type: ignore[override]
        delay = child.delay

        def evaluate(arch: dict[str, Any], index: int) -> ChildResult:
            start = time.monotonic()
            if delay:
                time.sleep(delay)
            reward = toy_reward(arch)
            return ChildResult("ok", reward, {"seconds": time.monotonic() - start})

        describe = "synthetic reward over a 6-decision space"
        return SearchTask(self.name, TOY_SPACE, evaluate, describe)


def default_budget() -> Budget:
    return Budget(
        children=160,
        batch_size=8,
        grads_per_update=1,
        child=ToyChild(),
        description="synthetic smoke/demo task: a reward over 6 decisions, no training",
    )


TASK = ToyTask()
