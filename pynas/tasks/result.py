"""What training one child produces: the record a search writes and learns from."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Reward given to a child that failed (NaN/Inf loss, divergence, crash): the worst possible.
FAILURE_REWARD = 0.0


@dataclass
class ChildResult:
    """Outcome of training and scoring one child.

    status is "ok" or "failed"; a failed child carries `reason` and FAILURE_REWARD.
    `metrics` holds task-specific numbers (ppl, accuracy, params, seconds, ...).
    """

    status: str
    reward: float
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def failed(cls, reason: str, **metrics: Any) -> ChildResult:
        return cls(status="failed", reward=FAILURE_REWARD, metrics=metrics, reason=reason)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # JSON has no NaN/Inf: store them as strings so a record never breaks the log.
        out["metrics"] = {
            k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in self.metrics.items()
        }
        return out
