"""Named budgets: how many children, how they are batched, how long each one trains.

A budget is data. ``children`` is an upper bound; ``time_limit`` (seconds of search, summed
over resumed sessions) stops the search before a batch that would not fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Budget:
    children: int
    batch_size: int  # m: architectures per controller batch (and per ask)
    grads_per_update: int  # g: batch gradients accumulated per controller update
    child: dict[str, Any] = field(default_factory=dict)  # task-specific child settings
    # REINFORCE settings changed on top of the chosen preset (e.g. a larger lr for few updates)
    reinforce: dict[str, Any] = field(default_factory=dict)
    time_limit: float | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Zaremba et al.'s "medium" PTB LSTM (2x650, untied): the parameter count the paper matches.
MEDIUM_BASELINE_PARAMS = 19_780_400


def _paper_ptb() -> Budget:
    from pynas.children.language_model import hidden_for_param_budget

    hidden = hidden_for_param_budget(8, 10_000, MEDIUM_BASELINE_PARAMS, 2, tie_weights=False)
    return Budget(
        # The paper gives no child count for its PTB search; 12,800 is its CIFAR-10 count.
        children=12_800,
        # Zoph & Le §4.2 (PTB): S=20, K=400, m=1 ("400 networks being trained on 400 CPUs
        # concurrently"), an update once 10 gradients have accumulated, controller lr 5e-4.
        batch_size=1,
        grads_per_update=10,
        child={
            "base": 8,
            "hidden": hidden,
            "num_layers": 2,
            "epochs": 35,
            "batch_size": 20,
            "bptt": 35,
            "lr": 1.0,
            "lr_decay": 1.2,
            "clip": 5.0,
            "dropout": 0.5,
            "tie_weights": False,
        },  # fmt: skip
        description=(
            f"SPEC §6: base 8, hidden {hidden} (medium-baseline parameter count), 35 epochs, "
            "m=1, an update per 10 gradients (the paper's PTB search)"
        ),
    )


def _default_ptb() -> Budget:
    child = {
        "base": 8, "hidden": 32, "num_layers": 2, "epochs": 1, "batch_size": 20, "bptt": 35,
        "lr": 20.0, "clip": 0.25, "dropout": 0.0, "tie_weights": True,
        "train_tokens": 30_000, "valid_tokens": 4_000, "eval_batch_size": 20,
    }  # fmt: skip
    return Budget(
        children=400,
        batch_size=4,
        grads_per_update=1,
        child=child,
        # ~25 controller updates fit in the time limit instead of thousands: a 10x larger lr
        reinforce={"lr": 5e-3},
        time_limit=510.0,
        description="laptop budget: tiny children, stops after 8.5 minutes of search",
    )


def _default_toy() -> Budget:
    return Budget(
        children=160,
        batch_size=8,
        grads_per_update=1,
        child={"delay": 0.0},
        reinforce={"lr": 0.03},
        description="synthetic smoke/demo task: a reward over 6 decisions, no training",
    )


def _default_cifar10() -> Budget:
    from pynas.tasks.cifar10_search import default_budget  # defined next to the task

    return default_budget()


def _paper_cifar10() -> Budget:
    from pynas.tasks.cifar10_search import paper_budget

    return paper_budget()


BUDGETS = {
    "ptb": {"default": _default_ptb, "paper": _paper_ptb},
    "toy": {"default": _default_toy},
    "cifar10": {"default": _default_cifar10, "paper": _paper_cifar10},
}


def budget_names(task: str) -> list[str]:
    return sorted(BUDGETS.get(task, {}))


def get_budget(task: str, name: str) -> Budget:
    if task not in BUDGETS:
        raise ValueError(f"no budgets for task {task!r}")
    if name not in BUDGETS[task]:
        raise ValueError(
            f"unknown budget {name!r} for task {task!r}; choose one of {budget_names(task)}"
        )
    return BUDGETS[task][name]()
