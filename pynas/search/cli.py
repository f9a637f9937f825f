"""``python -m pynas.search``: run, show and resume an architecture search."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from pynas.argtypes import UsageError, nonnegative_float, positive_int, run_main
from pynas.executors.child import TaskSpec
from pynas.io import finite_float
from pynas.search import execution
from pynas.search.backends import make_search, make_shared_search
from pynas.search.display import SearchDisplay
from pynas.search.journal import RunDirError, RunJournal
from pynas.search.settings import META_FORMAT, STRATEGIES, RunSettings
from pynas.search.shared_cli import add_shared_arguments, new_shared_meta, shared_given
from pynas.search.shared_settings import WEIGHTS
from pynas.search.tensorboard import TensorBoardLogger, require_tensorboard
from pynas.spaces import DecisionSpace
from pynas.strategies import PRESETS, Reinforce
from pynas.tasks.data import DataError
from pynas.tasks.registry import TASKS


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
        choices=list(TASKS),
        help="; ".join(f"{t.name}: {t.help}" for t in TASKS.values()),
    )
    p.add_argument("--data-dir", help="directory with the task's files (default: $PYNAS_DATA)")
    p.add_argument("--run-dir", help="empty or new directory for the run's log and checkpoint")
    p.add_argument("--resume", metavar="RUN", help="continue the search in run directory RUN")
    names = sorted({n for t in TASKS.values() for n in t.budgets()})
    p.add_argument(
        "--budget",
        default="default",
        help=f"named budget ({', '.join(names)}); default: finishes in <= 10 min on a laptop",
    )
    p.add_argument("--strategy", choices=STRATEGIES, default="reinforce")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="REINFORCE settings (default: the budget's: 'default', the sample-efficient one, "
        "for --budget default; 'paper' for --budget paper and for --executor ray)",
    )
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
    p.add_argument(
        "--weights",
        choices=WEIGHTS,
        help="standalone (default): every child trains its own weights; shared: one set of "
        "weights serves every architecture (ENAS-style rounds; --task ptb, README 'Weight "
        "sharing')",
    )
    add_shared_arguments(p)
    execution.add_arguments(p)  # --executor, --workers, Ray's --address/--servers/--replicas...
    # test/demo knob of the toy task: seconds each toy child takes
    p.add_argument("--child-delay", type=nonnegative_float, help=argparse.SUPPRESS)
    return p


def _new_meta(args: argparse.Namespace) -> dict[str, Any]:
    if args.task is None:
        raise UsageError("--task is required for a new search (or use --resume RUN)")
    if args.weights == "shared":
        if args.repair_log:
            raise UsageError("--repair-log applies to --resume RUN (a new run has no log)")
        if args.run_dir is None:
            raise UsageError("--run-dir is required: the directory for the run's log and "
                             "checkpoint")  # fmt: skip
        return new_shared_meta(args)
    shared_only = shared_given(args)
    if shared_only:
        raise UsageError(f"{', '.join(shared_only)} apply to --weights shared only")
    if args.repair_log:
        raise UsageError("--repair-log applies to --resume RUN (a new run has no log to repair)")
    if args.run_dir is None:
        raise UsageError("--run-dir is required: the directory for the run's log and checkpoint")
    task = TASKS[args.task]
    try:
        budget = task.budget(args.budget)
    except ValueError as exc:
        raise UsageError(f"--budget: {exc}") from None
    changes: dict[str, Any] = {}
    if args.children is not None:
        changes["children"] = args.children
    if args.time_limit is not None:
        changes["time_limit"] = args.time_limit * 60 or None
    changes.update(execution.budget_changes(args))  # --batch-size, --grads-per-update
    where = execution.execution_settings(args, args.strategy)
    child = budget.child
    if args.child_delay is not None:
        if not task.takes_delay:
            names = " and ".join(t.name for t in TASKS.values() if t.takes_delay)
            raise UsageError(f"--child-delay applies to --task {names} only")
        child = task.with_delay(child, args.child_delay)
    if task.trains_on_device:  # resume and retrain keep it
        child = task.with_device(child, execution.child_device(args, where))
    elif args.device is not None:
        names = " and ".join(t.name for t in TASKS.values() if t.trains_on_device)
        raise UsageError(f"--device applies to {names} children")
    settings = {**replace(budget, child=child).to_dict(), **changes}
    preset = args.preset or budget.preset
    on_ray = where.executor == "ray" and args.strategy == "reinforce"
    if on_ray and args.preset is None and not PRESETS[preset].plain:
        preset = "paper"  # what the parameter-server search runs (below)
    if on_ray and not PRESETS[preset].plain:
        raise UsageError(
            f"the Ray parameter-server search runs the paper's REINFORCE (advantage R - b, one "
            f"step per update); preset {preset!r} needs more (rank advantages, clipped epochs, "
            "novel asks, elite imitation): add --preset paper (or enas), or use --executor local"
        )
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    return {
        "format": META_FORMAT,
        "task": args.task,
        "budget": args.budget,
        "budget_settings": settings,
        "strategy": args.strategy,
        "preset": preset,
        "seed": args.seed,
        "data_dir": data_dir,
        "execution": where.to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _resume_conflicts(args: argparse.Namespace) -> list[str]:
    given = {
        "--task": args.task, "--run-dir": args.run_dir, "--children": args.children,
        "--time-limit": args.time_limit, "--child-delay": args.child_delay,
    }  # fmt: skip
    out = [k for k, v in given.items() if v is not None]
    defaults = {"--budget": ("budget", "default"), "--strategy": ("strategy", "reinforce"),
                "--preset": ("preset", None), "--seed": ("seed", 0)}  # fmt: skip
    out += [k for k, (attr, d) in defaults.items() if getattr(args, attr) != d]
    out += ["--weights"] * (args.weights is not None) + shared_given(args)
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
        run = RunJournal.open(args.resume, repair_log=args.repair_log)
        settings = run.settings()  # RunDirError if run.json is damaged
    else:
        meta = _new_meta(args)
        settings = RunSettings.from_dict(meta)
        run = None
    if args.tensorboard is not None:
        require_tensorboard()  # before a new run directory is created
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else settings.data_dir
    budget = settings.budget
    try:
        plugin = TASKS[settings.task]
        # a device this machine cannot provide: exit 2 now, not a failed child per child
        execution.check_child_device(settings.execution, args, plugin, budget.child)
        task = plugin.search_task(budget.child, settings.seed, data_dir)  # DataError -> usage
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        if run is None:
            raise
        raise RunDirError(  # a damaged run.json, or one of another pynas version
            f"cannot resume: {run.meta_path} holds settings this pynas cannot use ({exc}); "
            "restore it from a backup, or resume with the pynas version that started the run"
        ) from None
    if run is None:
        # e.g. more parameter servers than the controller has tensors: refuse before creating
        execution.check_new_run(settings.execution, settings.make_strategy(task.space))
        run = RunJournal.create(args.run_dir, meta)
    run.lock()
    try:
        return _search(args, settings, run, task, data_dir)
    finally:
        run.unlock()


def _search(
    args: argparse.Namespace,
    settings: RunSettings,
    run: RunJournal,
    task: Any,
    data_dir: str | None = None,
) -> int:
    """Run (or continue) the search in the locked run directory; print and save the summary."""
    torch.set_num_threads(args.threads)
    stream = sys.stderr
    budget = settings.budget
    display = SearchDisplay(
        budget.children, stream=stream, enabled=not args.quiet, time_limit=budget.time_limit
    )
    strategy = settings.make_strategy(task.space)
    where = settings.execution
    if args.resume and settings.shared is not None and args.workers is not None:
        raise UsageError("--workers does not apply to a weight-sharing search (it trains the "
                         "shared model in this process)")  # fmt: skip
    if args.resume:  # the run's settings, with --workers/--address of this session
        where = execution.resumed_execution(where, args)
    if settings.shared is not None:
        search, close = make_shared_search(run, settings, strategy, display, data_dir)
    else:
        spec = TaskSpec(settings.task, budget.child, settings.seed, data_dir, args.threads)
        search, close = make_search(where, run, task, spec, settings, strategy, display)
    search.restore()
    action = "resuming" if args.resume else "starting"
    limit = f", time limit {budget.time_limit / 60:.1f} min" if budget.time_limit else ""
    preset = (
        f" (preset {settings.preset}, lr {strategy.settings.lr:g})"
        if isinstance(strategy, Reinforce)
        else ""
    )
    if settings.shared is not None:
        schedule, engine = settings.shared.schedule, settings.shared.engine
        plan = (
            f"shared weights (base {engine.base}, hidden {engine.hidden}, {engine.batch_size} "
            f"rows per step): up to {schedule.rounds} rounds of {schedule.train_steps} training "
            f"steps on {schedule.archs_per_step} architectures each and "
            f"{schedule.scored_per_round} architectures scored{limit}"
        )
    else:
        plan = (
            f"budget {settings.budget_name} (up to {budget.children} children, "
            f"m={budget.batch_size}{limit}), children {where.describe(settings.strategy)}"
        )
    print(
        f"{action} search: task {task.name}, strategy {strategy.name}{preset}, {plan}, "
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
    shared = summary.get("weights") == "shared"
    done = (
        f"{summary['rounds_done']} rounds, {summary['children_done']} architectures scored with "
        "the shared weights"
        if shared
        else f"{summary['children_done']} children"
    )
    print(
        f"\n{done} ({summary['failed']} failed), {state}, "
        f"{summary['search_seconds']:.0f}s of search",
        file=stream,
    )
    if trend["batch_means"]:
        print(
            f"batch mean reward: first {trend['first_batch_mean']:.4g}, "
            f"last {trend['last_batch_mean']:.4g}",
            file=stream,
        )
    if shared:
        print(
            "top architectures (ranked with the shared weights on "
            f"{summary['ranking_valid_tokens'] or 0:,} validation tokens; retrain them from "
            "scratch for real numbers):",
            file=stream,
        )
    else:
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
