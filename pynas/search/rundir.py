"""The run directory: settings, child log, checkpoint and summary of one search.

* ``run.json``: the settings; ``summary.json``: the result (both :mod:`pynas.jsonio` JSON).
* ``children.jsonl``: one record per finished child (:class:`pynas.jsonio.JsonlFile`).
* ``checkpoint.pt`` and ``checkpoint.prev.pt``: the latest checkpoint and the one before it.
  Each new checkpoint replaces the latest atomically after the latest became the previous one
  (a hard link, also atomic), and the first checkpoint of a run is written twice, so there is
  always a previous one. A latest checkpoint that cannot be loaded is moved to
  ``checkpoint.pt.damaged`` and the search continues from the previous one (the search loops
  explain why that is consistent with the log).
* ``children.jsonl.damaged``: lines of the log that were damaged (not torn by a kill) and
  were moved there by ``--resume RUN --repair-log``, with their line numbers and exact bytes
  (see :meth:`RunDir.reconcile_log`).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pynas.jsonio import DamagedFileError, DamagedLine, JsonlFile, JsonlRead, read_json, write_json
from pynas.search.checkpoint import load, save_atomic

META = "run.json"
CHILDREN = "children.jsonl"
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_PREV = "checkpoint.prev.pt"
SUMMARY = "summary.json"
LOCK = ".lock"
# what resuming needs from run.json (a run written by `python -m pynas.search`)
META_KEYS = ("format", "task", "budget_settings", "strategy", "seed")
DAMAGED_STATUS = "damaged"  # status of a placeholder record for a damaged log line

Say = Callable[[str], None]


class RunDirError(Exception):
    """The run directory cannot be used as asked; the message says why and what to do."""


class RunDir:
    def __init__(self, path: str | os.PathLike[str], repair_log: bool = False) -> None:
        self.path = Path(path)
        self.meta_path = self.path / META
        self.checkpoint_path = self.path / CHECKPOINT
        self.prev_checkpoint_path = self.path / CHECKPOINT_PREV
        self.summary_path = self.path / SUMMARY
        self.log = JsonlFile(self.path / CHILDREN)
        # move damaged lines of children.jsonl aside instead of refusing to resume
        self.repair_log = repair_log
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
        write_json(run.meta_path, meta)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str], repair_log: bool = False) -> RunDir:
        """An existing run, for --resume."""
        run = cls(path, repair_log)
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
        """The run's settings; RunDirError if run.json is damaged."""
        fix = (
            "it holds the settings the search was started with (task, budget, strategy, seed, "
            "data directory); restore it from a backup, then resume again"
        )
        try:
            meta = read_json(self.meta_path)
        except DamagedFileError as exc:
            raise RunDirError(f"cannot resume: {exc}; {fix}") from None
        if not isinstance(meta, dict):
            raise RunDirError(
                f"cannot resume: {self.meta_path} is damaged (not a JSON object); {fix}"
            )
        missing = [k for k in META_KEYS if k not in meta]
        if meta.get("strategy") == "reinforce" and "preset" not in meta:
            missing.append("preset")
        if missing:
            raise RunDirError(
                f"cannot resume: {self.meta_path} is damaged or not a search's settings "
                f"(no {', '.join(missing)}); {fix}"
            )
        return meta

    # ----- checkpoint -------------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        first = not self.checkpoint_path.exists() and not self.prev_checkpoint_path.exists()
        save_atomic(state, self.checkpoint_path, keep_previous=self.prev_checkpoint_path)
        if first:  # so that there is always a previous checkpoint to fall back to
            save_atomic(state, self.checkpoint_path, keep_previous=self.prev_checkpoint_path)

    def load_checkpoint(self, say: Say | None = None) -> dict[str, Any] | None:
        """The latest checkpoint; the previous one (said with `say`) if the latest is damaged.

        None if the run has no checkpoint yet. A damaged latest checkpoint is moved to
        ``checkpoint.pt.damaged``; RunDirError if no checkpoint can be loaded.
        """
        latest, prev = self.checkpoint_path, self.prev_checkpoint_path
        if not latest.exists() and not prev.exists():
            return None
        problem = "is missing"
        if latest.exists():
            try:
                return _load_checkpoint(latest)
            except ValueError as exc:
                problem = f"cannot be read ({exc})"
        try:
            state = _load_checkpoint(prev) if prev.exists() else None
        except ValueError as exc:
            state, prev_problem = None, f"{prev.name} cannot be read either ({exc})"
        else:
            prev_problem = f"there is no {prev.name}"
        if state is None:
            raise RunDirError(
                f"cannot resume: {latest} {problem} and {prev_problem}, so the controller's "
                f"state is lost. The finished children in {CHILDREN} are intact: "
                f"`python -m pynas.show {self.path}` and `python -m pynas.retrain {self.path}` "
                "still work; start a new search with another --run-dir to search further"
            )
        moved = ""
        if latest.exists():
            aside = latest.with_name(latest.name + ".damaged")
            os.replace(latest, aside)
            moved = f" (moved to {aside.name})"
        if say is not None:
            say(f"{latest.name} {problem}{moved}; continuing from the previous checkpoint, "
                f"{prev.name}")  # fmt: skip
        return state

    # ----- the log ----------------------------------------------------------------------------
    def read_log(self) -> JsonlRead:
        """children.jsonl for resuming, unchanged; finish with :meth:`reconcile_log`."""
        return self.log.read(repair=False, allow_damaged=True)

    def reconcile_log(self, read: JsonlRead, missing: list[int], say: Say) -> list[dict[str, Any]]:
        """Repair children.jsonl given the `missing` children: learned from, but not in the log.

        A kill can only tear the last line, and only of a child not learned from yet: such a
        line is cut off (and said), and its child is trained again. Anything else is damage: a
        bad line before the last, or a torn last line while learned-from children are missing
        (it may be one of them). Without ``repair_log`` damage raises RunDirError saying how to
        continue; with it the damaged lines are moved, with their line numbers and exact bytes,
        to ``children.jsonl.damaged``, and each missing child gets a placeholder record (status
        ``damaged``, no reward) so the log still accounts for every child. Returns the
        placeholders (already in the log).
        """
        damaged = list(read.damaged)
        if read.torn is not None and missing:
            damaged.append(read.torn)
        elif read.torn is not None:
            self.log.cut_torn(read)
            say(
                f"{CHILDREN}: dropped a torn last line ({read.torn_bytes} bytes) left by an "
                "interrupted write; that child will be trained again"
            )
        if not damaged:
            return []  # missing children without damage: the caller's consistency check says so
        numbers = ", ".join(str(d.number) for d in damaged)
        if len(missing) > len(damaged):
            raise RunDirError(
                f"cannot resume: {self.log.path} lacks the records of children "
                f"{missing[:5]} and only {len(damaged)} damaged line(s) ({numbers}) could "
                "have held them; the log does not belong to this checkpoint"
            )
        if not self.repair_log:
            first = damaged[0]
            raise RunDirError(
                f"cannot resume: {self.log.path} is damaged: line(s) {numbers} are not JSON "
                f"records (line {first.number}: {first.preview()}); a kill can only tear the "
                "last line of a child not yet learned from. Resume with "
                f"--resume {self.path} --repair-log to move them to "
                f"{self.log.damaged_path.name} and continue: a child of the unfinished batch "
                "is trained again; a child the strategy already learned from is kept as a "
                "record with status 'damaged'"
            )
        placeholders = _placeholders(missing, damaged, self.log.damaged_path.name)
        aside = self.log.set_aside(damaged, placeholders)
        kept = (
            f"; children {[p['index'] for p in placeholders]} had been learned from and are "
            f"kept as records with status '{DAMAGED_STATUS}'"
            if placeholders
            else ""
        )
        say(f"{CHILDREN}: moved {len(damaged)} damaged line(s) ({numbers}) to {aside.name}"
            f"{kept}")  # fmt: skip
        return placeholders

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = load(path)
    except Exception as exc:  # torch.load of damaged bytes raises many kinds (zip, pickle, EOF)
        raise ValueError(f"{type(exc).__name__}: {str(exc).strip()[:200]}") from None
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a checkpoint")
    return state


_INDEX = re.compile(rb'^\s*\{\s*"index"\s*:\s*(\d+)\s*,')


def _placeholders(
    missing: list[int], damaged: list[DamagedLine], aside: str
) -> list[dict[str, Any]]:
    """Records for the `missing` children, each naming the damaged line(s) it may come from."""
    found: dict[int, DamagedLine] = {}
    for line in damaged:  # a garbled line often still starts with its index
        match = _INDEX.match(line.data)
        if match and int(match.group(1)) in missing and int(match.group(1)) not in found:
            found[int(match.group(1))] = line
    unknown = [d.number for d in damaged if d not in found.values()]
    out = []
    for index in sorted(missing):
        if index in found:
            where = f"line {found[index].number}"
        else:
            where = f"one of lines {', '.join(map(str, unknown))}"
        out.append(
            {
                "index": index, "arch": None, "reward": None, "ppl": None, "params": None,
                "seconds": None, "status": DAMAGED_STATUS,
                "reason": f"its record in {CHILDREN} was damaged ({where}; the bytes are in "
                f"{aside}); the strategy had already learned from it",
            }
        )  # fmt: skip
    return out
