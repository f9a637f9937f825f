"""Command-line options for where children run, and the search object they select.

``--executor local`` (the default) trains children in the search process, or with
``--workers N`` in N local worker processes. ``--executor ray`` starts a local Ray instance, or
joins a cluster with ``--address HOST:PORT``; REINFORCE then runs as parameter servers
(``--servers S``) and controller replicas (``--replicas K``), other strategies run each child as
a Ray task. The settings are stored in ``run.json`` under ``execution``; on ``--resume`` only
``--workers`` and ``--address`` (where to run) may change.

``--device`` says where each child trains (``cpu``, ``cuda``, ``cuda:N``); it is a child setting,
stored with the budget's child settings in ``run.json`` (so ``--resume`` and ``pynas.retrain``
keep it). On Ray, ``--child-gpus G > 0`` makes children train on ``cuda``: Ray shows each task
only the GPUs it was given, so ``cuda`` is the child's own GPU.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from pynas.argtypes import UsageError, nonnegative_float, nonnegative_int, positive_int
from pynas.search.settings import EXECUTORS, ExecutionSettings
from pynas.tasks.base import Task
from pynas.tasks.device import DEVICES_HELP, add_device_argument

RAY_ONLY = ("address", "servers", "replicas", "child_cpus", "child_gpus")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("where children run (SPEC §6)")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="local (default): in this process or --workers N processes; ray: on Ray",
    )
    g.add_argument(
        "--workers", type=positive_int, metavar="N", help="local: train children in N processes"
    )
    g.add_argument(
        "--child-retries",
        type=nonnegative_int,
        metavar="K",
        help="re-runs of a child whose worker process died, then it is failed (default 2)",
    )
    g.add_argument(
        "--address",
        metavar="ADDR",
        help="ray: HOST:PORT of a running cluster; 'local' or none: start a local instance",
    )
    g.add_argument(
        "--servers", type=positive_int, metavar="S", help="ray: parameter-server shards S (2)"
    )
    g.add_argument(
        "--replicas", type=positive_int, metavar="K", help="ray: controller replicas K (2)"
    )
    g.add_argument(
        "--child-cpus", type=nonnegative_float, metavar="C", help="ray: CPUs per child task (1)"
    )
    g.add_argument(
        "--child-gpus",
        type=nonnegative_float,
        metavar="G",
        help="ray: GPUs per child task (0); G > 0 makes children train on cuda",
    )
    add_device_argument(
        g,
        f"where children train (ptb, cifar10): {DEVICES_HELP}; on Ray with --child-gpus G > 0: "
        "cuda",
        default=None,
    )
    g.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="M",
        help="override the budget's m (children per gradient)",
    )
    g.add_argument(
        "--grads-per-update",
        type=positive_int,
        metavar="G",
        help="override the budget's g (gradients per controller update)",
    )


def budget_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = {}
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if args.grads_per_update is not None:
        changes["grads_per_update"] = args.grads_per_update
    return changes


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return [_flag(n) for n in names if getattr(args, n, None) is not None]


def execution_settings(args: argparse.Namespace, strategy: str) -> ExecutionSettings:
    """Validated settings of a new run (raises UsageError on a bad combination)."""
    executor = args.executor or "local"
    given = {f.name: getattr(args, f.name) for f in fields(ExecutionSettings)}
    settings = ExecutionSettings(**{k: v for k, v in given.items() if v is not None})
    settings = settings.with_(executor=executor)
    if settings.address == "local":
        settings = settings.with_(address=None)
    if executor == "local":
        wrong = _given(args, RAY_ONLY)
        if wrong:
            raise UsageError(f"{', '.join(wrong)} apply to --executor ray only")
        if args.workers is None and args.child_retries is not None:
            raise UsageError(
                "--child-retries applies to worker processes: add --workers N or --executor ray"
            )
        return settings
    if args.workers is not None:
        raise UsageError(
            "--workers is for --executor local; on Ray the cluster's CPUs (and --child-cpus) "
            "decide how many children run at once"
        )
    if strategy != "reinforce":
        wrong = _given(args, ("servers", "replicas"))
        if wrong:
            raise UsageError(f"{', '.join(wrong)} apply to --strategy reinforce only")
    check_ray(settings)
    return settings


def check_new_run(settings: ExecutionSettings, strategy: Any) -> None:
    """Checks that need the search space: S shards for the controller's parameter tensors."""
    from pynas.strategies import Reinforce

    if settings.on_ray and isinstance(strategy, Reinforce):
        from pynas.search.distributed.server import split_names

        sizes = {n: p.numel() for n, p in strategy.controller.named_parameters()}
        try:
            split_names(sizes, settings.servers)
        except ValueError as exc:
            raise UsageError(f"--servers: {exc}") from None


