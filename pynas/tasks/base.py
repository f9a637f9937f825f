"""What a benchmark task provides, and the records every task produces.

A task is one package under ``pynas/tasks/`` (``ptb``, ``cifar10``, ``toy``) with one
:class:`Task` object, listed in :data:`pynas.tasks.registry.TASKS`. The rest of pynas knows
tasks only through this interface: the search asks a task for its child settings, budgets and
the :class:`SearchTask` to optimise; ``show`` for its metric; ``retrain`` for its grid and
retraining; ``pynas.build_model`` for its model builder; ``pynas.train`` for its options.
Adding a task is adding a package (the README shows it with the toy task).
"""

from __future__ import annotations

import argparse
import os
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from torch import nn

from pynas.io import finite_float, to_jsonable
from pynas.spaces import DecisionSpace

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
        """A JSON-ready dict: non-finite numbers at any depth as pynas.io's strings."""
        return to_jsonable(asdict(self))


class ChildSettings(Protocol):
    """How a task's children are trained during a search (typed; one dataclass per task).

    ``to_dict`` is the ``budget_settings.child`` object of ``run.json``; the task's
    ``child_settings`` reads it back (runs of earlier versions included: missing keys take their
    defaults).
    """

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Budget:
    """A named budget: how many children, how they are batched, how each one trains.

    ``children`` is an upper bound; ``time_limit`` (seconds of search, summed over resumed
    sessions) stops the search before a batch that would not fit. ``preset`` is the REINFORCE
    preset a new search with this budget uses unless ``--preset`` names another (``"default"``,
    the sample-efficient one; ``"paper"`` for the paper's budgets); ``reinforce`` holds
    REINFORCE settings changed on top of the chosen preset (``ReinforceSettings`` fields).
    """

    children: int
    batch_size: int  # m: architectures per controller batch (and per ask)
    grads_per_update: int  # g: batch gradients accumulated per controller update
    child: ChildSettings | None = None  # None: a budget of the loop alone (tests, library use)
    reinforce: Mapping[str, Any] = field(default_factory=dict)
    time_limit: float | None = None
    description: str = ""
    preset: str = "default"  # absent in run.json of earlier versions (resume reads "preset")

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], child_settings: Callable[[Mapping[str, Any]], ChildSettings]
    ) -> Budget:
        """The budget in ``run.json``'s ``budget_settings`` (TypeError on a missing or unknown
        field); `child_settings` is the task's reader of the child settings."""
        settings = dict(data)
        child = settings.pop("child", None) or {}
        if not isinstance(child, Mapping):
            raise TypeError(f"child settings must be an object, got {child!r}")
        return cls(child=child_settings(child), **settings)

    def to_dict(self) -> dict[str, Any]:
        """``budget_settings`` of ``run.json``."""
        return {
            "children": self.children,
            "batch_size": self.batch_size,
            "grads_per_update": self.grads_per_update,
            "child": self.child.to_dict() if self.child is not None else {},
            "reinforce": dict(self.reinforce),
            "time_limit": self.time_limit,
            "description": self.description,
            "preset": self.preset,
        }


@dataclass
class SearchTask:
    """What a search optimises: a space, ``evaluate(arch, child_index) -> ChildResult``, a name.

    ``before_ask`` is called with the number of children sampled so far before each ask
    (progressive depth).
    """

    name: str
    space: DecisionSpace
    evaluate: Callable[[Any, int], ChildResult]
    describe: str = ""
    before_ask: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Metric:
    """A task's score of a child besides the reward: the record field (top level or under
    ``metrics``), whether higher is better, how ``show`` prints it and heads its column."""

    name: str
    higher_is_better: bool
    spec: str  # format spec of a value
    column: str  # leaderboard column heading

    def text(self, value: float | None) -> str:
        return "-" if value is None else format(value, self.spec)


@dataclass
class Trained:
    """One retrain grid point's outcome; `model` only while it is in memory (None if failed)."""

    status: str
    reason: str | None
    valid: float | None
    params: int | None
    seconds: float
    curve: list[float]
    model: nn.Module | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def of(cls, result: ChildResult, valid: Any, curve: Any, model: nn.Module | None) -> Trained:
        m = result.metrics
        return cls(
            status=result.status,
            reason=result.reason,
            valid=float(valid) if result.ok else None,
            params=m.get("params"),
            seconds=round(float(m.get("seconds", 0.0)), 3),
            curve=[float(v) for v in curve or []],
            model=model if result.ok else None,
        )


#: ``build(arch, options) -> nn.Module``: how a retrain makes its untrained model (the caller's
#: :func:`pynas.build_model`, so the trained model can be saved with ``pynas.save_model``).
ModelFactory = Callable[[Any, dict[str, Any]], nn.Module]


