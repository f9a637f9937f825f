"""What a search optimises: a space plus a way to evaluate one of its architectures.

Registered tasks: ``ptb`` (SPEC §7) and ``toy``, a quick smoke/demo task that needs no data: a
synthetic reward over a small declared space, highest for one fixed architecture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynas.spaces import DecisionSpace, RNNCellSpace
from pynas.tasks.result import ChildResult


@dataclass
class SearchTask:
    """A space, an evaluation ``evaluate(arch, child_index) -> ChildResult`` and a name."""

    name: str
    space: DecisionSpace
    evaluate: Callable[[Any, int], ChildResult]
    describe: str = ""
    # Called with the number of children sampled so far before each ask (progressive depth).
    before_ask: Callable[[int], None] | None = None


# ----- toy ------------------------------------------------------------------------------------
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


def make_toy_task(child: dict[str, Any], seed: int) -> SearchTask:
    delay = float(child.get("delay", 0.0))

    def evaluate(arch: dict[str, Any], index: int) -> ChildResult:
        start = time.monotonic()
        if delay:
            time.sleep(delay)
        reward = toy_reward(arch)
        return ChildResult("ok", reward, {"seconds": time.monotonic() - start})

    return SearchTask("toy", TOY_SPACE, evaluate, "synthetic reward over a 6-decision space")


# ----- ptb ------------------------------------------------------------------------------------
def make_ptb_task(child: dict[str, Any], seed: int, data_dir: str | None) -> SearchTask:
    """PTB children (raises pynas.tasks.data.DataError when the data is missing)."""
    from pynas.tasks.ptb import PTBConfig, load_corpus, train_child

    settings = dict(child)
    base = int(settings.pop("base", 8))
    config = PTBConfig(**settings)
    corpus = load_corpus(data_dir)
    space = RNNCellSpace(base)

    def evaluate(arch: Any, index: int) -> ChildResult:
        # Each child its own seed: a child trained again after a kill gets the same result.
        return train_child(arch, config.with_(seed=seed * 1_000_003 + index), corpus)

    return SearchTask("ptb", space, evaluate, f"PTB, base-{base} cells, {config}")


TASKS = ("ptb", "toy", "cifar10")


def make_task(
    name: str, child: dict[str, Any], seed: int, data_dir: str | None = None
) -> SearchTask:
    if name == "toy":
        return make_toy_task(child, seed)
    if name == "ptb":
        return make_ptb_task(child, seed, data_dir)
    if name == "cifar10":
        from pynas.tasks.cifar10_search import make_cifar10_task

        return make_cifar10_task(child, seed, data_dir)
    raise ValueError(f"unknown task {name!r}; choose one of {list(TASKS)}")
