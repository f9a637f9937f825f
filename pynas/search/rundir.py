"""The run directory: settings, child log, checkpoint and summary of one search."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from pynas.search.checkpoint import load, save_atomic
from pynas.search.childlog import ChildLog

META = "run.json"
CHILDREN = "children.jsonl"
CHECKPOINT = "checkpoint.pt"
SUMMARY = "summary.json"
LOCK = ".lock"


class RunDirError(Exception):
    """The run directory cannot be used as asked; the message says why and what to do."""


class RunDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta_path = self.path / META
        self.checkpoint_path = self.path / CHECKPOINT
        self.summary_path = self.path / SUMMARY
        self.log = ChildLog(self.path / CHILDREN)
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, path: str | os.PathLike[str], meta: dict[str, Any]) -> RunDir:
        """A fresh run in `path` (created if needed); refuses a non-empty directory."""
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} exists and is not a directory")
        if run.path.is_dir() and any(run.path.iterdir()):
            raise RunDirError(
                f"run directory {run.path} is not empty; continue that search with "
                f"--resume {run.path}, or choose a new --run-dir"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        tmp = run.path / f".{META}.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, run.meta_path)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """An existing run, for --resume."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"cannot resume: {run.path} does not exist or is not a directory")
        if not run.meta_path.is_file():
            raise RunDirError(
                f"cannot resume: {run.path} holds no search run (no {META}); "
                f"start a new search with --run-dir {run.path} --task ..."
            )
        return run

    def lock(self) -> None:
        """Take the run's exclusive lock (released by the OS when the process dies)."""
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"another search process is using {self.path}; wait for it to finish or stop it"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{self.meta_path} is not valid JSON ({exc})") from None

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save_atomic(state, self.checkpoint_path)

    def load_checkpoint(self) -> dict[str, Any] | None:
        return load(self.checkpoint_path) if self.checkpoint_path.exists() else None

    def write_summary(self, summary: dict[str, Any]) -> None:
        tmp = self.path / f".{SUMMARY}.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(tmp, self.summary_path)
