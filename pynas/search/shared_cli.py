"""The command line of a weight-sharing search (``python -m pynas.search --weights shared``):
its schedule options, and the ``run.json`` of a new run (the options that do not apply to it
are refused with a message). See :mod:`pynas.search.shared_loop` for what a run does."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pynas.argtypes import UsageError, positive_int, size_limit
from pynas.search import execution
from pynas.search.settings import META_FORMAT
from pynas.search.shared_settings import (
    DEFAULT_TIME_LIMIT,
    SHARED_TASK,
    SharedSchedule,
    SharedSettings,
)
from pynas.tasks.registry import TASKS

SCHEDULE_OPTIONS = {"rounds": "--rounds", "train_steps": "--train-steps",
                    "archs_per_step": "--archs-per-step", "scored_per_round": "--scored-per-round",
                    "rank_top": "--rank-top"}  # fmt: skip


def add_shared_arguments(p: argparse.ArgumentParser) -> None:
    d = SharedSchedule()
    g = p.add_argument_group("the weight-sharing schedule (with --weights shared)")
    g.add_argument("--rounds", type=positive_int, help=f"rounds at most ({d.rounds}); the time "
                   "limit (default 5 min) usually ends the search first")  # fmt: skip
    g.add_argument("--train-steps", type=positive_int,
                   help=f"training steps of the shared weights per round ({d.train_steps})")
    g.add_argument("--archs-per-step", type=positive_int, metavar="M",
                   help=f"architectures asked from the strategy per training step, each on its "
                   f"share of the batch rows ({d.archs_per_step})")  # fmt: skip
    g.add_argument("--scored-per-round", type=positive_int, metavar="N",
                   help="architectures asked, scored with the shared weights in one call and "
                   f"told per round ({d.scored_per_round}; the strategy's batch)")  # fmt: skip
    g.add_argument("--rank-top", type=positive_int, metavar="K",
                   help=f"distinct architectures ranked at the end ({d.rank_top})")
    g.add_argument("--rank-tokens", type=size_limit, default=argparse.SUPPRESS, metavar="N|all",
                   help=f"validation tokens of the final ranking ({d.rank_tokens:,})")


def shared_given(args: argparse.Namespace) -> list[str]:
    given = [flag for name, flag in SCHEDULE_OPTIONS.items() if getattr(args, name) is not None]
    return given + (["--rank-tokens"] if hasattr(args, "rank_tokens") else [])


def new_shared_meta(args: argparse.Namespace) -> dict[str, Any]:
    """run.json of a new weight-sharing search (UsageError on options that do not apply)."""
    if args.task != SHARED_TASK:
        raise UsageError(
            f"--weights shared needs --task {SHARED_TASK}: the shared model is a tree-cell "
            f"language model; got --task {args.task}"
        )
    if args.budget != "default":
        raise UsageError(
            "--budget applies to standalone searches; a weight-sharing search is sized by "
            f"--time-limit and {', '.join(SCHEDULE_OPTIONS.values())}"
        )
    wrong = {
        "--children": "--rounds and --scored-per-round bound the scored architectures",
        "--batch-size": "the strategy's batch is --scored-per-round",
        "--grads-per-update": "the strategy learns from each round's batch",
        "--child-delay": "it is a knob of the toy task",
        "--workers": "the shared model trains in this process",
        "--child-retries": "the shared model trains in this process",
        "--executor": "the shared model trains in this process (--executor local)",
        "--device": "the shared model trains on the CPU",
    }
    values = {"--children": args.children, "--batch-size": args.batch_size,
              "--grads-per-update": args.grads_per_update, "--child-delay": args.child_delay,
              "--workers": args.workers, "--child-retries": args.child_retries,
              "--executor": None if args.executor in (None, "local") else args.executor,
              "--device": None if args.device in (None, "cpu") else args.device}  # fmt: skip
    for flag, why in wrong.items():
        if values[flag] is not None:
            raise UsageError(f"{flag} does not apply to --weights shared ({why})")
    ray_only = [f"--{n.replace('_', '-')}" for n in execution.RAY_ONLY if getattr(args, n)]
    if ray_only:
        raise UsageError(f"{', '.join(ray_only)} apply to --executor ray only")
    changes = {name: getattr(args, name) for name in SCHEDULE_OPTIONS if getattr(args, name)}
    if hasattr(args, "rank_tokens"):
        changes["rank_tokens"] = args.rank_tokens
    try:
        settings = SharedSettings().with_schedule(**changes)
        settings = SharedSettings(settings.schedule, settings.engine.with_(seed=args.seed))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    task = TASKS[args.task]
    default = task.budget("default")
    assert default.child is not None
    child = {**default.child.to_dict(), **settings.standalone_child()}
    time_limit = DEFAULT_TIME_LIMIT if args.time_limit is None else (args.time_limit * 60 or None)
    schedule = settings.schedule
    budget = replace(
        default,
        children=schedule.scored_total,
        batch_size=schedule.scored_per_round,
        grads_per_update=1,
        child=task.child_settings(child),
        time_limit=time_limit,
        description="weight-sharing search: rounds of shared-weight training and batched "
        "scoring; the child settings are what pynas.retrain trains the found cells with",
    )
    return {
        "format": META_FORMAT,
        "task": args.task,
        "budget": "default",
        "budget_settings": budget.to_dict(),
        "strategy": args.strategy,
        "preset": args.preset or budget.preset,
        "seed": args.seed,
        "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
        "execution": execution.execution_settings(args, args.strategy).to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "weights": "shared",
        "shared": settings.to_dict(),
    }
