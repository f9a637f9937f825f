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

Damage (not a kill): if ``checkpoint.pt`` cannot be loaded, the search continues from
``checkpoint.prev.pt``, one checkpoint earlier. That is consistent with the log, because the
two checkpoints of a batch bracket its children: if the previous one is the batch's
"pending" checkpoint, the logged children of the batch are re-used as above; if it is the
checkpoint after the last tell (no pending batch) while the log already holds children of the
next batch, the batch is re-asked from the restored strategy (same architectures, same RNG)
and its logged children are re-used. No finished child is lost or trained twice. Damaged
lines of the log are handled by :meth:`pynas.search.rundir.RunDir.reconcile_log`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynas.executors import Executor, InProcessExecutor
from pynas.executors.child import evaluate_item
from pynas.jsonio import finite_float
from pynas.search.budgets import Budget
from pynas.search.display import SearchDisplay
from pynas.search.policy import policy_stats
from pynas.search.rundir import DAMAGED_STATUS, RunDir, RunDirError
from pynas.search.tasks import SearchTask
from pynas.strategies.base import Strategy
from pynas.tasks.result import FAILURE_REWARD, ChildResult

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
        say = self.display.message
        read = self.run.read_log()
        state = self.run.load_checkpoint(say)
        records = read.records
        if state is None:
            if records or read.damaged:
                raise RunDirError(
                    f"{self.run.path}: children.jsonl has {len(records) + len(read.damaged)} "
                    "lines but there is no checkpoint; the run directory is inconsistent"
                )
            self.run.reconcile_log(read, [], say)  # a torn line: cut off
            return
        if state.get("format") != CHECKPOINT_FORMAT or "absorbed" not in state:
            raise RunDirError(
                f"{self.run.checkpoint_path}: not a checkpoint of this search loop (a Ray "
                "search's, or another pynas version's); resume it with the executor and the "
                "pynas version it was started with"
            )
        self.strategy.load_state_dict(state["strategy"])
        self.absorbed = state["absorbed"]
        self.elapsed_before = state["elapsed"]
        self.display.elapsed_before = self.elapsed_before
        pending = state["pending"]
        self.pending = Pending(pending["start"], list(pending["archs"])) if pending else None
        indices = {r.get("index") for r in records}
        missing = [i for i in range(self.absorbed) if i not in indices]
        records = records + self.run.reconcile_log(read, missing, say)
        asked_again = (
            self.pending is None
            and self.absorbed < self.budget.children
            and any(isinstance(i, int) and i >= self.absorbed for i in indices)
        )
        if asked_again:  # a checkpoint older than the log (the latest was damaged)
            self._ask()
        self.records = records = self._check_log(records)
        if asked_again:
            assert self.pending is not None
            self._checkpoint()
            say(f"asked the batch of children {self.pending.start}..{self.pending.indices()[-1]}"
                " again from the restored strategy to re-use its logged children")  # fmt: skip
        self.display.restored(records, self._batch_means())
        if records:
            extra = len(records) - self.absorbed
            say(
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
        return [batch_mean(told[i : i + m]) for i in range(0, len(told), m)]

    # ----- the loop ---------------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        while True:
            if self.pending is None:
                n = min(self.budget.batch_size, self.budget.children - self.absorbed)
                if n <= 0 or self._out_of_time(n):
                    break
                self._ask()
                self._checkpoint()
            self._train_pending()
            self._tell_pending()
        self.display.close()
        return self.summary()

    def _ask(self) -> None:
        """The next batch becomes pending (deterministic given the strategy's state)."""
        n = min(self.budget.batch_size, self.budget.children - self.absorbed)
        if self.task.before_ask is not None:  # e.g. progressive depth (CIFAR-10)
            self.task.before_ask(self.absorbed)
        archs = self.strategy.ask(n)
        self.pending = Pending(self.absorbed, [self.task.space.arch_to_json(a) for a in archs])

    def _out_of_time(self, n: int) -> bool:
        limit = self.budget.time_limit
        if limit is None:
            return False
        seconds = [s for r in self.records if (s := finite_float(r.get("seconds"))) is not None]
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
        return evaluate_item(self.task, item)  # a crashing child never stops the search

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
        self.display.batch(batch_mean(batch))

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


def batch_mean(records: list[dict[str, Any]]) -> float:
    """Mean reward of a batch's records (placeholders of damaged lines have none)."""
    rewards = [r["reward"] for r in records if finite_float(r.get("reward")) is not None]
    return sum(rewards) / len(rewards) if rewards else math.nan


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
    scored = [r for r in records if finite_float(r.get("reward")) is not None]
    ranked = sorted(scored, key=lambda r: (-r["reward"], r["index"]))
    return {
        "task": task,
        "strategy": strategy,
        "children_done": len(records),
        "children_planned": budget.children,
        "complete": len(records) >= budget.children,
        "stopped_by_time_limit": stopped_by_time,
        "failed": sum(1 for r in records if r.get("status") != "ok"),
        "damaged": sum(1 for r in records if r.get("status") == DAMAGED_STATUS),
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
    Numbers are kept as they are (NaN and infinities included): :mod:`pynas.jsonio` writes
    them. A reward that is not a finite number makes the child a failure.
    """
    metrics = dict(result.metrics)
    reward, status, reason = result.reward, result.status, result.reason
    if finite_float(reward) is None:
        status, reason, reward = "failed", f"non-finite reward {reward!r:.60}", FAILURE_REWARD
    metrics.pop("traceback", None)
    duration = metrics.pop("seconds", seconds)
    record: dict[str, Any] = {
        "index": index,
        "arch": json.loads(arch_json),
        "reward": reward,
        "ppl": metrics.pop("ppl", None),
        "params": metrics.pop("params", None),
        "seconds": round(duration, 3) if isinstance(duration, float) else duration,
        "status": status,
        "reason": reason,
        **(extra or {}),
    }
    if metrics:
        record["metrics"] = metrics
    return record
