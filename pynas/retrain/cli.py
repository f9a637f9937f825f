"""``python -m pynas.retrain RUN --top K``: retrain a run's best architectures over a grid."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch

from pynas.argtypes import UsageError, float_list, positive_int, run_main, size_limit
from pynas.retrain.grid import make_grid
from pynas.retrain.report import to_markdown
from pynas.retrain.runner import Retrain
from pynas.retrain.store import SUMMARY_MD, RetrainDir
from pynas.runs import Ranked, RunData, RunError, open_run
from pynas.tasks.base import Retraining, RetrainOverrides, Task
from pynas.tasks.data import DataError
from pynas.tasks.device import DEVICES_HELP, add_device_argument
from pynas.tasks.registry import TASKS, tasks_with

# the grid axes (SPEC §6; each task's defaults are small enough for a laptop: a 2x2 grid)
OPTION = {"lr": "--lr", "weight_decay": "--weight-decay", "bn_eps": "--bn-eps",
          "bn_momentum": "--bn-momentum"}  # fmt: skip
RETRAINABLE = [t for t in TASKS.values() if t.retrain_grid]

EPILOG = """\
By default an architecture is trained exactly like a child of the run (its budget's settings:
hidden size, epochs, training tokens/images) with a 2x2 grid, chosen on the whole validation
split and reported on the whole test split. A paper-like PTB retrain (SPEC §6; hours to days
on a laptop) trains much longer on all the data, e.g.:

  python -m pynas.retrain RUN --top 10 --epochs 40 --train-limit all --hidden 650 \\
      --dropout 0.5 --lr 20,10,5 --weight-decay 0,1e-6,1e-5

Results: RUN/retrain/summary.md and summary.json; models in RUN/retrain/models/ (load with
pynas.load_model). Run the same command again to continue a retrain that stopped.
"""


def _defaults(axis: str) -> str:
    """Each task's default values of a grid axis, for --help."""
    having = [t for t in RETRAINABLE if axis in t.retrain_grid]
    values = {t.name: ",".join(f"{v:g}" for v in t.retrain_grid[axis]) for t in having}
    if len(having) == 1:
        return next(iter(values.values()))
    return "; ".join(f"{name}: {text}" for name, text in values.items())


def _only(option: str) -> str:
    names = tasks_with(option)
    return f"{' and '.join(names)} only" if len(names) < len(RETRAINABLE) else ""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pynas.retrain",
        description="Retrain the K best architectures of a search run from scratch over a grid "
        "of training settings, choose each one's by validation and report the test split.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run directory of a search (python -m pynas.search)")
    p.add_argument("--top", type=positive_int, default=3, help="how many architectures (3)")
    grid = p.add_argument_group("grid (comma-separated values; every combination is trained)")
    for axis, option in OPTION.items():
        strict = axis != "weight_decay"  # a weight decay may be 0
        only = _only(axis)
        grid.add_argument(
            option, type=float_list(0, strict=strict),
            help=f"{only + ': ' if only else ''}{_defaults(axis)}",
        )  # fmt: skip
    train = p.add_argument_group("training (default: the run's child settings)")
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--hidden", type=positive_int, help=f"{_only('hidden')}: hidden size")
    train.add_argument("--dropout", type=float, help=_only("dropout"))
    train.add_argument(
        "--params-budget",
        type=positive_int,
        metavar="N",
        help=f"{_only('params_budget')}: each model's hidden size is the largest that fits N "
        "parameters (cells, LSTM and GRU alike: comparable models); instead of --hidden",
    )
    baselines = sorted({b for t in RETRAINABLE for b in t.baselines})
    train.add_argument(
        "--arch",
        action="append",
        choices=baselines,
        help=f"also train this baseline ({', '.join(baselines)}; {_only('params_budget')}; "
        "repeat for several) with the same settings and grid, as a row of the table",
    )
    train.add_argument(
        "--train-limit",
        type=size_limit,
        default=argparse.SUPPRESS,
        metavar="N|all",
        help="train on the first N tokens (ptb) / images (cifar10)",
    )
    train.add_argument(
        "--valid-limit", type=size_limit, default=None, metavar="N|all",
        help="validate on the first N tokens/images (default: all)",
    )  # fmt: skip
    train.add_argument(
        "--test-limit", type=size_limit, default=None, metavar="N|all",
        help="test on the first N tokens/images (default: all; smaller only for quick checks)",
    )  # fmt: skip
    train.add_argument("--seed", type=int, default=0, help="seed of every training (0)")
    p.add_argument("--data-dir", help="the task's data (default: the run's, else $PYNAS_DATA)")
    p.add_argument("--out", help="output directory (default: RUN/retrain)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (1)")
    add_device_argument(p, f"where to train: {DEVICES_HELP} (default: the run's)", default=None)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--repair-log",
        action="store_true",
        help="move damaged lines of the output's results.jsonl to results.jsonl.damaged and "
        "train their grid points again",
    )
    return p


