"""The search loop: ask a batch, train its children, log each one, tell, checkpoint.

Crash safety (a SIGKILL may land anywhere):

* Before any child of a batch is trained, the batch (canonical JSON of each architecture,
  with the child indices it will take) is saved in the checkpoint as ``pending``, together
  with the strategy state *after* the ask.
* Each finished child is one fsynced line of ``children.jsonl`` carrying its index.
* Only when all children of the batch are logged is the batch told to the strategy; then the
  checkpoint is replaced atomically with ``absorbed`` advanced past the batch and no pending.

On resume the log's lines with index below ``absorbed`` are already learned from; lines of the
pending batch are re-used as they are and only the missing children are trained. A kill before
the first checkpoint of a batch re-asks it from the restored strategy, which yields the same
architectures because its RNG state was saved.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynas.executors import Executor, InProcessExecutor
from pynas.search.budgets import Budget
from pynas.search.display import SearchDisplay
from pynas.search.policy import policy_stats
from pynas.search.rundir import RunDir, RunDirError
from pynas.search.tasks import SearchTask
from pynas.strategies.base import Strategy
from pynas.tasks.result import ChildResult

CHECKPOINT_FORMAT = 1
TOP_K = 10


@dataclass
class Pending:
    start: int  # index of the batch's first child
    archs: list[str]  # canonical JSON, one per child

    def indices(self) -> range:
        return range(self.start, self.start + len(self.archs))


class Search:
    def __init__(
        self,
        run: RunDir,
        task: SearchTask,
        strategy: Strategy,
        budget: Budget,
        executor: Executor | None = None,
        display: SearchDisplay | None = None,
        evaluate: Callable[[tuple[int, str]], tuple[int, str, ChildResult, float]] | None = None,
    ) -> None:
        self.run = run
        self.task = task
        self.strategy = strategy
        self.budget = budget
        self.executor = executor or InProcessExecutor()
        # a picklable evaluation for executors that train children in other processes
        # (pynas.executors.child.ChildEvaluator); the default evaluates self.task in-process
        self.evaluate = evaluate or self._evaluate
        self.display = display or SearchDisplay(budget.children, enabled=False)
        self.absorbed = 0
        self.pending: Pending | None = None
        self.elapsed_before = 0.0
        self.records: list[dict[str, Any]] = []
        self.session_start = time.monotonic()
        self.stopped_by_time = False
        # called with each child record right after it is logged (e.g. TensorBoard)
        self.on_record: list[Callable[[dict[str, Any]], None]] = []

    # ----- state ------------------------------------------------------------------------------
    def restore(self) -> None:
        """Load checkpoint and log, reconcile them, and report what was recovered."""
        report = self.run.log.read(repair=True)
        if report.dropped_bytes:
            self.display.message(
                f"children.jsonl: dropped a torn last line ({report.dropped_bytes} bytes) left "
                "by an interrupted write; that child will be trained again"
            )
        state = self.run.load_checkpoint()
        records = report.records
        if state is None:
            if records:
                raise RunDirError(
                    f"{self.run.path}: children.jsonl has {len(records)} children but there is "
                    "no checkpoint; the run directory is inconsistent"
                )
            return
        if state.get("format") != CHECKPOINT_FORMAT:
            raise RunDirError(f"{self.run.checkpoint_path}: unknown checkpoint format")
        self.strategy.load_state_dict(state["strategy"])
        self.absorbed = state["absorbed"]
        self.elapsed_before = state["elapsed"]
        self.display.elapsed_before = self.elapsed_before
        pending = state["pending"]
        self.pending = Pending(pending["start"], list(pending["archs"])) if pending else None
        self.records = records = self._check_log(records)
        self.display.restored(records, self._batch_means())
        if records:
            extra = len(records) - self.absorbed
            self.display.message(
                f"resumed: {len(records)} children logged"
                + (f", {extra} of the interrupted batch re-used" if extra else "")
            )

    def _check_log(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records in child order; raise if the log cannot belong to this checkpoint."""
        where = f"{self.run.path}: children.jsonl does not match the checkpoint"
        if any(not isinstance(r.get("index"), int) for r in records):
            raise RunDirError(f"{where} (a record without an integer index)")
        told = sorted((r for r in records if r["index"] < self.absorbed), key=lambda r: r["index"])
        if [r["index"] for r in told] != list(range(self.absorbed)):
            raise RunDirError(f"{where} (expected exactly children 0..{self.absorbed - 1})")
        rest = [r for r in records if r["index"] >= self.absorbed]
        if rest and self.pending is None:
            raise RunDirError(f"{where} ({len(rest)} children beyond the last told batch)")
        seen = set()
        for r in rest:
            assert self.pending is not None
            i = r["index"]
            if i not in self.pending.indices() or i in seen:
                raise RunDirError(f"{where} (unexpected or repeated child index {i})")
            expected = json.loads(self.pending.archs[i - self.pending.start])
            if r.get("arch") != expected:
                raise RunDirError(f"{where} (child {i} has a different architecture)")
            seen.add(i)
        return told + rest

    def _checkpoint(self) -> None:
        pending = None
        if self.pending is not None:
            pending = {"start": self.pending.start, "archs": self.pending.archs}
        self.run.save_checkpoint(
            {
                "format": CHECKPOINT_FORMAT,
                "absorbed": self.absorbed,
                "pending": pending,
                "strategy": self.strategy.state_dict(),
                "elapsed": self.elapsed(),
            }
        )

    def elapsed(self) -> float:
        """Seconds of search so far, over all sessions of this run."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def _batch_means(self) -> list[float]:
        m = self.budget.batch_size
        told = self.records[: self.absorbed]
        return [
            sum(r["reward"] for r in told[i : i + m]) / len(told[i : i + m])
            for i in range(0, len(told), m)
        ]

    # ----- the loop ---------------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        while True:
            if self.pending is None:
                n = min(self.budget.batch_size, self.budget.children - self.absorbed)
                if n <= 0 or self._out_of_time(n):
                    break
                if self.task.before_ask is not None:  # e.g. progressive depth (CIFAR-10)
                    self.task.before_ask(self.absorbed)
                archs = self.strategy.ask(n)
                self.pending = Pending(
                    self.absorbed, [self.task.space.arch_to_json(a) for a in archs]
                )
                self._checkpoint()
            self._train_pending()
            self._tell_pending()
        self.display.close()
        return self.summary()

    def _out_of_time(self, n: int) -> bool:
        limit = self.budget.time_limit
        if limit is None:
            return False
        seconds = [r["seconds"] for r in self.records if isinstance(r.get("seconds"), (int, float))]
        per_child = sum(seconds) / len(seconds) if seconds else 0.0
        estimate = per_child * math.ceil(n / max(1, self.executor.workers))
        if self.elapsed() + estimate > limit:
            self.stopped_by_time = True
            return True
        return False

    def _train_pending(self) -> None:
        assert self.pending is not None
        pending = self.pending
        done = {r["index"] for r in self.records[self.absorbed :]}
        todo = [(i, pending.archs[i - pending.start]) for i in pending.indices() if i not in done]
        policy = policy_stats(self.strategy, self.task.space, pending.start, pending.archs)
        for index, arch_json, result, seconds in self.executor.map(self.evaluate, todo):
            record = make_record(index, arch_json, result, seconds, extra=policy.get(index))
            self.run.log.append(record)
            self.records.append(record)
            for listener in self.on_record:
                listener(record)
            self.display.child(
                record, self.task.space.render(self.task.space.arch_from_json(arch_json))
            )

    def _evaluate(self, item: tuple[int, str]) -> tuple[int, str, ChildResult, float]:
        index, arch_json = item
        start = time.monotonic()
        try:
            result = self.task.evaluate(self.task.space.arch_from_json(arch_json), index)
        except Exception as exc:  # a crashing child never stops the search (SPEC §5)
            result = ChildResult.failed(f"{type(exc).__name__}: {exc}"[:500])
        return index, arch_json, result, time.monotonic() - start

    def _tell_pending(self) -> None:
        assert self.pending is not None
        by_index = {r["index"]: r for r in self.records[self.absorbed :]}
        batch = [by_index[i] for i in self.pending.indices()]
        archs = [self.task.space.arch_from_json(a) for a in self.pending.archs]
        self.strategy.tell(archs, [r["reward"] for r in batch])
        # keep self.records in index order so records[:absorbed] are the told children
        self.records[self.absorbed :] = batch
        self.absorbed += len(batch)
        self.pending = None
        self._checkpoint()
        self.display.batch(sum(r["reward"] for r in batch) / len(batch))

    # ----- results ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return summarize(
            self.task.name,
            self.strategy.name,
            self.records[: self.absorbed],
            self._batch_means(),
            self.budget,
            self.stopped_by_time,
            self.elapsed(),
        )


def summarize(
    task: str,
    strategy: str,
    records: list[dict[str, Any]],
    batch_means: list[float],
    budget: Budget,
    stopped_by_time: bool,
    seconds: float,
) -> dict[str, Any]:
    """The summary.json of a search: progress, the reward trend and the top architectures."""
    ranked = sorted(records, key=lambda r: (-r["reward"], r["index"]))
    return {
        "task": task,
        "strategy": strategy,
        "children_done": len(records),
        "children_planned": budget.children,
        "complete": len(records) >= budget.children,
        "stopped_by_time_limit": stopped_by_time,
        "failed": sum(1 for r in records if r.get("status") != "ok"),
        "search_seconds": round(seconds, 1),
        "reward_trend": {
            "batch_size": budget.batch_size,
            "batch_means": batch_means,
            "first_batch_mean": batch_means[0] if batch_means else None,
            "last_batch_mean": batch_means[-1] if batch_means else None,
        },
        "top": [
            {
                "rank": k + 1,
                **{f: r.get(f) for f in ("index", "reward", "ppl", "params")},
                "arch": r["arch"],
            }
            for k, r in enumerate(ranked[:TOP_K])
        ],  # fmt: skip
    }


def make_record(
    index: int,
    arch_json: str,
    result: ChildResult,
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One line of children.jsonl; ``arch`` serialises to exactly the canonical JSON.

    `extra` fields (the controller's ``baseline``, ``log_prob``, ``entropy``) follow ``reason``.
    """
    data = result.to_dict()
    metrics = dict(data["metrics"])
    reward = data["reward"]
    status, reason = data["status"], data["reason"]
    if not (isinstance(reward, (int, float)) and math.isfinite(reward)):
        status, reason, reward = (
            "failed",
            f"non-finite reward {reward!r}",
            ChildResult.failed("").reward,
        )
    metrics.pop("traceback", None)
    record: dict[str, Any] = {
        "index": index,
        "arch": json.loads(arch_json),
        "reward": reward,
        "ppl": metrics.pop("ppl", None),
        "params": metrics.pop("params", None),
        "seconds": round(float(metrics.pop("seconds", seconds)), 3),
        "status": status,
        "reason": reason,
        **(extra or {}),
    }
    if metrics:
        record["metrics"] = metrics
    return record
