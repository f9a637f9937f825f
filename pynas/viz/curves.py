"""How a search went: reward per child (with best so far and baseline), controller entropy."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from pynas.viz.backend import pyplot


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _moving_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_rewards(
    records: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = ""
) -> list[str]:
    """Reward of every child (failed ones marked), the best so far and the logged baseline.

    Returns notes on what could not be drawn (e.g. no baseline in the log).
    """
    plt = pyplot()
    records = sorted(records, key=lambda r: r["index"])
    notes = []
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    ok = [(r["index"], float(r["reward"])) for r in records if r.get("status") == "ok"]
    failed = [(r["index"], float(r["reward"])) for r in records if r.get("status") != "ok"]
    if ok:
        ax.scatter(*zip(*ok, strict=True), s=12, color="tab:blue", alpha=0.6, label="child reward")
    if failed:
        ax.scatter(*zip(*failed, strict=True), s=22, marker="x", color="tab:red",
                   label=f"failed child ({len(failed)})")  # fmt: skip
    best, xs, ys = -math.inf, [], []
    for r in records:
        best = max(best, float(r["reward"]))
        xs.append(r["index"])
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="tab:green", linewidth=2, label="best so far")
    baseline = [(r["index"], _finite(r.get("baseline"))) for r in records]
    baseline = [(i, b) for i, b in baseline if b is not None]
    if baseline:
        ax.step(*zip(*baseline, strict=True), where="post", color="tab:orange", linewidth=1.6,
                label="baseline b (EMA of rewards)")  # fmt: skip
    else:
        notes.append(
            "no baseline in children.jsonl (not a REINFORCE run, only its first batch, or a log "
            "written before pynas recorded it): the reward plot has no baseline line"
        )
    ax.set_xlabel("child (order sampled)")
    ax.set_ylabel("reward")
    ax.set_ylim(bottom=min(0.0, *(y for _, y in ok + failed)) if ok or failed else 0.0)
    ax.set_title(title or "reward per child")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return notes


def plot_entropy(
    records: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    title: str = "",
    window: int = 8,
) -> bool:
    """Controller entropy of each sampled child and its moving mean; False if none was logged."""
    points = [
        (r["index"], _finite(r.get("entropy"))) for r in sorted(records, key=lambda r: r["index"])
    ]
    points = [(i, h) for i, h in points if h is not None]
    if not points:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    xs, hs = zip(*points, strict=True)
    ax.scatter(
        xs, hs, s=10, color="tab:purple", alpha=0.45, label="entropy of the sample's decisions"
    )
    ax.plot(xs, _moving_mean(hs, window), color="black", linewidth=1.6,
            label=f"moving mean ({window} children)")  # fmt: skip
    ax.set_xlabel("child (order sampled)")
    ax.set_ylabel("entropy (nats, summed over decisions)")
    ax.set_title(title or "controller entropy over the search")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