def _not_for(option: str, task: Task, why: str = "") -> UsageError:
    names = " and ".join(tasks_with(option.lstrip("-").replace("-", "_")))
    return UsageError(f"{option} applies to {names} runs{why}; this is a {task.name} run")


def _grid(args: argparse.Namespace, task: Task) -> list[dict[str, float]]:
    axes = dict(task.retrain_grid)
    for axis, option in OPTION.items():
        values = getattr(args, axis)
        if values is None:
            continue
        if axis not in axes:
            raise _not_for(option, task, " (batch norm)" if axis.startswith("bn_") else "")
        axes[axis] = values
    return make_grid(axes)


def _overrides(args: argparse.Namespace, task: Task) -> RetrainOverrides:
    for name in ("hidden", "dropout", "params_budget"):
        if getattr(args, name) is not None and name not in task.retrain_options:
            raise _not_for(f"--{name.replace('_', '-')}", task)
    if args.hidden is not None and args.params_budget is not None:
        raise UsageError("--hidden and --params-budget both set the hidden size; give one")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    return RetrainOverrides(
        seed=args.seed, epochs=args.epochs, device=args.device,
        train_limit=getattr(args, "train_limit", None),
        change_train_limit=hasattr(args, "train_limit"), valid_limit=args.valid_limit,
        hidden=args.hidden, dropout=args.dropout, params_budget=args.params_budget,
    )  # fmt: skip


def check_task(name: Any, run: str) -> Task:
    if name not in TASKS or not TASKS[name].retrain_grid:
        supported = " and ".join(t.name for t in RETRAINABLE)
        raise UsageError(f"retrain supports {supported} runs; {run} is a {name!r} run")
    return TASKS[name]


def make_retraining(run: RunData, args: argparse.Namespace) -> Retraining:
    task = check_task(run.task, args.run)
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else run.meta.get("data_dir")
    overrides = _overrides(args, task)
    try:
        child = task.child_settings(run.child)
        retraining = task.retraining(child, overrides, data_dir, test_limit=args.test_limit)
        retraining.child_device()  # DeviceError (a ValueError) if this machine lacks the device
        return retraining
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cannot retrain with these settings: {exc}") from None


def main_body(args: argparse.Namespace) -> int:
    run = open_run(args.run)
    ranked = run.ranked()
    if not run.records:
        raise UsageError(f"{run.path} has no finished children yet; nothing to retrain")
    if not ranked:
        raise UsageError(
            f"all {len(run.records)} children of {run.path} failed; nothing to retrain"
        )
    torch.set_num_threads(args.threads)
    grid = _grid(args, check_task(run.task, args.run))
    wrong = [k for k in args.arch or () if k not in TASKS[run.task].baselines]
    if wrong:
        raise UsageError(
            f"--arch {wrong[0]} is a baseline of {' and '.join(tasks_with('params_budget'))} "
            f"runs; {args.run} is a {run.task} run"
        )
    task = make_retraining(run, args)  # loads the data: DataError -> exit 2
    entries = ranked[: args.top]
    say = (lambda _: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if len(entries) < args.top:
        say(f"note: {run.path} has only {len(entries)} distinct successful architectures")
    entries += [Ranked.baseline(kind) for kind in dict.fromkeys(args.arch or ())]
    baselines = "".join(f" and the {e.arch} baseline" for e in entries if e.rank is None)
    out = RetrainDir(args.out or run.path / "retrain")
    # results depend on the architecture, the grid point and these settings only, so a moved
    # run directory (or another run with the same settings and --out) continues the same results
    resumed = out.open({"task": task.name, "settings": task.settings})
    try:
        retrain = Retrain(task, out, entries, grid, say)
        done = retrain.restore(args.repair_log)
        say(
            f"{'resuming' if resumed else 'starting'} retrain of {run.path}: top "
            f"{sum(e.rank is not None for e in entries)}{baselines}, {len(grid)} grid points "
            f"each, {done} points already done; output {out.path}"
        )
        try:
            retrain.run()
        except KeyboardInterrupt:
            print("\ninterrupted; run the same command again to continue", file=sys.stderr)
            return 130
        summary = retrain.summary()
        summary["run"] = str(run.path)
        markdown = to_markdown(summary, str(run.path))
        out.write_summary(summary, markdown)
    finally:
        out.close()
    print(markdown.split("\n## Grid")[0].rstrip())
    print(f"\nfull table: {out.path / SUMMARY_MD}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run_main(build_parser(), main_body, argv, usage_errors=(RunError, DataError))
