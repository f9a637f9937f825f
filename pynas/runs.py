"""Read a search's run directory for what comes after the search (retrain, show).

The leaderboard (:meth:`RunData.ranked`) of a standalone search ranks its children by reward. A
weight-sharing search (``"weights": "shared"`` in run.json) scored each architecture on a
different small validation slice; at its end it ranks the best of them again on one larger
slice and writes ``ranking.json``: when that file exists the leaderboard is its order (a
weight-sharing search interrupted before its end has none yet: the search scores rank).

Reading never changes the run: a torn last line of ``children.jsonl`` (a search killed, or still
writing) is skipped, not cut off, so this is safe while a search is running. A damaged
``run.json`` or a damaged line before the last of ``children.jsonl`` is a :class:`RunError`
that says what to do (``--resume RUN --repair-log`` for the log).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynas.io import DamagedFileError, DamagedLinesError, JsonlFile, finite_float, read_json
from pynas.search.journal import CHILDREN, META, RANKING
from pynas.search.records import DAMAGED_STATUS
from pynas.tasks.base import Metric
from pynas.tasks.registry import TASKS


class RunError(Exception):
    """RUN cannot be read as a search run; the message says why and what to pass instead."""


def arch_key(arch: Any) -> str:
    """The canonical JSON of a logged ``arch`` value (compact, the search's key order)."""
    return json.dumps(arch, separators=(",", ":"))


def render_arch(arch: Any) -> str:
    """The architecture in text: a cell's or network's render(), else its JSON."""
    from pynas.arch import ConvNet, RNNCell

    if isinstance(arch, str):  # a baseline, e.g. "lstm"
        return f"{arch} baseline (nn.{arch.upper()} layers on the same harness)"
    kind = arch.get("kind") if isinstance(arch, dict) else None
    if kind == "rnn_cell":
        return RNNCell.from_dict(arch).render()
    if kind == "conv_net":
        return ConvNet.from_dict(arch).render()
    return json.dumps(arch)


def record_metric(record: dict[str, Any], task: str) -> float | None:
    """The task's metric of a child record (e.g. ppl, accuracy), if it has one and it is finite."""
    return TASKS[task].metric_of(record) if task in TASKS else None


def task_metric(task: str) -> Metric | None:
    """The metric of the task called `task` (None: unknown task, or no metric besides reward)."""
    return TASKS[task].metric if task in TASKS else None


@dataclass
class Ranked:
    """One distinct architecture of a run: its best child and how often it was sampled; or a
    baseline retrained beside them (no rank, no child: :meth:`baseline`)."""

    rank: int | None
    record: dict[str, Any]  # the best-rewarded child with this architecture
    count: int

    @classmethod
    def baseline(cls, name: str) -> Ranked:
        """A baseline model of the task (e.g. ``"lstm"``), not found by the search."""
        return cls(None, {"index": None, "reward": None, "arch": name, "baseline": name}, 0)

    @property
    def arch(self) -> Any:
        return self.record["arch"]

    @property
    def label(self) -> str:
        """How messages name it: ``search child N`` or ``lstm baseline``."""
        if self.rank is None:
            return f"{self.arch} baseline"
        return f"search child {self.record['index']}"


@dataclass
class RunData:
    path: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]]  # in child order
    torn_bytes: int  # size of an incomplete last line that was skipped
    ranking: dict[str, Any] | None = None  # a weight-sharing search's ranking.json

    @property
    def shared(self) -> bool:
        """Whether the run is a weight-sharing search (its scores are shared-weight scores)."""
        return self.meta.get("weights") == "shared"

    @property
    def task(self) -> str:
        return str(self.meta.get("task", "?"))

    @property
    def child(self) -> dict[str, Any]:
        """The child settings of the run, in their run.json form (empty if not recorded)."""
        child = (self.meta.get("budget_settings") or {}).get("child")
        return dict(child) if isinstance(child, dict) else {}

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") == "ok"]

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Children that are not ok, including placeholders of damaged log lines."""
        return [r for r in self.records if r.get("status") != "ok"]

    @property
    def damaged(self) -> list[dict[str, Any]]:
        """Placeholders of children whose log line was damaged (``--repair-log``)."""
        return [r for r in self.records if r.get("status") == DAMAGED_STATUS]

    def ranked(self) -> list[Ranked]:
        """Distinct architectures of successful children, best reward first (ties: earliest);
        with a ranking.json, its successful entries in its order."""
        if self.ranking is not None:
            entries = [e for e in self.ranking["entries"] if e.get("status") == "ok"]
            return [Ranked(i + 1, e, int(e.get("sampled") or 1)) for i, e in enumerate(entries)]
        best: dict[str, dict[str, Any]] = {}
        count: dict[str, int] = {}
        scored = [r for r in self.ok if finite_float(r.get("reward")) is not None]
        for r in sorted(scored, key=lambda r: (-float(r["reward"]), r["index"])):
            key = arch_key(r["arch"])
            count[key] = count.get(key, 0) + 1
            best.setdefault(key, r)
        ordered = sorted(best.items(), key=lambda kv: (-float(kv[1]["reward"]), kv[1]["index"]))
        return [Ranked(i + 1, r, count[k]) for i, (k, r) in enumerate(ordered)]


def open_run(path: str | os.PathLike[str]) -> RunData:
    """The run in `path`: its settings and children; RunError if it is not a readable run."""
    run = Path(path)
    if not run.exists():
        raise RunError(f"run directory {run} does not exist")
    if not run.is_dir():
        raise RunError(f"{run} is not a directory; pass the run directory of a search")
    meta_path = run / META
    if not meta_path.is_file():
        raise RunError(
            f"{run} is not a search run (no {META}); pass the --run-dir of a "
            "`python -m pynas.search` run"
        )
    try:
        meta = read_json(meta_path)
    except DamagedFileError as exc:
        raise RunError(
            f"{exc}; it holds the run's settings (task, budget, strategy): restore it from a backup"
        ) from None
    if not isinstance(meta, dict):
        raise RunError(f"{meta_path} does not hold a run's settings (not a JSON object)")
    try:
        report = JsonlFile(run / CHILDREN).read(repair=False)
    except DamagedLinesError as exc:
        raise RunError(
            f"{exc}. Repair the log with `python -m pynas.search --resume {run} --repair-log` "
            "(it moves the damaged lines to children.jsonl.damaged and keeps a placeholder for "
            "each child that cannot be trained again), then run this command again"
        ) from None
    records = sorted(
        (r for r in report.records if isinstance(r.get("index"), int)), key=lambda r: r["index"]
    )
    return RunData(run, meta, records, report.torn_bytes, _read_ranking(run))


def _read_ranking(run: Path) -> dict[str, Any] | None:
    """A weight-sharing search's ranking.json, None if there is none; RunError if damaged."""
    path = run / RANKING
    if not path.is_file():
        return None
    fix = (
        f"it is written again by `python -m pynas.search --resume {run}` (which ranks the "
        "scored architectures again and trains nothing more if the search was complete), or "
        "delete it to rank by the search scores"
    )
    try:
        ranking = read_json(path)
    except DamagedFileError as exc:
        raise RunError(f"{exc}; {fix}") from None
    entries = ranking.get("entries") if isinstance(ranking, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and "arch" in e and "index" in e for e in entries
    ):
        raise RunError(f"{path} is damaged (not a ranking of architectures); {fix}")
    return ranking
