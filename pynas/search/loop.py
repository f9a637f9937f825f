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
lines of the log are handled by :meth:`pynas.search.journal.RunJournal.reconcile`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pynas.executors import Executor, InProcessExecutor
from pynas.executors.child import evaluate_item
from pynas.io import finite_float
from pynas.search.display import SearchDisplay
from pynas.search.journal import CHECKPOINT_FORMAT, Batch, RunDirError, RunJournal
from pynas.search.policy import policy_stats
from pynas.search.records import batch_mean, batch_means, child_record, summarize
from pynas.strategies.base import Strategy
from pynas.tasks.base import Budget, ChildResult, SearchTask


class Search:
    def __init__(
        self,
        run: RunJournal,
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
        self.pending: Batch | None = None
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
        state, read = self.run.begin_restore(say)
        if state is None:
            return
        if state.get("weights") == "shared":
            raise RunDirError(
                f"{self.run.checkpoint_path}: a weight-sharing search's checkpoint, but its "
                "run.json describes a standalone search; the run directory is inconsistent"
            )
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
        self.pending = Batch.from_dict(pending) if pending else None
        records = self.run.reconcile(read, self.absorbed, self._open(), say)
        asked_again = (
            self.pending is None
            and self.absorbed < self.budget.children
            and any(isinstance(r.get("index"), int) and r["index"] >= self.absorbed
                    for r in records)
        )  # fmt: skip
        if asked_again:  # a checkpoint older than the log (the latest was damaged)
            self._ask()
        self.records = records = self.run.check(records, self._next_index(), self._open())
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

    def _open(self) -> list[Batch]:
        return [self.pending] if self.pending is not None else []

    def _next_index(self) -> int:
        return self.absorbed + (self.pending.n if self.pending is not None else 0)

    def _checkpoint(self) -> None:
        pending = self.pending.to_dict() if self.pending is not None else None
        self.run.save_checkpoint(
            {"absorbed": self.absorbed, "pending": pending},
            self.strategy.state_dict(),
            self.elapsed(),
        )

    def elapsed(self) -> float:
        """Seconds of search so far, over all sessions of this run."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def _batch_means(self) -> list[float]:
        return batch_means(self.records[: self.absorbed], self.budget.batch_size)

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
        self.pending = Batch.of(self.absorbed, [self.task.space.arch_to_json(a) for a in archs])

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
            record = child_record(index, arch_json, result, seconds, extra=policy.get(index))
            self.run.append(record)
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

