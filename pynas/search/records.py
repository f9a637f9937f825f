"""The records a search writes: one line of ``children.jsonl`` per child, and ``summary.json``.

A child record (:func:`child_record`) has ``index``, ``arch`` (the architecture's canonical
JSON), ``reward``, ``ppl``, ``params``, ``seconds``, ``status`` (``ok``, ``failed``, or
``damaged`` for the placeholder of a damaged log line, :func:`damaged_record`), ``reason``, the
controller's ``baseline``, ``log_prob`` and ``entropy`` for REINFORCE, and the task's other
numbers under ``metrics``. Every loop writes them with these functions: one writer per format.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pynas.io import finite_float
from pynas.tasks.base import FAILURE_REWARD, Budget, ChildResult

DAMAGED_STATUS = "damaged"  # status of a placeholder record for a damaged log line
TOP_K = 10


def child_record(
    index: int,
    arch_json: str,
    result: ChildResult,
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One line of children.jsonl; ``arch`` serialises to exactly the canonical JSON.

    `extra` fields (the controller's ``baseline``, ``log_prob``, ``entropy``) follow ``reason``.
    Numbers are kept as they are (NaN and infinities included): :mod:`pynas.io` writes them.
    A reward that is not a finite number makes the child a failure.
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


def damaged_record(index: int, reason: str) -> dict[str, Any]:
    """The placeholder of a child the strategy learned from whose log line was damaged."""
    return {
        "index": index, "arch": None, "reward": None, "ppl": None, "params": None,
        "seconds": None, "status": DAMAGED_STATUS, "reason": reason,
    }  # fmt: skip


def batch_mean(records: list[dict[str, Any]]) -> float:
    """Mean reward of a batch's records (placeholders of damaged lines have none)."""
    rewards = [r["reward"] for r in records if finite_float(r.get("reward")) is not None]
    return sum(rewards) / len(rewards) if rewards else math.nan


def batch_means(told: list[dict[str, Any]], size: int) -> list[float]:
    """Mean reward of each consecutive batch of `size` told records (the reward trend)."""
    return [batch_mean(told[i : i + size]) for i in range(0, len(told), size)]


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
