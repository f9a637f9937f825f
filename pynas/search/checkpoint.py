"""Atomic checkpoints: write a temporary file, fsync it, ``os.replace`` it into place."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: Path) -> None:
    """Save `obj` with torch.save so that `path` always holds either the old or the new one."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: Path) -> Any:
    # weights_only=False: the checkpoint holds Python RNG states and plain records we wrote.
    return torch.load(Path(path), map_location="cpu", weights_only=False)
