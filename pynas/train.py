"""Train one architecture: ``python -m pynas.train --task ptb --arch nas_cell --epochs 1``.

The options after ``--task`` are the task's own (``--task TASK --help`` lists them). Bad input
(values, a malformed architecture, missing or malformed data, an unusable device) exits with
code 2 and a message; a child that fails exits with 1.
"""

from __future__ import annotations

import argparse
import sys

from pynas.arch import ArchitectureError
from pynas.argtypes import run_main
from pynas.tasks.base import Task
from pynas.tasks.data import DataError
from pynas.tasks.device import DeviceError
from pynas.tasks.registry import TASKS

TRAINABLE = [name for name, task in TASKS.items() if task.trainable]


def build_parser(task: Task | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pynas.train",
        description="Train and score one architecture (one child) and print its reward; the "
        "options after --task are that task's (--task TASK --help).",
    )
    p.add_argument("--task", required=True, choices=TRAINABLE, help="benchmark task")
    if task is not None:
        task.add_train_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task")
    name = pre.parse_known_args(argv)[0].task
    parser = build_parser(TASKS[name] if name in TRAINABLE else None)
    return run_main(
        parser,
        lambda args: TASKS[args.task].train_command(args),
        argv,
        usage_errors=(ArchitectureError, DataError, DeviceError),
    )


if __name__ == "__main__":
    sys.exit(main())
