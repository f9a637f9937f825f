"""The run journal: the run directory of one search, used by every search loop.

* ``run.json``: the settings (:class:`~pynas.search.settings.RunSettings`); ``summary.json``:
  the result (both :mod:`pynas.io` JSON).
* ``children.jsonl``: one record per finished child (:class:`pynas.io.JsonlFile`; the record
  format is :func:`pynas.search.records.child_record`).
* ``checkpoint.pt`` and ``checkpoint.prev.pt``: the latest checkpoint and the one before it.
  Each new checkpoint replaces the latest atomically after the latest became the previous one
  (a hard link, also atomic), and the first checkpoint of a run is written twice, so there is
  always a previous one. A latest checkpoint that cannot be loaded is moved to
  ``checkpoint.pt.damaged`` and the search continues from the previous one (the search loops
  explain why that is consistent with the log). A checkpoint holds ``format``, the strategy's
  own state (``strategy``), the seconds of search so far (``elapsed``) and the loop's state.
* ``children.jsonl.damaged``: lines of the log that were damaged (not torn by a kill) and
  were moved there by ``--resume RUN --repair-log``, with their line numbers and exact bytes
  (see :meth:`RunJournal.reconcile`).
* ``ranking.json``: a weight-sharing search's leaderboard (:mod:`pynas.search.shared_loop`),
  written atomically at its end; ``pynas.show`` and ``pynas.retrain`` rank by it when present.
* ``.lock``: held by the process that runs the search.

Restoring is the same for every loop: the loop names the batches that were in flight when its
checkpoint was written (:class:`Batch`) and the first child index never handed out; the journal
repairs the log (:meth:`RunJournal.reconcile`) and checks that it belongs to the checkpoint
(:meth:`RunJournal.check`): every child before that index is logged exactly once, except the
children of the open batches, which may be logged (with their architectures) or not.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pynas.io import (
    DamagedFileError,
    DamagedLine,
    DirectoryInUse,
    DirLock,
    JsonlFile,
    JsonlRead,
    load_torch,
    read_json,
    save_torch,
    write_json,
)
from pynas.search.records import DAMAGED_STATUS, damaged_record
from pynas.search.settings import META_FORMAT, RunSettings

META = "run.json"
CHILDREN = "children.jsonl"
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_PREV = "checkpoint.prev.pt"
SUMMARY = "summary.json"
RANKING = "ranking.json"
LOCK = ".lock"
CHECKPOINT_FORMAT = 1

Say = Callable[[str], None]

__all__ = ["CHECKPOINT_FORMAT", "DAMAGED_STATUS", "Batch", "RunDirError", "RunJournal"]


class RunDirError(Exception):
    """The run directory cannot be used as asked; the message says why and what to do."""


@dataclass
class Batch:
    """A batch in flight: children ``start .. start+n-1``, the canonical JSON of their
    architectures (None while a Ray replica has not sampled them yet), and, on Ray, its id and
    how many workers died on each of its children (their retries survive a resume)."""

    start: int
    n: int
    archs: list[str] | None = None
    id: int | None = None
    deaths: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, start: int, archs: Sequence[str], id: int | None = None) -> Batch:
        return cls(start, len(archs), list(archs), id)

    def indices(self) -> range:
        return range(self.start, self.start + self.n)

    def arch(self, index: int) -> Any:
        """The architecture of child `index` as its record holds it (parsed JSON)."""
        assert self.archs is not None
        return json.loads(self.archs[index - self.start])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "start": self.start, "n": self.n, "archs": self.archs,
                "deaths": dict(self.deaths)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Batch:
        """A saved batch; also the local loop's ``{"start", "archs"}`` of earlier versions."""
        archs = None if data.get("archs") is None else list(data["archs"])
        n = data["n"] if data.get("n") is not None else len(archs or ())
        deaths = {int(i): int(d) for i, d in (data.get("deaths") or {}).items()}
        return cls(data["start"], n, archs, data.get("id"), deaths)


