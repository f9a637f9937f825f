"""What training one child produces: the record a search writes and learns from."""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from pynas.jsonio import to_jsonable

# Reward given to a child that failed (NaN/Inf loss, divergence, crash): the worst possible.
FAILURE_REWARD = 0.0
# Errors raised while training a child that make it a recorded failure instead of a crash.
CHILD_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError, MemoryError, ValueError, FloatingPointError,
)  # fmt: skip


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

    @classmethod
    def from_exception(cls, exc: BaseException, seconds: float) -> ChildResult:
        """The failure record of a child whose training raised `exc` (call in the handler)."""
        reason = f"{type(exc).__name__}: {exc}".strip()
        detail = traceback.format_exc(limit=3)
        return cls.failed(reason[:500], seconds=seconds, traceback=detail[-2000:])

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: non-finite numbers at any depth as pynas.jsonio's strings."""
        return to_jsonable(asdict(self))
