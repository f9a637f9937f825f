"""Finding a task's data on disk: an option, else the PYNAS_DATA environment variable."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

DATA_ENV = "PYNAS_DATA"


class DataError(Exception):
    """The data a task needs is missing, empty or malformed; the message says what and where."""


class FetchError(Exception):
    """A download or conversion that did not produce the data; the message says what to do."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None, task: str) -> Path:
    """The directory holding `task`'s files.

    `data_dir` wins; otherwise $PYNAS_DATA, which may point at the task's folder itself or at a
    parent that holds a `<task>/` folder (like the repository's shared/data).
    """
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_ENV)
    if not env:
        raise DataError(
            f"no data directory for task '{task}': pass --data-dir DIR or set {DATA_ENV}=DIR "
            f"(DIR holds the {task} files, or a '{task}/' folder with them)"
        )
    root = Path(env)
    return root / task if (root / task).is_dir() else root


def require_files(directory: Path, names: Sequence[str], task: str) -> list[Path]:
    """Paths of `names` in `directory`; a DataError naming every missing or empty file."""
    if not directory.is_dir():
        raise DataError(
            f"data directory for task '{task}' does not exist: {directory} "
            f"(expected it to hold {', '.join(names)}; set --data-dir or {DATA_ENV})"
        )
    paths = [directory / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"task '{task}' expects {', '.join(names)} in {directory}, "
            f"but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
        )
    empty = [p.name for p in paths if p.stat().st_size == 0]
    if empty:
        raise DataError(f"task '{task}': {', '.join(empty)} in {directory} is empty")
    return paths
