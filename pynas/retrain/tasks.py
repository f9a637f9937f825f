"""What retraining one architecture at one grid point means for each task.

``ptb``: the run's child settings (with the command line's overrides), SGD with the point's
learning rate and weight decay; the score is the best validation perplexity and the model keeps
that epoch's weights. ``cifar10``: the run's child settings, the point's learning rate, weight
decay and batch-norm eps/momentum; the score is the validation accuracy of the final model.
Both report the test split for the chosen model only.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from torch import nn

from pynas.export import build_model
from pynas.retrain.grid import Point
from pynas.tasks.result import ChildResult

TASKS = ("ptb", "cifar10")
# Config fields that are not part of a retrain's settings: the grid axes, and the device (where a
# point trains, like --threads; a retrain may continue on another device).
WHERE_AND_GRID = ("lr", "weight_decay", "device")


@dataclass
class Trained:
    """One grid point's outcome; `model` only while it is in memory (None if failed)."""

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


def _trained(result: ChildResult, valid: Any, curve: Any, model: nn.Module | None) -> Trained:
    m = result.metrics
    return Trained(
        status=result.status,
        reason=result.reason,
        valid=float(valid) if result.ok else None,
        params=m.get("params"),
        seconds=round(float(m.get("seconds", 0.0)), 3),
        curve=[float(v) for v in curve or []],
        model=model if result.ok else None,
    )


class RetrainTask(ABC):
    name: str
    metric: str  # "ppl" or "accuracy"
    higher_is_better: bool
    axes: tuple[str, ...]  # grid axes this task accepts

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Everything that determines a grid point's result besides the point itself."""

    @abstractmethod
    def train(self, arch: Any, point: Point) -> Trained: ...

    @abstractmethod
    def child_device(self) -> Any:
        """The training device, checked (DeviceError if this machine cannot provide it)."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> float:
        """The metric of `model` on the test split."""

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


class PTBRetrain(RetrainTask):
    name, metric, higher_is_better = "ptb", "ppl", False
    axes = ("lr", "weight_decay")

    def __init__(
        self,
        child: dict[str, Any],
        overrides: dict[str, Any],
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None = None,
        progress: bool = False,
    ) -> None:
        from pynas.tasks.ptb import PTBConfig, load_corpus

        super().__init__(progress)
        settings = dict(child)
        settings.pop("base", None)
        self.config = PTBConfig(**settings).with_(**overrides)
        self.test_limit = test_limit
        self.corpus = load_corpus(data_dir)

    @property
    def settings(self) -> dict[str, Any]:
        out = {k: v for k, v in self.config.to_dict().items() if k not in WHERE_AND_GRID}
        return {**out, "test_tokens": self.test_limit}

    def child_device(self) -> Any:
        from pynas.tasks.ptb import child_device

        return child_device(self.config)

    def train(self, arch: Any, point: Point) -> Trained:
        from pynas.arch import RNNCell
        from pynas.tasks.ptb import train_model

        cell = RNNCell.from_dict(arch)
        config = self.config.with_(lr=point["lr"], weight_decay=point["weight_decay"])
        options = {
            "vocab_size": self.corpus.vocab_size,
            "hidden_size": config.hidden,
            "num_layers": config.num_layers,
            "dropout": config.dropout,
            "tie_weights": config.tie_weights,
            "impl": config.impl,
        }
        result, model = train_model(
            cell,
            config,
            self.corpus,
            self.progress,
            build=lambda: build_model(cell, task="ptb", **options),
        )
        return _trained(result, result.metrics.get("ppl"), result.metrics.get("epoch_ppl"), model)

    def evaluate(self, model: nn.Module) -> float:
        from pynas.tasks.ptb import evaluate_ppl
        from pynas.tasks.ptb_data import batchify

        tokens = self.corpus.test[: self.test_limit] if self.test_limit else self.corpus.test
        data = batchify(tokens, self.config.eval_batch_size)
        return evaluate_ppl(model, data, self.config.bptt)  # type: ignore[arg-type]


class CIFAR10Retrain(RetrainTask):
    name, metric, higher_is_better = "cifar10", "accuracy", True
    axes = ("lr", "weight_decay", "bn_eps", "bn_momentum")

    def __init__(
        self,
        child: dict[str, Any],
        overrides: dict[str, Any],
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None = None,
        progress: bool = False,
    ) -> None:
        from pynas.tasks.cifar10 import load_cifar10
        from pynas.tasks.cifar10_search import split_settings

        super().__init__(progress)
        search, config = split_settings(child)
        self.search = search
        self.config = config.with_(test=False, **overrides)
        self.test_limit = test_limit
        self.data = load_cifar10(data_dir, search["variant"], search["valid_size"])

    @property
    def settings(self) -> dict[str, Any]:
        out = {k: v for k, v in self.config.to_dict().items() if k not in WHERE_AND_GRID}
        data = {k: self.search[k] for k in ("variant", "valid_size")}
        return {**out, **data, "test_images": self.test_limit}

    def train(self, arch: Any, point: Point) -> Trained:
        from pynas.arch import ConvNet
        from pynas.tasks.cifar10 import train_model
        from pynas.tasks.cifar10_data import NUM_CLASSES

        net = ConvNet.from_dict(arch)
        config = self.config.with_(lr=point["lr"], weight_decay=point["weight_decay"])
        options = {
            "num_classes": NUM_CLASSES,
            "image_channels": self.data.image_shape[0],
            "concat": config.concat,
            "bn_eps": point["bn_eps"],
            "bn_momentum": point["bn_momentum"],
        }
        result, model = train_model(
            net,
            config,
            self.data,
            self.progress,
            build=lambda: build_model(net, task="cifar10", **options),
        )
        curve = result.metrics.get("epoch_accuracy") or []
        return _trained(result, curve[-1] if curve else None, curve, model)

    def child_device(self) -> Any:
        from pynas.tasks.cifar10 import child_device

        return child_device(self.config)

    def evaluate(self, model: nn.Module) -> float:
        from pynas.tasks.cifar10 import evaluate_accuracy

        test = self.data.test.head(self.test_limit)
        return evaluate_accuracy(model, test, self.config.eval_batch_size)
