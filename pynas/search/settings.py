"""A search's settings, typed: what ``run.json`` holds, read once and passed as objects.

``run.json`` (written when a search starts, never changed)::

    {"format": 1, "task": "...", "budget": "default",
     "budget_settings": {"children", "batch_size", "grads_per_update", "child": {...},
                         "reinforce": {...}, "time_limit", "description"},
     "strategy": "reinforce", "preset": "paper", "seed": 0, "data_dir": null,
     "execution": {"executor", "workers", "child_retries", "address", "servers", "replicas",
                   "child_cpus", "child_gpus"},
     "created": "...",
     "weights": "standalone"}

A weight-sharing search (``"weights": "shared"``) also has ``"shared": {"schedule", "engine"}``
(:class:`~pynas.search.shared_settings.SharedSettings`); its ``budget_settings`` bound the
scored architectures (``children``, rounds x scored per round), give the strategy its batch
(``batch_size``, the architectures scored per round), the time limit, and the child settings
``pynas.retrain`` trains the found cells with. Runs of earlier versions lack ``weights``: they
are standalone.

``budget_settings.child`` is the task's child settings (:meth:`pynas.tasks.base.Task.
child_settings` reads it); ``execution`` says where children run (runs of earlier versions may
lack some of its keys: they take their defaults).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pynas.search.shared_settings import WEIGHTS, SharedSettings
from pynas.spaces import DecisionSpace
from pynas.strategies import RandomSearch, RegularizedEvolution, Reinforce, Strategy
from pynas.tasks.base import Budget
from pynas.tasks.registry import get_task

META_FORMAT = 1
STRATEGIES = ("reinforce", "random", "evolution")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutionSettings:
    """Where children run: ``local`` (in the search process, or ``workers`` local processes)
    or ``ray`` (a local instance or the cluster at ``address``; REINFORCE as ``servers``
    parameter servers and ``replicas`` controller replicas)."""

    executor: str = "local"
    workers: int | None = None
    child_retries: int = 2  # re-runs of a child whose worker died
    address: str | None = None  # ray: None starts a local instance
    servers: int = 2  # ray: S
    replicas: int = 2  # ray: K
    child_cpus: float = 1.0  # ray: per child task
    child_gpus: float = 0.0  # ray: per child task (> 0: children train on cuda)

    @property
    def on_ray(self) -> bool:
        return self.executor == "ray"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExecutionSettings:
        """The settings in ``run.json``; missing keys (runs of earlier versions) take defaults."""
        return cls(**(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> ExecutionSettings:
        return replace(self, **changes)

    def describe(self, strategy: str) -> str:
        """A few words for the start-up line."""
        if self.on_ray:
            where = self.address or "a local Ray instance"
            if strategy == "reinforce":
                return f"Ray ({where}), {self.servers} parameter servers, {self.replicas} replicas"
            return f"Ray ({where}), a task per child"
        if self.workers:
            return f"{self.workers} local worker processes"
        return "in this process"


@dataclass(frozen=True)
class RunSettings:
    """Everything a search was started with (``run.json``)."""

    task: str  # a name in pynas.tasks.registry.TASKS
    budget_name: str
    budget: Budget
    strategy: str
    preset: str
    seed: int
    data_dir: str | None = None
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    created: str | None = None
    format: int = META_FORMAT
    weights: str = "standalone"  # "shared": a weight-sharing search with `shared` settings
    shared: SharedSettings | None = None

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {list(WEIGHTS)}, got {self.weights!r}")
        if (self.weights == "shared") != (self.shared is not None):
            raise ValueError("a weight-sharing search needs its shared settings (and only it)")

    #: what resuming needs from run.json (a run written by `python -m pynas.search`)
    REQUIRED = ("format", "task", "budget_settings", "strategy", "seed")

    @classmethod
    def missing(cls, meta: dict[str, Any]) -> list[str]:
        """The keys a run.json lacks to be resumed (``preset`` only for REINFORCE)."""
        out = [k for k in cls.REQUIRED if k not in meta]
        if meta.get("strategy") == "reinforce" and "preset" not in meta:
            out.append("preset")
        return out

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> RunSettings:
        """The settings of a run.json; KeyError, TypeError or ValueError if they do not fit."""
        task = get_task(meta["task"])
        return cls(
            task=task.name,
            budget_name=meta.get("budget", "default"),
            budget=Budget.from_dict(meta["budget_settings"], task.child_settings),
            strategy=meta["strategy"],
            preset=meta.get("preset", "paper"),
            seed=meta["seed"],
            data_dir=meta.get("data_dir"),
            execution=ExecutionSettings.from_dict(meta.get("execution")),
            created=meta.get("created"),
            format=meta["format"],
            weights=meta.get("weights", "standalone"),
            shared=SharedSettings.from_dict(meta["shared"]) if "shared" in meta else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The run.json layout."""
        return {
            "format": self.format,
            "task": self.task,
            "budget": self.budget_name,
            "budget_settings": self.budget.to_dict(),
            "strategy": self.strategy,
            "preset": self.preset,
            "seed": self.seed,
            "data_dir": self.data_dir,
            "execution": self.execution.to_dict(),
            "created": self.created,
            "weights": self.weights,
            **({"shared": self.shared.to_dict()} if self.shared is not None else {}),
        }

    def with_(self, **changes: Any) -> RunSettings:
        return replace(self, **changes)

    def make_strategy(self, space: DecisionSpace) -> Strategy:
        """The run's strategy over `space` (the same every time: it is seeded by the run)."""
        if self.strategy == "reinforce":
            return Reinforce(
                space,
                self.preset,
                batch_size=self.budget.batch_size,
                grads_per_update=self.budget.grads_per_update,
                seed=self.seed,
                **self.budget.reinforce,
            )
        if self.strategy == "random":
            return RandomSearch(space, seed=self.seed)
        if self.strategy == "evolution":
            return RegularizedEvolution(space, seed=self.seed)
        raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {list(STRATEGIES)}")
