"""The weight-sharing search loop (``--weights shared``): ENAS-style rounds on one shared model.

A round (settings: :class:`~pynas.search.shared_settings.SharedSchedule`):

1. *train*: ``train_steps`` steps of :meth:`SharedEngine.train_step`, each on
   ``archs_per_step`` architectures asked from the strategy (they are training samples: the
   strategy is not told about them; masked training rows are counted in the engine's totals);
2. *ask*: ``scored_per_round`` architectures asked from the strategy; the batch (their
   canonical JSON and child indices) becomes *pending* and is checkpointed with the engine
   and the strategy;
3. *score*: the pending architectures in one batched :meth:`SharedEngine.score` call; each is
   one fsynced record of ``children.jsonl`` (``"weights": "shared"``, the round), a failure
   (non-finite, or ppl above the vocabulary size) with its reason;
4. *tell*: the strategy is told each reward, ``None`` for a failure; the checkpoint is replaced
   with the batch absorbed and nothing pending.

After the last round (the round limit, or the next round would not fit the time limit) the
best ``rank_top`` distinct architectures by search score are scored again on a larger
validation slice (:meth:`SharedEngine.rank`) and written to ``ranking.json``: the leaderboard
``pynas.show`` prints and ``pynas.retrain`` retrains from.

Crash safety, with the run journal's mechanisms (:class:`~pynas.search.journal.RunJournal`:
atomic checkpoints with a previous one, the lock, log reconciliation): a kill during *train*
resumes from the checkpoint before it and trains the round again — the engine's state (weights,
optimizer, data position, carried state, torch's RNG) and the strategy's are restored, so the
round and its asks are the same. A kill during *score* or *tell* resumes from the pending
checkpoint: the batch is scored again (the engine is the one that scored it; scoring draws no
random numbers), logged records are re-used and only missing ones are appended, then it is
told once. If the latest checkpoint is damaged and the previous one is older than the log's
records, the round is trained and asked again from it (the same architectures) and the logged
records are re-used. Nothing logged is lost; nothing is logged twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pynas.io import finite_float
from pynas.search.display import SearchDisplay
from pynas.search.journal import CHECKPOINT_FORMAT, Batch, RunDirError, RunJournal
from pynas.search.policy import policy_stats
from pynas.search.records import batch_mean, batch_means, child_record, summarize
from pynas.search.shared_settings import SHARED_TASK, SharedSettings
from pynas.spaces import DecisionSpace
from pynas.strategies.base import Strategy
from pynas.tasks.base import Budget, ChildResult
from pynas.tasks.ptb.shared import FAILED_TOLD, SharedEngine

WEIGHTS = "shared"  # the value of a record's and a checkpoint's "weights" field


class SharedSearch:
    """One weight-sharing search over a run directory (module doc); ``restore()`` then
    ``run_all()``, like :class:`pynas.search.loop.Search`."""

    def __init__(
        self,
        run: RunJournal,
        strategy: Strategy,
        space: DecisionSpace,
        engine: SharedEngine,
        settings: SharedSettings,
        budget: Budget,
        display: SearchDisplay | None = None,
    ) -> None:
        self.run = run
        self.strategy = strategy
        self.space = space
        self.engine = engine
        self.settings = settings
        self.schedule = settings.schedule
        self.budget = budget
        self.display = display or SearchDisplay(budget.children, enabled=False)
        self.absorbed = 0  # scored architectures told to the strategy
        self.rounds_done = 0
        self.pending: Batch | None = None
        self.elapsed_before = 0.0
        self.records: list[dict[str, Any]] = []
        self.session_start = time.monotonic()
        self.stopped_by_time = False
        self.ranking: dict[str, Any] | None = None
        # for the time limit: mean seconds of a round, and of scoring one token of one arch
        self.timing = {"round_seconds": 0.0, "score_seconds_per_token": 0.0}
        self.on_record: list[Callable[[dict[str, Any]], None]] = []

    # ----- state ------------------------------------------------------------------------------
    def restore(self) -> None:
        """Load checkpoint and log, reconcile them, and report what was recovered."""
        say = self.display.message
        state, read = self.run.begin_restore(say)
        if state is None:
            return
        if state.get("format") != CHECKPOINT_FORMAT or state.get("weights") != WEIGHTS:
            raise RunDirError(
                f"{self.run.checkpoint_path}: not a checkpoint of the weight-sharing search "
                "(its run.json says --weights shared, the checkpoint does not); the run "
                "directory is inconsistent"
            )
        try:
            self.engine.load_state_dict(state["engine"])
        except ValueError as exc:
            raise RunDirError(
                f"cannot resume: {self.run.checkpoint_path} does not fit the run's shared-model "
                f"settings in run.json ({exc})"
            ) from None
        self.strategy.load_state_dict(state["strategy"])
        self.absorbed = state["absorbed"]
        self.rounds_done = state["rounds_done"]
        self.timing = dict(state["timing"])
        self.elapsed_before = state["elapsed"]
        self.display.elapsed_before = self.elapsed_before
        self.pending = Batch.from_dict(state["pending"]) if state["pending"] else None
        records = self.run.reconcile(read, self.absorbed, self._open(), say)
        asked_again = self.pending is None and any(
            isinstance(r.get("index"), int) and r["index"] >= self.absorbed for r in records
        )
        if asked_again:  # a checkpoint older than the log (the latest was damaged)
            self._train_round()
            self._ask()
        self.records = self.run.check(records, self._next_index(), self._open())
        if asked_again:
            assert self.pending is not None
            self._checkpoint()
            say(f"trained round {self.rounds_done + 1} and asked its architectures again from "
                "the restored checkpoint to re-use its logged records")  # fmt: skip
        self.display.restored(self.records, self._round_means())
        if self.records:
            extra = len(self.records) - self.absorbed
            say(
                f"resumed after round {self.rounds_done}: {len(self.records)} scored "
                "architectures logged"
                + (f", {extra} of the interrupted round re-used" if extra else "")
            )

    def _open(self) -> list[Batch]:
        return [self.pending] if self.pending is not None else []

    def _next_index(self) -> int:
        return self.absorbed + (self.pending.n if self.pending is not None else 0)

    def _checkpoint(self) -> None:
        loop_state = {
            "weights": WEIGHTS,
            "absorbed": self.absorbed,
            "rounds_done": self.rounds_done,
            "pending": self.pending.to_dict() if self.pending is not None else None,
            "engine": self.engine.state_dict(),
            "timing": dict(self.timing),
        }
        self.run.save_checkpoint(loop_state, self.strategy.state_dict(), self.elapsed())

    def elapsed(self) -> float:
        """Seconds of search so far, over all sessions of this run."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def _round_means(self) -> list[float]:
        return batch_means(self.records[: self.absorbed], self.schedule.scored_per_round)

    # ----- the loop ---------------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        """Rounds until the round limit or the time limit, then the ranking; the summary."""
        while True:
            if self.pending is None:
                if self.rounds_done >= self.schedule.rounds or self._out_of_time():
                    break
                started = time.monotonic()
                self._train_round()
                self._ask()
                self._checkpoint()
            else:
                started = None  # a resumed round: its training time is unknown
            self._score_pending()
            self._tell_pending()
            if started is not None:
                self._measured("round_seconds", time.monotonic() - started)
        self.ranking = self._rank()
        self.run.write_ranking(self.ranking)
        self.display.close()
        return self.summary()

    def _train_round(self) -> None:
        """``train_steps`` steps of the shared weights on architectures asked per step."""
        steps, masked, rows, failed, skipped, losses = 0, 0, 0, 0, 0, []
        for _ in range(self.schedule.train_steps):
            archs = self.strategy.ask(self.schedule.archs_per_step)
            report = self.engine.train_step(archs)
            steps += 1
            rows += sum(report.rows)
            masked += sum(report.masked_rows)
            failed += sum(report.failed)
            skipped += report.skipped is not None
            if report.loss is not None:
                losses.append(report.loss)
        loss = f"{sum(losses) / len(losses):.3f}" if losses else "-"
        self.display.message(
            f"round {self.rounds_done + 1}: {steps} training steps, mean loss {loss}, "
            f"{masked}/{rows} rows masked ({failed} of {steps * self.schedule.archs_per_step} "
            f"training architectures wholly), {skipped} steps skipped"
        )

    def _ask(self) -> None:
        """The round's architectures to score become pending (deterministic given the state)."""
        n = min(self.schedule.scored_per_round, self.budget.children - self.absorbed)
        archs = self.strategy.ask(n)
        self.pending = Batch.of(self.absorbed, [self.space.arch_to_json(a) for a in archs])

    def _out_of_time(self) -> bool:
        """Whether the next round and the final ranking would pass the time limit."""
        limit = self.budget.time_limit
        if limit is None:
            return False
        rank_tokens = self.schedule.rank_tokens or len(self.engine.valid_ids)
        ranking = (
            self.timing["score_seconds_per_token"] * self.schedule.rank_top * rank_tokens
        )
        if self.elapsed() + self.timing["round_seconds"] + ranking > limit:
            self.stopped_by_time = True
            return True
        return False

    def _measured(self, name: str, value: float) -> None:
        """Keep a running mean of a timing (weight 1/2 on the newest: the machine is shared)."""
        old = self.timing[name]
        self.timing[name] = value if old == 0.0 else (old + value) / 2

    def _score_pending(self) -> None:
        """Score the pending batch (again, after a resume: the same numbers) and log the
        records that are not logged yet."""
        assert self.pending is not None
        pending = self.pending
        assert pending.archs is not None
        archs = [self.space.arch_from_json(a) for a in pending.archs]
        started = time.monotonic()
        results = self.engine.score(archs)
        seconds = time.monotonic() - started
        tokens = sum(int(r.metrics.get("tokens", 0)) for r in results)
        if tokens:
            self._measured("score_seconds_per_token", seconds / tokens)
        done = {r["index"] for r in self.records[self.absorbed :]}
        policy = policy_stats(self.strategy, self.space, pending.start, pending.archs)
        for index, arch_json, result in zip(pending.indices(), pending.archs, results, strict=True):
            if index in done:
                continue
            extra = {"weights": WEIGHTS, "round": self.rounds_done, **policy.get(index, {})}
            record = child_record(index, arch_json, result, seconds / len(archs), extra=extra)
            self.run.append(record)
            self.records.append(record)
            for listener in self.on_record:
                listener(record)
            self.display.child(record, self.space.render(self.space.arch_from_json(arch_json)))

    def _tell_pending(self) -> None:
        assert self.pending is not None and self.pending.archs is not None
        by_index = {r["index"]: r for r in self.records[self.absorbed :]}
        batch = [by_index[i] for i in self.pending.indices()]
        archs = [self.space.arch_from_json(a) for a in self.pending.archs]
        # the log is the truth: a re-used record tells what it told the first time
        self.strategy.tell(archs, [_told(r) for r in batch])
        self.records[self.absorbed :] = batch
        self.absorbed += len(batch)
        self.rounds_done += 1
        self.pending = None
        self._checkpoint()
        self.display.batch(batch_mean(batch))

    # ----- the leaderboard --------------------------------------------------------------------
    def _rank(self) -> dict[str, Any]:
        """The best ``rank_top`` distinct architectures by search score, scored again with the
        shared weights on the first ``rank_tokens`` validation tokens; best first."""
        told = self.records[: self.absorbed]
        best: dict[str, dict[str, Any]] = {}
        sampled: dict[str, int] = {}
        scored = [r for r in told if r.get("status") == "ok" and finite_float(r.get("reward"))]
        for r in sorted(scored, key=lambda r: (-float(r["reward"]), r["index"])):
            key = json.dumps(r["arch"], separators=(",", ":"))
            sampled[key] = sampled.get(key, 0) + 1
            best.setdefault(key, r)
        chosen = list(best.items())[: self.schedule.rank_top]
        tokens = min(self.schedule.rank_tokens or len(self.engine.valid_ids),
                     len(self.engine.valid_ids))  # fmt: skip
        if chosen:
            self.display.message(
                f"ranking the best {len(chosen)} distinct architectures on {tokens:,} "
                "validation tokens with the shared weights"
            )
        archs = [self.space.arch_from_json(key) for key, _ in chosen]
        results = self.engine.rank(archs, valid_tokens=tokens) if archs else []
        entries = [
            _ranked_entry(record, result, sampled[key])
            for (key, record), result in zip(chosen, results, strict=True)
        ]
        entries.sort(key=lambda e: (e["status"] != "ok", -e["reward"], e["index"]))
        for rank, entry in enumerate(entries, start=1):
            entry["rank"] = rank if entry["status"] == "ok" else None
        return {
            "weights": WEIGHTS,
            "valid_tokens": tokens,
            "distinct_scored": len(best),
            "rounds": self.rounds_done,
            "entries": entries,
        }

    # ----- results ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        told = self.records[: self.absorbed]
        out = summarize(SHARED_TASK, self.strategy.name, told, self._round_means(), self.budget,
                        self.stopped_by_time, self.elapsed())  # fmt: skip
        out["top_by_search_score"] = out.pop("top")
        ranking = self.ranking or {"entries": [], "valid_tokens": None}
        out["top"] = [e for e in ranking["entries"] if e["status"] == "ok"]
        out["weights"] = WEIGHTS
        out["rounds_done"] = self.rounds_done
        out["rounds_planned"] = self.schedule.rounds
        out["ranking_valid_tokens"] = ranking["valid_tokens"]
        out["training"] = self.engine.totals.to_dict()
        return out


def _told(record: dict[str, Any]) -> float | None:
    """What the strategy is told for a logged record: its reward, None for a failure."""
    reward = finite_float(record.get("reward"))
    return reward if record.get("status") == "ok" and reward is not None else FAILED_TOLD


def _ranked_entry(record: dict[str, Any], result: ChildResult, sampled: int) -> dict[str, Any]:
    return {
        "rank": None,
        "index": record["index"],  # the scored child whose search score chose it
        "arch": record["arch"],
        "reward": result.reward,
        "ppl": result.metrics.get("ppl"),
        "params": None,
        "status": result.status,
        "reason": result.reason,
        "tokens": result.metrics.get("tokens"),
        "search_reward": record["reward"],
        "search_ppl": record.get("ppl"),
        "sampled": sampled,
    }
