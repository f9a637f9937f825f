"""Settings of a weight-sharing search (``--weights shared``), typed; kept in ``run.json``.

A weight-sharing search runs in *rounds* (:mod:`pynas.search.shared_loop`): ``train_steps``
training steps of the shared weights, each on ``archs_per_step`` architectures asked from the
strategy, then ``scored_per_round`` architectures asked from the strategy and scored with the
shared weights in one batched call, and told. At the end the best ``rank_top`` distinct
architectures (by their search scores) are scored again on the first ``rank_tokens``
validation tokens: the leaderboard.

In ``run.json``: ``"weights": "shared"`` and ``"shared": {"schedule": {...}, "engine": {...}}``
(the engine's :class:`~pynas.tasks.ptb.shared.SharedConfig`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pynas.tasks.ptb.shared import SharedConfig

WEIGHTS = ("standalone", "shared")
# A new weight-sharing search's time limit unless --time-limit says otherwise: minutes, as a
# default run should take on a laptop.
DEFAULT_TIME_LIMIT = 300.0
# The task whose children the shared model serves (tree-cell language models).
SHARED_TASK = "ptb"


@dataclass(frozen=True)
class SharedSchedule:
    """How a weight-sharing search alternates training and scoring (module doc).

    The defaults suit a 2-core CPU: a training step of the default engine (hidden 200, 16
    rows) takes ~0.25 s on one thread, so a round (50 steps, 8 architectures scored) takes
    ~15 s and the default 5-minute search runs ~20 rounds, ~160 scored architectures; ranking
    10 architectures on 20,000 validation tokens takes ~30 s more.
    """

    rounds: int = 200  # an upper bound; the time limit usually ends the search first
    train_steps: int = 50  # training steps of the shared weights per round
    archs_per_step: int = 4  # m: architectures asked from the strategy per training step
    scored_per_round: int = 8  # architectures asked, scored and told per round
    rank_top: int = 10  # distinct architectures ranked at the end
    rank_tokens: int | None = 20_000  # validation tokens for the ranking (None: all)

    def __post_init__(self) -> None:
        for name in ("rounds", "train_steps", "archs_per_step", "scored_per_round", "rank_top"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.rank_tokens is not None and (
            isinstance(self.rank_tokens, bool)
            or not isinstance(self.rank_tokens, int)
            or self.rank_tokens < 2
        ):
            raise ValueError(f"rank_tokens must be a whole number >= 2, got {self.rank_tokens!r}")

    @property
    def scored_total(self) -> int:
        """Architectures scored when every round runs."""
        return self.rounds * self.scored_per_round

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SharedSettings:
    """The schedule and the engine of a weight-sharing search."""

    schedule: SharedSchedule = field(default_factory=SharedSchedule)
    engine: SharedConfig = field(default_factory=SharedConfig)

    def __post_init__(self) -> None:
        if self.schedule.archs_per_step > self.engine.batch_size:
            raise ValueError(
                f"archs_per_step ({self.schedule.archs_per_step}) cannot exceed the engine's "
                f"training rows per step ({self.engine.batch_size}): each architecture needs a row"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SharedSettings:
        """The ``shared`` object of run.json; TypeError/ValueError if it does not fit."""
        if not isinstance(data, dict):
            raise TypeError(f"the shared settings must be an object, got {data!r}")
        return cls(SharedSchedule(**data["schedule"]), SharedConfig(**data["engine"]))

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.to_dict(), "engine": self.engine.to_dict()}

    def with_schedule(self, **changes: Any) -> SharedSettings:
        return replace(self, schedule=replace(self.schedule, **changes))

    def standalone_child(self) -> dict[str, Any]:
        """The child settings (``budget_settings.child`` form) of a standalone model of the
        shared model's shape: what ``pynas.retrain`` trains from scratch."""
        engine = self.engine
        return {
            "base": engine.base,
            "hidden": engine.hidden,
            "num_layers": engine.num_layers,
            "dropout": engine.dropout,
            "tie_weights": engine.tie_weights,
            "bptt": engine.bptt,
            "impl": engine.impl,
        }