class Retraining(ABC):
    """Retraining one architecture of a run at one grid point (SPEC §6), for one task."""

    def __init__(self, name: str, metric: Metric, progress: bool = False) -> None:
        self.name = name  # the task's
        self.metric = metric
        self.progress = progress

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Everything that determines a grid point's result besides the point itself."""

    @abstractmethod
    def train(self, arch: Any, point: dict[str, float], build: ModelFactory) -> Trained: ...

    @abstractmethod
    def child_device(self) -> Any:
        """The training device, checked (DeviceError if this machine cannot provide it)."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> float:
        """The metric of `model` on the test split."""

    def better(self, a: float, b: float) -> bool:
        return a > b if self.metric.higher_is_better else a < b


@dataclass(frozen=True)
class RetrainOverrides:
    """What a retrain may change in the run's child settings (``None``: keep the run's)."""

    seed: int
    epochs: int | None = None
    device: str | None = None
    train_limit: int | None = None  # None: all
    change_train_limit: bool = False  # False: keep the run's training-set limit
    valid_limit: int | None = None  # None: all
    hidden: int | None = None
    dropout: float | None = None
    params_budget: int | None = None  # every model's hidden size fits this many parameters


class Task(ABC):
    """One benchmark: everything the search, show, retrain, export and the CLIs need of it."""

    name: str
    help: str  # a few words for ``--task``'s help
    metric: Metric | None = None  # None: the reward is the only score
    trains_on_device: bool = False  # children take --device (cpu, cuda, cuda:N)
    #: retrain grid axes and their default values (empty: no retrain for this task)
    retrain_grid: Mapping[str, list[float]] = {}
    #: options of ``pynas.retrain`` only this task takes (e.g. ``hidden``)
    retrain_options: tuple[str, ...] = ()
    #: baselines ``pynas.retrain --arch`` trains beside a run's architectures (e.g. ``lstm``)
    baselines: tuple[str, ...] = ()

    # ----- the search ---------------------------------------------------------------------------
    @abstractmethod
    def budgets(self) -> dict[str, Callable[[], Budget]]:
        """Named budgets (``default`` always)."""

    @abstractmethod
    def child_settings(self, data: Mapping[str, Any]) -> ChildSettings:
        """Typed child settings from their ``run.json`` form (TypeError/ValueError if bad)."""

    @abstractmethod
    def search_task(
        self, child: ChildSettings, seed: int, data_dir: str | os.PathLike[str] | None
    ) -> SearchTask:
        """The space and the child evaluation; loads the data (DataError if missing)."""

    def with_device(self, child: ChildSettings, device: str) -> ChildSettings:
        """`child` training on `device` (tasks that train on a device override this)."""
        raise ValueError(f"task {self.name!r} children do not train on a device")

    def device_of(self, child: ChildSettings) -> str:
        """Where `child` trains: ``cpu``, ``cuda`` or ``cuda:N``."""
        return "cpu"

    def check_device(self, child: ChildSettings) -> None:  # noqa: B027 (a no-op by default)
        """DeviceError if the children's device cannot work on this machine."""

    #: children take ``--child-delay`` (a test and demo knob)
    takes_delay: bool = False

    def with_delay(self, child: ChildSettings, seconds: float) -> ChildSettings:
        """`child` taking `seconds` more each (tasks with ``takes_delay``)."""
        raise ValueError(f"task {self.name!r} children take no delay")

    # ----- after the search ---------------------------------------------------------------------
    def retraining(
        self,
        child: ChildSettings,
        overrides: RetrainOverrides,
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None,
    ) -> Retraining:
        """How this task retrains a run's architectures (ValueError if it has no retrain)."""
        raise ValueError(f"retrain does not support {self.name!r} runs")

    def build_model(self, arch: Any, options: dict[str, Any]) -> nn.Module:
        """The child network of `arch` as a plain module (`options`: its constructor's)."""
        raise ValueError(f"no model builder for task {self.name!r}")

    def arch_from_json(self, text: str) -> Any:
        """The architecture a saved model's canonical JSON describes (for load_model)."""
        raise ValueError(f"no model builder for task {self.name!r}")

    def evaluate_saved(
        self, model: nn.Module, data_dir: str | os.PathLike[str] | None, split: str,
        batch_size: int | None, bptt: int, limit: int | None, variant: str, valid_size: int,
    ) -> float:  # fmt: skip
        """`model`'s metric on a split of this task's data (see pynas.retrain.evaluate_saved)."""
        raise ValueError(f"no evaluation for task {self.name!r}")

    # ----- python -m pynas.train ----------------------------------------------------------------
    def add_train_arguments(self, parser: argparse.ArgumentParser) -> None:
        """This task's options of ``python -m pynas.train`` (everything but --task)."""
        raise ValueError(f"task {self.name!r} has no single-architecture training")

    def train_command(self, args: argparse.Namespace) -> int:
        """Train the architecture `args` describe: 0 ok, 1 child failed (UsageError: exit 2)."""
        raise ValueError(f"task {self.name!r} has no single-architecture training")

    @property
    def trainable(self) -> bool:
        """Whether ``python -m pynas.train`` serves this task."""
        return type(self).add_train_arguments is not Task.add_train_arguments

    # ----- python -m pynas.data fetch -----------------------------------------------------------
    def fetch(self, dest: str | os.PathLike[str], url: str | None, md5: str | None,
              say: Callable[[str], None]) -> Any:  # fmt: skip
        """Download and convert this task's data into `dest` (tasks that can fetch override)."""
        raise ValueError(f"task {self.name!r} has nothing to fetch")

    @property
    def fetchable(self) -> bool:
        return type(self).fetch is not Task.fetch

    # ----- helpers ------------------------------------------------------------------------------
    def budget(self, name: str) -> Budget:
        budgets = self.budgets()
        if name not in budgets:
            raise ValueError(
                f"unknown budget {name!r} for task {self.name!r}; choose one of {sorted(budgets)}"
            )
        return budgets[name]()

    def metric_of(self, record: Mapping[str, Any]) -> float | None:
        """The task's metric of a child record (top level or under ``metrics``), if finite."""
        if self.metric is None:
            return None
        value = record.get(self.metric.name)
        if value is None:
            metrics = record.get("metrics")
            value = metrics.get(self.metric.name) if isinstance(metrics, dict) else None
        return finite_float(value)
