"""CIFAR-10 as a search task: the CNN space, progressive depth, child training, budgets.

A budget's ``child`` settings are CIFAR10Config fields plus these search settings:

* ``start_depth`` (layers of the first children), ``depth_every`` and ``depth_step``:
  the depth grows by `depth_step` every `depth_every` sampled architectures (SPEC §6; the paper:
  2 every 1,600, from 6), capped at ``max_depth`` if set. The depth of a batch is fixed when it
  is asked for, from the number of children sampled before it, so a resumed search continues
  at the same depth.
* ``stride1``: the paper's variant with stride fixed to 1 (no stride decision).
* ``extra_choices``: more per-layer decisions, e.g. ``{"pool": ["none", "max"]}``.
* ``variant`` (``small``/``jpeg``/``full``) and ``valid_size``: which file, how many training
  images are held out for validation (split seed fixed, independent of the search seed).
"""

from __future__ import annotations

import os
from typing import Any

from pynas.search.budgets import Budget
from pynas.search.tasks import SearchTask
from pynas.spaces.conv_space import PAPER_CHOICES, STRIDE1_CHOICES, ConvNetSpace
from pynas.tasks.cifar10 import CIFAR10Config, load_cifar10, train_child
from pynas.tasks.result import ChildResult

SEARCH_KEYS = {
    "start_depth": 6,
    "depth_every": 1600,
    "depth_step": 2,
    "max_depth": None,
    "stride1": False,
    "extra_choices": None,
    "anchors": True,
    "variant": "small",
    "valid_size": 500,
}


def depth_at(sampled: int, start: int, every: int, step: int, max_depth: int | None) -> int:
    """Depth of children asked for after `sampled` architectures: start + step·⌊sampled/every⌋."""
    depth = start + step * (sampled // every)
    return min(depth, max_depth) if max_depth is not None else depth


def split_settings(child: dict[str, Any]) -> tuple[dict[str, Any], CIFAR10Config]:
    """(search settings with defaults, child training config) from a budget's child dict."""
    search = {k: child.get(k, v) for k, v in SEARCH_KEYS.items()}
    config = CIFAR10Config(**{k: v for k, v in child.items() if k not in SEARCH_KEYS})
    for name, low in (("start_depth", 1), ("depth_every", 1), ("depth_step", 0)):
        value = search[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(
                f"cifar10 search setting {name} must be an integer >= {low}, got {value!r}"
            )
    return search, config


def make_space(search: dict[str, Any]) -> ConvNetSpace:
    choices = dict(STRIDE1_CHOICES if search["stride1"] else PAPER_CHOICES)
    choices.update({k: tuple(v) for k, v in (search["extra_choices"] or {}).items()})
    return ConvNetSpace(search["start_depth"], choices, anchors=search["anchors"])


def make_cifar10_task(
    child: dict[str, Any], seed: int, data_dir: str | os.PathLike[str] | None = None
) -> SearchTask:
    """CIFAR-10 children (raises pynas.tasks.data.DataError when the data is missing)."""
    search, config = split_settings(child)
    data = load_cifar10(data_dir, search["variant"], search["valid_size"])
    space = make_space(search)

    def before_ask(sampled: int) -> None:
        space.set_depth(
            depth_at(
                sampled, search["start_depth"], search["depth_every"], search["depth_step"],
                search["max_depth"],
            )
        )  # fmt: skip

    def evaluate(arch: Any, index: int) -> ChildResult:
        # Each child its own seed: a child trained again after a kill gets the same result.
        return train_child(arch, config.with_(seed=seed * 1_000_003 + index), data)

    describe = (
        f"CIFAR-10 ({data.source.name}, {len(data.train)} train / {len(data.valid)} validation), "
        f"depth {search['start_depth']} +{search['depth_step']} every {search['depth_every']}"
    )
    return SearchTask("cifar10", space, evaluate, describe, before_ask=before_ask)


# ----- budgets ------------------------------------------------------------------------------
def default_budget() -> Budget:
    """A laptop budget: about 8 minutes on one core (14 at most); small one-epoch children."""
    return Budget(
        children=128,
        batch_size=8,
        grads_per_update=1,
        child={
            "start_depth": 3,
            "depth_every": 64,
            "depth_step": 2,
            "max_depth": 5,
            "epochs": 1,
            "batch_size": 64,
            "train_images": 600,
            "valid_images": 500,
            "reward_epochs": 5,
            "reward_exponent": 3.0,
        },
        reinforce={"lr": 0.02},
        time_limit=840.0,
        description=(
            "laptop budget: 128 children (depth 3, then 5 after 64), 1 epoch on 600 images, "
            "validated on 500; m=8; controller lr 0.02 for so few updates; stops by 14 min"
        ),
    )


def paper_budget() -> Budget:
    """SPEC §6 / Zoph & Le: 12,800 children of 50 epochs, depth 6 +2 every 1,600, m=8."""
    return Budget(
        children=12_800,
        batch_size=8,
        grads_per_update=1,
        child={
            "start_depth": 6,
            "depth_every": 1600,
            "depth_step": 2,
            "epochs": 50,
            "batch_size": 128,
            "lr": 0.1,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 1e-4,
            "lr_schedule": "constant",
            "augment": True,
            "variant": "full",  # python -m pynas.data fetch cifar10 --dest DIR
            "valid_size": 5000,
        },  # fmt: skip
        description=(
            "SPEC §6 shape: depth 6 +2 every 1,600 of 12,800 children, 50 epochs each, m=8, on "
            "the full CIFAR-10 with 5,000 of its 50,000 training images held out, as the paper"
        ),
    )


BUDGETS = {"default": default_budget, "paper": paper_budget}
