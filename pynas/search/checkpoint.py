"""Checkpoints: torch.save'd state, replaced atomically, the previous one kept beside it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from pynas.jsonio import write_atomic


def save_atomic(obj: Any, path: Path, keep_previous: Path | None = None) -> None:
    """Save `obj` so that `path` always holds either the old or the new one.

    With `keep_previous`, the old one is kept at that path (see :func:`pynas.jsonio.write_atomic`).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue(), keep_previous=keep_previous)


def load(path: Path) -> Any:
    # weights_only=False: the checkpoint holds Python RNG states and plain records we wrote.
    return torch.load(Path(path), map_location="cpu", weights_only=False)
