"""Where a child trains: a device name (``cpu``, ``cuda``, ``cuda:N``), checked before use.

A child's settings carry the device as a string (it is stored in run.json); :func:`check_device`
turns it into a ``torch.device`` after making sure it can work here: a CUDA build of torch, a
visible GPU with that index, and CUDA kernels for the compiled ops the child will call (pynas
compiles them only where a CUDA compiler was found at build time). Every refusal is a
:class:`DeviceError` whose message says what is missing and what to do instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import torch

DEVICES_HELP = "cpu (default), cuda (the current GPU) or cuda:N (GPU number N)"
_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


class DeviceError(ValueError):
    """A device name that is malformed or not usable here: `problem`, then what to do."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem}: {fix}" if fix else problem)
        self.problem = problem


def parse_device(text: str) -> str:
    """The device name `text` if it is ``cpu``, ``cuda`` or ``cuda:N``; DeviceError otherwise."""
    match = _DEVICE.match(text) if isinstance(text, str) else None
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise DeviceError(f"device must be {DEVICES_HELP}; got {text!r}")
    return text


def cuda_kernel_missing(ops: Sequence[str]) -> list[str]:
    """Those of the compiled ops `ops` (names in the ``pynas`` namespace) without a CUDA kernel.

    Uses the dispatcher's registry (a private torch function; if a torch lacks it, nothing is
    reported and a missing kernel shows up as the op's own error when the child runs).
    """
    has_kernel = getattr(torch._C, "_dispatch_has_kernel_for_dispatch_key", None)
    if has_kernel is None:
        return []
    return [op for op in ops if not has_kernel(f"pynas::{op}", "CUDA")]


def check_device(device: str, ops: Sequence[str] = (), fallback: str = "") -> torch.device:
    """``torch.device(device)`` once it is usable here with the compiled ops `ops`.

    `fallback` names the pure-PyTorch alternative to those ops (e.g. ``--impl reference``) for
    the message when pynas was built without CUDA kernels.
    """
    name = parse_device(device)
    if name == "cpu":
        return torch.device("cpu")
    if torch.version.cuda is None:
        raise DeviceError(
            f"device {name!r} asked for, but this torch ({torch.__version__}) is a CPU-only "
            "build",
            "use --device cpu, or install a CUDA build of torch and reinstall pynas against it "
            "(README, 'Install notes')",
        )
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise DeviceError(
            f"device {name!r} asked for, but no CUDA GPU is visible{hint}",
            "use --device cpu, or run where a GPU and its driver are present",
        )
    index = torch.device(name).index
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        raise DeviceError(
            f"device {name!r} asked for, but only {count} CUDA GPU(s) are visible "
            f"(cuda:0..cuda:{count - 1})",
            "choose one of those",
        )
    missing = cuda_kernel_missing(ops)
    if missing:
        alternative = f", or {fallback} (pure PyTorch, runs on any device)" if fallback else ""
        raise DeviceError(
            f"device {name!r} asked for, but this pynas was built without CUDA kernels "
            f"({', '.join(f'pynas::{op}' for op in missing)} has none; nvcc was not found when "
            "it was built)",
            "reinstall pynas with the CUDA toolkit's nvcc on PATH (README, 'Install notes'), "
            f"use --device cpu{alternative}",
        )
    return torch.device(name)


def device_argument(text: str) -> str:
    """argparse type for ``--device``: a well-formed device name (usability is checked later)."""
    import argparse

    try:
        return parse_device(text)
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_argument(parser: Any, help: str, default: str | None = "cpu") -> None:
    """The ``--device`` option of every command that trains children."""
    parser.add_argument(
        "--device", type=device_argument, default=default, metavar="DEVICE", help=help
    )
