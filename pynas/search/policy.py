"""What the controller thought of each child: the REINFORCE baseline, log-probability, entropy.

Logged with every child (``children.jsonl`` fields ``baseline``, ``log_prob``, ``entropy``) so a
finished run can be plotted and inspected. Strategies without a controller (random search,
evolution) log none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynas.spaces import DecisionSpace
from pynas.strategies.base import Strategy


def policy_stats(
    strategy: Strategy, space: DecisionSpace, start: int, archs_json: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """Per child index of a batch asked at child `start`: its policy statistics.

    Call it between the ask and the tell of the batch: the controller is then the one that
    sampled the batch, so ``log_prob``/``entropy`` are those of the sampling distribution, and
    ``baseline`` is the b that the batch's rewards are compared with in the REINFORCE gradient
    (None for the first batch, which uses its own mean reward). The whole batch is scored at
    once, so a resumed search logs the same numbers as an uninterrupted one.
    """
    log_prob_fn = getattr(strategy, "log_prob", None)
    if log_prob_fn is None or not archs_json:
        return {}
    archs = [space.arch_from_json(a) for a in archs_json]
    log_prob, entropy = log_prob_fn(archs)
    baseline = getattr(strategy, "baseline", None)
    baseline = float(baseline) if baseline is not None else None
    return {
        start + i: {"baseline": baseline, "log_prob": float(lp), "entropy": float(h)}
        for i, (lp, h) in enumerate(zip(log_prob.tolist(), entropy.tolist(), strict=True))
    }