def check_ray(settings: ExecutionSettings) -> None:
    """Ray is installed and the cluster address (if any) answers; else UsageError."""
    from pynas.executors.ray_runtime import check_address, import_ray

    import_ray()
    if settings.address:
        check_address(settings.address)


def resumed_execution(settings: ExecutionSettings, args: argparse.Namespace) -> ExecutionSettings:
    """The run's settings with what may change on --resume (--workers, --address)."""
    if args.executor is not None and args.executor != settings.executor:
        raise UsageError(
            f"this run uses --executor {settings.executor}; resume it with that executor"
        )
    if not settings.on_ray:
        if args.address is not None:
            raise UsageError("--address applies to --executor ray only")
        if args.workers is not None:
            settings = settings.with_(workers=args.workers)
        return settings
    if args.workers is not None:
        raise UsageError("--workers is for --executor local; this run uses Ray")
    if args.address is not None:
        settings = settings.with_(address=None if args.address == "local" else args.address)
    check_ray(settings)
    return settings


def resume_conflicts(args: argparse.Namespace) -> list[str]:
    """Options of this group that a resumed run takes from run.json (so may not be given)."""
    fixed = ("child_retries", "servers", "replicas", "child_cpus", "child_gpus", "batch_size",
             "grads_per_update", "device")  # fmt: skip
    return _given(args, fixed)


def child_device(args: argparse.Namespace, settings: ExecutionSettings) -> str:
    """The device of a new run's children, from --device and the execution `settings`."""
    gpus = settings.child_gpus if settings.on_ray else 0.0
    device = args.device
    if gpus > 0:
        if device is None:
            return "cuda"
        if device != "cuda":
            raise UsageError(
                f"--child-gpus {gpus:g} gives each child its own GPU, which Ray shows to the child "
                f"as cuda; --device {device} does not fit: drop --device (or use --device cuda)"
            )
        return device
    if device is not None and device != "cpu" and settings.on_ray:
        raise UsageError(
            f"--device {device}: on Ray a child sees a GPU only if it asks for one; add "
            "--child-gpus G (e.g. --child-gpus 1) instead of --device"
        )
    return device or "cpu"


def check_child_device(
    settings: ExecutionSettings, args: argparse.Namespace, task: Task, child: Any
) -> None:
    """UsageError now, before any child trains, if the children's device cannot work here.

    Checked where children run on this machine (locally, or a local Ray instance); the nodes
    of a Ray cluster are not visible from here, so there a child checks its device itself (a
    failed child with the reason if its node cannot provide it).
    """
    device = task.device_of(child)
    address = settings.address
    if args.address is not None:  # --resume may move a run to another cluster
        address = None if args.address == "local" else args.address
    if device == "cpu" or (settings.on_ray and address):
        return
    from pynas.tasks.device import DeviceError

    try:
        task.check_device(child)
    except DeviceError as exc:
        if getattr(args, "resume", None):  # the device is the run's; --device may not change it
            raise UsageError(
                f"this run's children train on {device!r} (its run.json), and here: "
                f"{exc.problem}; resume it on a machine that has that device"
            ) from None
        raise UsageError(str(exc)) from None
