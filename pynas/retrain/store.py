"""The retrain directory (default ``RUN/retrain/``): settings, results log, models, summary.

* ``config.json``: the training settings every result depends on (grid axes excepted); a
  retrain with other settings is refused rather than mixed in.
* ``results.jsonl``: one line per finished grid point (``"kind": "train"``) and per test
  evaluation of a chosen model (``"kind": "test"``), appended with one fsynced write, so a
  killed retrain continues where it stopped (a torn last line is dropped and redone). A damaged
  line before the last stops the retrain with a message; ``--repair-log`` moves such lines to
  ``results.jsonl.damaged`` and their grid points are trained again.
* ``models/<arch id>-<point>.pt``: the best model so far of each architecture, saved with
  :func:`pynas.save_model` (load it with :func:`pynas.load_model`).
* ``summary.md`` and ``summary.json``: the final table.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from pynas.argtypes import UsageError
from pynas.io import (
    DamagedFileError,
    DirectoryInUse,
    DirLock,
    JsonlFile,
    decode,
    encode,
    read_json,
    write_atomic,
    write_json,
)

CONFIG = "config.json"
RESULTS = "results.jsonl"
MODELS = "models"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
LOCK = ".lock"
FORMAT = 1


def arch_id(arch_json: str) -> str:
    """A short stable name for an architecture: 10 hex digits of its canonical JSON's SHA-1."""
    return hashlib.sha1(arch_json.encode()).hexdigest()[:10]


class RetrainDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.log = JsonlFile(self.path / RESULTS)
        self.models = self.path / MODELS
        self._dir_lock = DirLock(self.path, LOCK)

    def open(self, config: dict[str, Any]) -> bool:
        """Create or reopen the directory for `config`; True if it resumes earlier work."""
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"retrain output {self.path} exists and is not a directory")
        self.models.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            return self._check_config(config)
        except BaseException:
            self.close()
            raise

    def _check_config(self, config: dict[str, Any]) -> bool:
        config = {"format": FORMAT, **config}
        path = self.path / CONFIG
        if path.is_file():
            try:
                old = read_json(path)
            except DamagedFileError as exc:
                raise UsageError(
                    f"{exc}; it records the settings of the retrain in {self.path}: restore it, "
                    "or pass --out DIR for a new retrain"
                ) from None
            if not isinstance(old, dict):
                raise UsageError(f"{path} is damaged (not a JSON object); restore it, or pass "
                                 "--out DIR for a new retrain")  # fmt: skip
            if old != decode(encode(config)):
                raise UsageError(_mismatch(path, old, config))
            return True
        write_json(path, config)
        return False

    def _lock(self) -> None:
        try:
            self._dir_lock.acquire()
        except DirectoryInUse:
            raise UsageError(
                f"another retrain is using {self.path}; wait for it to finish or stop it"
            ) from None

    def close(self) -> None:
        self._dir_lock.release()

    def model_path(self, aid: str, slug: str) -> Path:
        return self.models / f"{aid}-{slug}.pt"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    def write_summary(self, summary: dict[str, Any], markdown: str) -> None:
        write_json(self.path / SUMMARY_JSON, summary)
        write_atomic(self.path / SUMMARY_MD, markdown)


def _mismatch(path: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    diffs = []
    for key in keys:
        if key == "settings" and isinstance(old.get(key), dict):
            inner = sorted(set(old[key]) | set(new.get(key) or {}))
            diffs += [
                f"{k}: {old[key].get(k)!r} -> {(new.get(key) or {}).get(k)!r}"
                for k in inner
                if old[key].get(k) != (new.get(key) or {}).get(k)
            ]
        elif old.get(key) != new.get(key):
            diffs.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return (
        f"{path.parent} holds a retrain with other training settings ({'; '.join(diffs)}); "
        "repeat the earlier options to continue it, or pass --out DIR for a separate retrain"
    )