class RunJournal:
    def __init__(self, path: str | os.PathLike[str], repair_log: bool = False) -> None:
        self.path = Path(path)
        self.meta_path = self.path / META
        self.checkpoint_path = self.path / CHECKPOINT
        self.prev_checkpoint_path = self.path / CHECKPOINT_PREV
        self.summary_path = self.path / SUMMARY
        self.ranking_path = self.path / RANKING
        self.log = JsonlFile(self.path / CHILDREN)
        # move damaged lines of children.jsonl aside instead of refusing to resume
        self.repair_log = repair_log
        self._lock = DirLock(self.path, LOCK)

    @classmethod
    def create(cls, path: str | os.PathLike[str], settings: RunSettings | dict[str, Any]
               ) -> RunJournal:  # fmt: skip
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
        meta = settings.to_dict() if isinstance(settings, RunSettings) else settings
        write_json(run.meta_path, meta)
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str], repair_log: bool = False) -> RunJournal:
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
        try:
            self._lock.acquire()
        except DirectoryInUse:
            raise RunDirError(
                f"another search process is using {self.path}; wait for it to finish or stop it"
            ) from None

    def unlock(self) -> None:
        self._lock.release()

    # ----- settings ---------------------------------------------------------------------------
    def settings(self) -> RunSettings:
        """The run's settings; RunDirError if run.json is damaged or does not fit this pynas."""
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
        missing = RunSettings.missing(meta)
        if missing:
            raise RunDirError(
                f"cannot resume: {self.meta_path} is damaged or not a search's settings "
                f"(no {', '.join(missing)}); {fix}"
            )
        if meta.get("format") != META_FORMAT:
            raise RunDirError(f"{self.meta_path}: not a run of this pynas version")
        try:
            return RunSettings.from_dict(meta)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunDirError(  # a damaged run.json, or one of another pynas version
                f"cannot resume: {self.meta_path} holds settings this pynas cannot use ({exc}); "
                "restore it from a backup, or resume with the pynas version that started the run"
            ) from None

    # ----- checkpoint -------------------------------------------------------------------------
    def save_checkpoint(self, loop_state: dict[str, Any], strategy: dict[str, Any],
                        elapsed: float) -> None:  # fmt: skip
        """Replace the latest checkpoint: the loop's state, the strategy's, the seconds so far."""
        state = {"format": CHECKPOINT_FORMAT, **loop_state, "strategy": strategy,
                 "elapsed": elapsed}  # fmt: skip
        first = not self.checkpoint_path.exists() and not self.prev_checkpoint_path.exists()
        save_torch(state, self.checkpoint_path, keep_previous=self.prev_checkpoint_path)
        if first:  # so that there is always a previous checkpoint to fall back to
            save_torch(state, self.checkpoint_path, keep_previous=self.prev_checkpoint_path)

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

    def begin_restore(self, say: Say) -> tuple[dict[str, Any] | None, JsonlRead]:
        """(the checkpoint, children.jsonl as it is) for a loop's restore.

        Without a checkpoint the run has not started: a log without one is an inconsistent
        directory; a torn line is cut off. Finish with :meth:`reconcile` and :meth:`check`.
        """
        read = self.log.read(repair=False, allow_damaged=True)
        state = self.load_checkpoint(say)
        if state is None:
            if read.records or read.damaged:
                raise RunDirError(
                    f"{self.path}: children.jsonl has {len(read.records) + len(read.damaged)} "
                    "lines but there is no checkpoint; the run directory is inconsistent"
                )
            self.reconcile(read, 0, [], say)  # a torn line: cut off
        return state, read

    # ----- the log ----------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Log one finished child (one fsynced line)."""
        self.log.append(record)

    def reconcile(self, read: JsonlRead, next_index: int, batches: Sequence[Batch], say: Say
                  ) -> list[dict[str, Any]]:  # fmt: skip
        """The log's records after repairing it for a checkpoint whose first child never handed
        out is `next_index` and whose batches in flight are `batches`.

        The children before `next_index` outside those batches were learned from: a missing
        one was lost. A kill can only tear the last line, and only of a child not learned from
        yet: such a line is cut off (and said), and its child is trained again. Anything else
        is damage: a bad line before the last, or a torn last line while learned-from children
        are missing (it may be one of them). Without ``repair_log`` damage raises RunDirError
        saying how to continue; with it the damaged lines are moved, with their line numbers
        and exact bytes, to ``children.jsonl.damaged``, and each missing child gets a
        placeholder record (status ``damaged``, no reward) so the log still accounts for every
        child.
        """
        indices = {r.get("index") for r in read.records}
        missing = [
            i for i in range(next_index) if i not in indices and _batch_of(batches, i) is None
        ]
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
            return list(read.records)  # missing children without damage: check() says so
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
        return list(read.records) + placeholders

    def check(self, records: list[dict[str, Any]], next_index: int, batches: Sequence[Batch]
              ) -> list[dict[str, Any]]:  # fmt: skip
        """The records of a reconciled log: the learned-from children in child order, then
        those of the batches in flight in log order; RunDirError if the log cannot belong to
        the checkpoint (see :meth:`reconcile` for the arguments)."""
        where = f"{self.path}: children.jsonl does not match the checkpoint"
        seen: dict[int, dict[str, Any]] = {}
        for r in records:
            i = r.get("index")
            if not isinstance(i, int):
                raise RunDirError(f"{where} (a record without an integer index)")
            if i in seen or not 0 <= i < next_index:
                raise RunDirError(f"{where} (unexpected or repeated child index {i})")
            batch = _batch_of(batches, i)
            if batch is not None and (batch.archs is None or r.get("arch") != batch.arch(i)):
                raise RunDirError(f"{where} (child {i} has a different architecture)")
            seen[i] = r
        missing = [i for i in range(next_index) if i not in seen and _batch_of(batches, i) is None]
        if missing:
            raise RunDirError(f"{where} (children {missing[:5]} of told batches are missing)")
        told = sorted((r for r in records if _batch_of(batches, r["index"]) is None),
                      key=lambda r: r["index"])  # fmt: skip
        return told + [r for r in records if _batch_of(batches, r["index"]) is not None]

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)

    def write_ranking(self, ranking: dict[str, Any]) -> None:
        write_json(self.ranking_path, ranking)


def _batch_of(batches: Sequence[Batch], index: int) -> Batch | None:
    for batch in batches:
        if batch.start <= index < batch.start + batch.n:
            return batch
    return None


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = load_torch(path)
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
        reason = (f"its record in {CHILDREN} was damaged ({where}; the bytes are in {aside}); "
                  "the strategy had already learned from it")  # fmt: skip
        out.append(damaged_record(index, reason))
    return out
