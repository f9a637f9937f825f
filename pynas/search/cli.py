"""``python -m pynas.search``: run, show and resume an architecture search."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from pynas.cli import UsageError, nonnegative_float, positive_int, run_main
from pynas.executors import options as execution
from pynas.executors.child import TaskSpec
from pynas.executors.select import make_search
from pynas.jsonio import finite_float
from pynas.search.budgets import BUDGETS, Budget, get_budget
from pynas.search.display import SearchDisplay
from pynas.search.rundir import RunDir, RunDirError
from pynas.search.tasks import TASKS, make_task
from pynas.search.tensorboard import TensorBoardLogger, require_tensorboard
from pynas.spaces import DecisionSpace
from pynas.strategies import PRESETS, RandomSearch, RegularizedEvolution, Reinforce, Strategy
from pynas.tasks.data import DataError

STRATEGIES = ("reinforce", "random", "evolution")
DEVICE_TASKS = ("ptb", "cifar10")  # tasks whose children train on a --device
META_FORMAT = 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pynas.search",
        description=(
            "Search architectures. New run: --task TASK --run-dir RUN; continue a run that "
            "stopped or was killed: --resume RUN."
        ),
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        help="ptb: PTB language modelling (needs data); "
        "toy: a quick smoke/demo task with a synthetic reward, no data",
    )
    p.add_argument("--data-dir", help="directory with the task's files (default: $PYNAS_DATA)")
    p.add_argument("--run-dir", help="empty or new directory for the run's log and checkpoint")
    p.add_argument("--resume", metavar="RUN", help="continue the search in run directory RUN")
    names = sorted({n for b in BUDGETS.values() for n in b})
    p.add_argument(
        "--budget",
        default="default",
        help=f"named budget ({', '.join(names)}); default: finishes in <= 10 min on a laptop",
    )
    p.add_argument("--strategy", choices=STRATEGIES, default="reinforce")
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="REINFORCE settings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--children", type=positive_int, help="override the budget's child count")
    p.add_argument(
        "--time-limit",
        type=nonnegative_float,
        metavar="MINUTES",
        help="override the budget's time limit (0: none)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads (default 1: fastest for small children and on a loaded machine)",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress display")
    p.add_argument(
        "--repair-log",
        action="store_true",
        help="with --resume: move damaged lines of children.jsonl to children.jsonl.damaged "
        "and continue (a child of the unfinished batch is trained again; a child the strategy "
        "already learned from is kept as a record with status 'damaged')",
    )
    p.add_argument(
        "--tensorboard",
        nargs="?",
        const="",
        metavar="DIR",
        help="log reward, baseline and entropy per child to TensorBoard in DIR (default: "
        "RUN/tensorboard); needs the tensorboard package: pip install 'pynas[tensorboard]'",
    )
    execution.add_arguments(p)  # --executor, --workers, Ray's --address/--servers/--replicas...
    # test/demo knob of the toy task: seconds each toy child takes
    p.add_argument("--child-delay", type=nonnegative_float, help=argparse.SUPPRESS)
    return p


def _new_meta(args: argparse.Namespace) -> dict[str, Any]:
    if args.task is None:
        raise UsageError("--task is required for a new search (or use --resume RUN)")
    if args.repair_log:
        raise UsageError("--repair-log applies to --resume RUN (a new run has no log to repair)")
    if args.run_dir is None:
        raise UsageError("--run-dir is required: the directory for the run's log and checkpoint")
    try:
        budget = get_budget(args.task, args.budget)
    except ValueError as exc:
        raise UsageError(f"--budget: {exc}") from None
    changes: dict[str, Any] = {}
    if args.children is not None:
        changes["children"] = args.children
    if args.time_limit is not None:
        changes["time_limit"] = args.time_limit * 60 or None
    changes.update(execution.budget_changes(args))  # --batch-size, --grads-per-update
    where = execution.execution_settings(args, args.strategy)
    child = dict(budget.child)
    if args.child_delay is not None:
        if args.task != "toy":
            raise UsageError("--child-delay applies to --task toy only")
        child["delay"] = args.child_delay
    if args.task in DEVICE_TASKS:
        child["device"] = execution.child_device(args, where)  # resume and retrain keep it
    elif args.device is not None:
        raise UsageError(f"--device applies to {' and '.join(DEVICE_TASKS)} children")
    settings = {**budget.to_dict(), **changes, "child": child}
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    return {
        "format": META_FORMAT,
        "task": args.task,
        "budget": args.budget,
        "budget_settings": settings,
        "strategy": args.strategy,
        "preset": args.preset,
        "seed": args.seed,
        "data_dir": data_dir,
        "execution": where,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def make_strategy(meta: dict[str, Any], space: DecisionSpace, budget: Budget) -> Strategy:
    name, seed = meta["strategy"], meta["seed"]
    if name == "reinforce":
        return Reinforce(
            space,
            meta["preset"],
            batch_size=budget.batch_size,
            grads_per_update=budget.grads_per_update,
            seed=seed,
            **budget.reinforce,
        )
    if name == "random":
        return RandomSearch(space, seed=seed)
    if name == "evolution":
        return RegularizedEvolution(space, seed=seed)
    raise UsageError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")


def _resume_conflicts(args: argparse.Namespace) -> list[str]:
    given = {
        "--task": args.task, "--run-dir": args.run_dir, "--children": args.children,
        "--time-limit": args.time_limit, "--child-delay": args.child_delay,
    }  # fmt: skip
    out = [k for k, v in given.items() if v is not None]
    defaults = {"--budget": ("budget", "default"), "--strategy": ("strategy", "reinforce"),
                "--preset": ("preset", "paper"), "--seed": ("seed", 0)}  # fmt: skip
    out += [k for k, (attr, d) in defaults.items() if getattr(args, attr) != d]
    return out + execution.resume_conflicts(args)


def main_body(args: argparse.Namespace) -> int:
    if args.resume:
        conflicts = _resume_conflicts(args)
        if conflicts:
            raise UsageError(
                f"--resume takes the run's settings from its run.json; drop {', '.join(conflicts)}"
                " (only --data-dir, --threads, --quiet, --tensorboard, --workers, --address "
                "and --repair-log may be given with --resume)"
            )
        run = RunDir.open(args.resume, repair_log=args.repair_log)
        meta = run.meta()  # RunDirError if run.json is damaged
        if meta.get("format") != META_FORMAT:
            raise UsageError(f"{run.meta_path}: not a run of this pynas version")
    else:
        meta = _new_meta(args)
        run = None
    if args.tensorboard is not None:
        require_tensorboard()  # before a new run directory is created
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else meta.get("data_dir")
    try:
        budget = Budget(**meta["budget_settings"])
        # a device this machine cannot provide: exit 2 now, not a failed child per child
        execution.check_child_device(meta["execution"], args, meta["task"], budget.child)
        task = make_task(meta["task"], budget.child, meta["seed"], data_dir)  # DataError -> usage
    except (TypeError, ValueError, AttributeError) as exc:
        if run is None:
            raise
        raise RunDirError(  # a damaged run.json, or one of another pynas version
            f"cannot resume: {run.meta_path} holds settings this pynas cannot use ({exc}); "
            "restore it from a backup, or resume with the pynas version that started the run"
        ) from None
    if run is None:
        # e.g. more parameter servers than the controller has tensors: refuse before creating
        execution.check_new_run(meta["execution"], make_strategy(meta, task.space, budget))
        run = RunDir.create(args.run_dir, meta)
    run.lock()
    try:
        return _search(args, meta, run, task, budget, data_dir)
    finally:
        run.unlock()


def _search(
    args: argparse.Namespace,
    meta: dict[str, Any],
    run: RunDir,
    task: Any,
    budget: Budget,
    data_dir: str | None = None,
) -> int:
    """Run (or continue) the search in the locked run directory; print and save the summary."""
    torch.set_num_threads(args.threads)
    stream = sys.stderr
    display = SearchDisplay(
        budget.children, stream=stream, enabled=not args.quiet, time_limit=budget.time_limit
    )
    strategy = make_strategy(meta, task.space, budget)
    if args.resume:  # the run's settings, with --workers/--address of this session
        where = execution.resumed_execution(meta.get("execution"), args)
    else:
        where = meta["execution"]
    spec = TaskSpec(meta["task"], budget.child, meta["seed"], data_dir, args.threads)
    search, close = make_search(where, run, task, spec, meta, budget, strategy, display)
    search.restore()
    action = "resuming" if args.resume else "starting"
    limit = f", time limit {budget.time_limit / 60:.1f} min" if budget.time_limit else ""
    print(
        f"{action} search: task {task.name}, strategy {strategy.name}"
        + (
            f" (preset {meta['preset']}, lr {strategy.settings.lr:g})"
            if isinstance(strategy, Reinforce)
            else ""
        )
        + f", budget {meta['budget']} (up to {budget.children} children, "
        f"m={budget.batch_size}{limit}), children {execution.describe(where, meta['strategy'])}, "
        f"run {run.path}",
        file=stream,
        flush=True,
    )
    board = None
    if args.tensorboard is not None:
        board = TensorBoardLogger(args.tensorboard or run.path / "tensorboard", search.records)
        search.on_record.append(board.log)
        print(f"TensorBoard: tensorboard --logdir {board.log_dir}", file=stream, flush=True)
    started = time.monotonic()
    try:
        summary = search.run_all()
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with --resume {run.path}", file=stream)
        return 130
    finally:
        if board is not None:
            board.close()
        close()
    summary["session_wall_seconds"] = round(time.monotonic() - started, 1)
    run.write_summary(summary)
    print_summary(summary, task.space, stream=sys.stdout)
    print(f"summary written to {run.summary_path}", file=sys.stdout)
    return 0


def print_summary(summary: dict[str, Any], space: DecisionSpace, stream: Any) -> None:
    trend = summary["reward_trend"]
    state = "complete" if summary["complete"] else "stopped at the time limit"
    print(
        f"\n{summary['children_done']} children ({summary['failed']} failed), {state}, "
        f"{summary['search_seconds']:.0f}s of search",
        file=stream,
    )
    if trend["batch_means"]:
        print(
            f"batch mean reward: first {trend['first_batch_mean']:.4g}, "
            f"last {trend['last_batch_mean']:.4g}",
            file=stream,
        )
    print("top architectures:", file=stream)
    for entry in summary["top"][:5]:
        value = finite_float(entry.get("ppl"))
        ppl = f"  ppl {value:.1f}" if value is not None else ""
        print(f"  #{entry['rank']} child {entry['index']}  reward {entry['reward']:.6g}{ppl}",
              file=stream)  # fmt: skip
    if summary["top"]:
        print("best:", file=stream)
        print(space.render(space.arch_from_json(_json(summary["top"][0]["arch"]))), file=stream)


def _json(arch: Any) -> str:
    import json

    return json.dumps(arch, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run_main(build_parser(), main_body, argv, usage_errors=(DataError, RunDirError))
