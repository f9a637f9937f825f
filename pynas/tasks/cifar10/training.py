"""The CIFAR-10 task: train a CNN child, score it by validation accuracy.

Reward = (max validation accuracy over the last 5 epochs) ** 3 (SPEC §5; the window and the
exponent are settings). Training is SGD with Nesterov momentum 0.9, learning rate 0.1 and
weight decay 1e-4 as in Zoph & Le; a cosine decay of the learning rate over the child's budget
is this project's default for short budgets (``lr_schedule="constant"`` gives the paper's).
A NaN/Inf loss, or an error while training, is a recorded failure, never a crash of the caller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from pynas.arch.conv_net import ConvNet
from pynas.children.conv_net import CONCAT_IMPLS, ConvChild, count_parameters
from pynas.progress_bar import ProgressBar
from pynas.tasks.base import CHILD_ERRORS, ChildResult
from pynas.tasks.cifar10.dataset import NUM_CLASSES, CifarData, Split, augment
from pynas.tasks.device import check_device, parse_device

LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class CIFAR10Config:
    """How one child is trained. Defaults: the `pynas.train --task cifar10` run."""

    epochs: int = 5
    batch_size: int = 64
    eval_batch_size: int = 500
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    augment: bool = False
    train_images: int | None = None  # use only the first N training images (small budgets)
    valid_images: int | None = None
    reward_epochs: int = 5  # reward from the best validation accuracy of the last K epochs
    reward_exponent: float = 3.0
    concat: str = "op"  # skip-concat implementation: "op" (compiled) or "reference"
    test: bool = False  # also report test accuracy of the final model (never used for reward)
    seed: int = 0
    device: str = "cpu"  # cpu, cuda or cuda:N: model, images and labels live there

    def __post_init__(self) -> None:
        parse_device(self.device)
        for name in ("epochs", "batch_size", "eval_batch_size", "reward_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("train_images", "valid_images"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or an integer >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.reward_exponent > 0:
            raise ValueError(f"reward_exponent must be > 0, got {self.reward_exponent}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.concat not in CONCAT_IMPLS:
            raise ValueError(f"concat must be one of {sorted(CONCAT_IMPLS)}, got {self.concat!r}")

    def with_(self, **changes: Any) -> CIFAR10Config:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reward_from_accuracies(epoch_accuracy: list[float], config: CIFAR10Config) -> float:
    """(max accuracy over the last `reward_epochs` epochs) ** `reward_exponent`."""
    return max(epoch_accuracy[-config.reward_epochs :]) ** config.reward_exponent


def child_device(config: CIFAR10Config) -> torch.device:
    """The config's device, checked (DeviceError if unusable; the skip-concat op needs CUDA
    kernels there)."""
    ops = ("skip_concat",) if config.concat == "op" else ()
    return check_device(config.device, ops, fallback="--concat reference")


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, split: Split, batch_size: int = 500) -> float:
    """Fraction of `split` classified correctly (eval mode: batch norm uses running stats),
    computed on the model's device."""
    model.eval()
    split = split.to(next(model.parameters()).device)
    correct = 0
    for start in range(0, len(split), batch_size):
        logits = model(split.images[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == split.labels[start : start + batch_size]).sum())
    return correct / max(len(split), 1)


def train_child(
    arch: ConvNet,
    config: CIFAR10Config,
    data: CifarData,
    progress: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> ChildResult:
    """Train `arch` on CIFAR-10 per `config`.

    Metrics: accuracy (the reward's base), epoch_accuracy, train_loss, params, seconds,
    train_images_per_second, and test_accuracy when ``config.test``.
    """
    return train_model(arch, config, data, progress, on_epoch)[0]


def train_model(
    arch: ConvNet,
    config: CIFAR10Config,
    data: CifarData,
    progress: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
    build: Callable[[], nn.Module] | None = None,
) -> tuple[ChildResult, nn.Module | None]:
    """Like :func:`train_child`, and also return the trained model after its last epoch
    (in eval mode; None if training failed).

    `build()`, if given, makes the untrained model instead of the default ``ConvChild``; it is
    called after seeding, so a factory building the same module gets the same initial weights.
    """
    start = time.monotonic()
    try:
        return _train(arch, config, data, progress, on_epoch, start, build)
    except CHILD_ERRORS as exc:
        return ChildResult.from_exception(exc, time.monotonic() - start), None


def _train(
    arch: ConvNet,
    config: CIFAR10Config,
    data: CifarData,
    progress: bool,
    on_epoch: Callable[[int, float], None] | None,
    start: float,
    build: Callable[[], nn.Module] | None = None,
) -> tuple[ChildResult, nn.Module | None]:
    device = child_device(config)
    torch.manual_seed(config.seed)
    # On the CPU whatever the device: the same batch order and augmentation everywhere.
    generator = torch.Generator().manual_seed(config.seed)
    train = data.train.head(config.train_images).to(device)
    valid = data.valid.head(config.valid_images).to(device)
    if build is not None:
        model = build()
    else:
        model = ConvChild(arch, NUM_CLASSES, data.image_shape[0], concat=config.concat)
    model.to(device)  # built on the CPU after seeding: the same initial weights on any device
    params = count_parameters(model)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    epoch_accuracy: list[float] = []
    train_loss: list[float] = []
    images, step, train_seconds = 0, 0, 0.0

    def failed(reason: str) -> ChildResult:
        return ChildResult.failed(
            reason, params=params, seconds=time.monotonic() - start,
            epoch_accuracy=epoch_accuracy, train_loss=train_loss,
        )  # fmt: skip

    for epoch in range(1, config.epochs + 1):
        model.train()
        bar = ProgressBar(steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", enabled=progress)
        order = torch.randperm(len(train), generator=generator)
        epoch_start, loss_sum = time.monotonic(), 0.0
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size].to(device)
            x, y = train.images[idx], train.labels[idx]
            if config.augment:
                x = augment(x, generator)
            if config.lr_schedule == "cosine":
                lr = 0.5 * config.lr * (1 + math.cos(math.pi * step / total_steps))
                for group in optimizer.param_groups:
                    group["lr"] = lr
            loss = nn.functional.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                bar.close()
                return failed(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch}, step {i}"
                ), None
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            images += y.shape[0]
            loss_sum += loss.item() * y.shape[0]
            bar.update(1, loss=loss.item())
        bar.close()
        train_seconds += time.monotonic() - epoch_start
        train_loss.append(loss_sum / len(train))
        accuracy = evaluate_accuracy(model, valid, config.eval_batch_size)
        epoch_accuracy.append(accuracy)
        if on_epoch is not None:
            on_epoch(epoch, accuracy)

    metrics: dict[str, Any] = {
        "accuracy": max(epoch_accuracy[-config.reward_epochs :]),
        "epoch_accuracy": epoch_accuracy,
        "train_loss": train_loss,
        "params": params,
        "train_images_per_second": images / train_seconds if train_seconds > 0 else 0.0,
    }
    if config.test:
        metrics["test_accuracy"] = evaluate_accuracy(model, data.test, config.eval_batch_size)
    metrics["seconds"] = time.monotonic() - start
    result = ChildResult(
        status="ok", reward=reward_from_accuracies(epoch_accuracy, config), metrics=metrics
    )
    return result, model.eval()
