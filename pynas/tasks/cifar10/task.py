"""CIFAR-10 as a task: the CNN space, progressive depth, child training, budgets, retraining.

A search's child settings (:class:`CIFAR10Child`, the ``budget_settings.child`` object of
``run.json``) are :class:`CIFAR10Config` fields plus these search settings:

* ``start_depth`` (layers of the first children), ``depth_every`` and ``depth_step``:
  the depth grows by `depth_step` every `depth_every` sampled architectures (SPEC §6; the paper:
  2 every 1,600, from 6), capped at ``max_depth`` if set. The depth of a batch is fixed when it
  is asked for, from the number of children sampled before it, so a resumed search continues
  at the same depth.
* ``stride1``: the paper's variant with stride fixed to 1 (no stride decision).
* ``extra_choices``: more per-layer decisions, e.g. ``{"pool": ["none", "max"]}``.
* ``anchors``: skip connections chosen by anchor attention (False: each layer reads the last).
* ``variant`` (``small``/``jpeg``/``full``) and ``valid_size``: which file, how many training
  images are held out for validation (split seed fixed, independent of the search seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pynas.arch import NAMED_CONV_NETS, ArchitectureError, ConvNet, load_conv_net
from pynas.argtypes import UsageError
from pynas.children.baseline_rnn import BASELINES
from pynas.children.conv_net import CONCAT_IMPLS, ConvChild
from pynas.io import write_atomic
from pynas.spaces.conv_space import PAPER_CHOICES, STRIDE1_CHOICES, ConvNetSpace
from pynas.tasks.base import (
    Budget,
    ChildResult,
    Metric,
    ModelFactory,
    Retraining,
    RetrainOverrides,
    SearchTask,
    Task,
    Trained,
)
from pynas.tasks.cifar10.dataset import NAME, NUM_CLASSES, VARIANTS, load_cifar10
from pynas.tasks.cifar10.fetch import CIFAR10_MD5, CIFAR10_URL, fetch_cifar10
from pynas.tasks.cifar10.training import (
    LR_SCHEDULES,
    CIFAR10Config,
    child_device,
    evaluate_accuracy,
    train_child,
    train_model,
)
from pynas.tasks.device import DEVICES_HELP, add_device_argument

ACCURACY = Metric("accuracy", higher_is_better=True, spec=".4f", column="val acc")
DEFAULT_VALID_SIZE = 500


def depth_at(sampled: int, start: int, every: int, step: int, max_depth: int | None) -> int:
    """Depth of children asked for after `sampled` architectures: start + step·⌊sampled/every⌋."""
    depth = start + step * (sampled // every)
    return min(depth, max_depth) if max_depth is not None else depth


@dataclass(frozen=True)
class CIFAR10Child:
    """A search's CIFAR-10 children: the space and depth schedule, the data, the training."""

    start_depth: int = 6
    depth_every: int = 1600
    depth_step: int = 2
    max_depth: int | None = None
    stride1: bool = False
    extra_choices: Mapping[str, list[Any]] | None = None
    anchors: bool = True
    variant: str = "small"
    valid_size: int = DEFAULT_VALID_SIZE
    train: CIFAR10Config = field(default_factory=CIFAR10Config)

    def __post_init__(self) -> None:
        for name, low in (("start_depth", 1), ("depth_every", 1), ("depth_step", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"cifar10 search setting {name} must be an integer >= {low}, got {value!r}"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CIFAR10Child:
        search = {f.name for f in fields(cls)} - {"train"}
        return cls(
            **{k: v for k, v in data.items() if k in search},
            train=CIFAR10Config(**{k: v for k, v in data.items() if k not in search}),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "train"}
        if out["extra_choices"] is not None:
            out["extra_choices"] = {k: list(v) for k, v in out["extra_choices"].items()}
        train = {k: v for k, v in self.train.to_dict().items() if k != "seed"}
        return {**out, **train}

    def space(self) -> ConvNetSpace:
        choices = dict(STRIDE1_CHOICES if self.stride1 else PAPER_CHOICES)
        choices.update({k: tuple(v) for k, v in (self.extra_choices or {}).items()})
        return ConvNetSpace(self.start_depth, choices, anchors=self.anchors)

    def depth_at(self, sampled: int) -> int:
        return depth_at(sampled, self.start_depth, self.depth_every, self.depth_step,
                        self.max_depth)  # fmt: skip


def _child(**settings: Any) -> CIFAR10Child:
    return CIFAR10Child.from_dict(settings)


def default_budget() -> Budget:
    """A laptop budget: about 8 minutes on one core (14 at most); small one-epoch children."""
    return Budget(
        children=128,
        batch_size=8,
        grads_per_update=1,
        child=_child(
            start_depth=3, depth_every=64, depth_step=2, max_depth=5, epochs=1, batch_size=64,
            train_images=600, valid_images=500, reward_epochs=5, reward_exponent=3.0,
        ),  # fmt: skip
        time_limit=840.0,
        description=(
            "laptop budget: 128 children (depth 3, then 5 after 64), 1 epoch on 600 images, "
            "validated on 500; m=8; stops by 14 min"
        ),
    )


def paper_budget() -> Budget:
    """SPEC §6 / Zoph & Le: 12,800 children of 50 epochs, depth 6 +2 every 1,600, m=8."""
    return Budget(
        children=12_800,
        batch_size=8,
        grads_per_update=1,
        child=_child(
            start_depth=6, depth_every=1600, depth_step=2, epochs=50, batch_size=128, lr=0.1,
            momentum=0.9, nesterov=True, weight_decay=1e-4, lr_schedule="constant",
            augment=True,
            variant="full",  # python -m pynas.data fetch cifar10 --dest DIR
            valid_size=5000,
        ),  # fmt: skip
        description=(
            "SPEC §6 shape: depth 6 +2 every 1,600 of 12,800 children, 50 epochs each, m=8, on "
            "the full CIFAR-10 with 5,000 of its 50,000 training images held out, as the paper"
        ),
        preset="paper",
    )


class CIFAR10Task(Task):
    name = NAME
    help = "CIFAR-10 image classification with CNNs (needs the data: --data-dir)"
    metric = ACCURACY
    trains_on_device = True
    retrain_grid = {"lr": [0.1, 0.05], "weight_decay": [1e-4, 5e-4], "bn_eps": [1e-5],
                    "bn_momentum": [0.1]}  # fmt: skip

    # ----- the search ---------------------------------------------------------------------------
    def budgets(self) -> dict[str, Callable[[], Budget]]:
        return {"default": default_budget, "paper": paper_budget}

    def child_settings(self, data: Mapping[str, Any]) -> CIFAR10Child:
        return CIFAR10Child.from_dict(data)

    def with_device(self, child: CIFAR10Child, device: str) -> CIFAR10Child:  # type: ignore[override]
        return replace(child, train=child.train.with_(device=device))

    def device_of(self, child: CIFAR10Child) -> str:  # type: ignore[override]
        return child.train.device

    def check_device(self, child: CIFAR10Child) -> None:  # type: ignore[override]
        child_device(child.train)

    def search_task(
        self, child: CIFAR10Child, seed: int, data_dir: str | os.PathLike[str] | None
    ) -> SearchTask:  # type: ignore[override]
        """CIFAR-10 children (raises pynas.tasks.data.DataError when the data is missing)."""
        config = child.train
        data = load_cifar10(data_dir, child.variant, child.valid_size)
        space = child.space()

        def before_ask(sampled: int) -> None:
            space.set_depth(child.depth_at(sampled))

        def evaluate(arch: Any, index: int) -> ChildResult:
            # Each child its own seed: a child trained again after a kill gets the same result.
            return train_child(arch, config.with_(seed=seed * 1_000_003 + index), data)

        describe = (
            f"CIFAR-10 ({data.source.name}, {len(data.train)} train / {len(data.valid)} "
            f"validation), depth {child.start_depth} +{child.depth_step} every "
            f"{child.depth_every}"
        )
        return SearchTask(self.name, space, evaluate, describe, before_ask=before_ask)

    # ----- after the search ---------------------------------------------------------------------
    def retraining(
        self,
        child: CIFAR10Child,
        overrides: RetrainOverrides,
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None,
    ) -> CIFAR10Retraining:  # type: ignore[override]
        for name in ("hidden", "dropout"):
            if getattr(overrides, name) is not None:
                raise ValueError(f"{name} is not a setting of {self.name} children")
        changes: dict[str, Any] = {"seed": overrides.seed, "valid_images": overrides.valid_limit}
        if overrides.device is not None:
            changes["device"] = overrides.device
        if overrides.epochs is not None:
            changes["epochs"] = overrides.epochs
        if overrides.change_train_limit:
            changes["train_images"] = overrides.train_limit
        return CIFAR10Retraining(child, child.train.with_(test=False, **changes), data_dir,
                                 test_limit)  # fmt: skip

    def build_model(self, arch: Any, options: dict[str, Any]) -> nn.Module:
        if isinstance(arch, str) and arch in BASELINES:
            raise ValueError(_not_a_conv_net(arch))
        if isinstance(arch, ConvNet):
            net = arch
        elif isinstance(arch, str):
            net = load_conv_net(arch)
        else:
            net = ConvNet.from_dict(arch)
        options = {"num_classes": NUM_CLASSES, "image_channels": 3, **options}
        bn_eps = options.pop("bn_eps", None)  # not in the state dict: kept as build options
        bn_momentum = options.pop("bn_momentum", None)
        model = ConvChild(net, **options)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                if bn_eps is not None:
                    module.eps = float(bn_eps)
                if bn_momentum is not None:
                    module.momentum = float(bn_momentum)
        return model

    def arch_from_json(self, text: str) -> Any:
        return json.loads(text)

    def evaluate_saved(
        self, model: nn.Module, data_dir: str | os.PathLike[str] | None, split: str,
        batch_size: int | None, bptt: int, limit: int | None, variant: str, valid_size: int,
    ) -> float:  # fmt: skip
        data = getattr(load_cifar10(data_dir, variant, valid_size), split).head(limit)
        return evaluate_accuracy(model, data, batch_size or 500)

    # ----- python -m pynas.train --task cifar10 -------------------------------------------------
    def add_train_arguments(self, p: argparse.ArgumentParser) -> None:
        d = CIFAR10Config()
        p.add_argument(
            "--arch",
            required=True,
            help=f"a named network ({', '.join(sorted(NAMED_CONV_NETS))}), a JSON file or "
            "inline JSON",
        )
        p.add_argument("--data-dir", help="directory with the task's files (default: $PYNAS_DATA)")
        p.add_argument(
            "--variant",
            choices=sorted(VARIANTS),
            default="small",
            help="small: cifar10_small.npz (3,660 lossless train images); "
            "jpeg: cifar10_small_jpeg.npz (10,000 JPEG-degraded); full: cifar10_full.npz (all "
            "50,000; make it with python -m pynas.data fetch cifar10 --dest DIR)",
        )
        p.add_argument(
            "--valid-size",
            type=int,
            default=DEFAULT_VALID_SIZE,
            help="training images held out for validation (stratified, fixed seed)",
        )
        p.add_argument("--epochs", type=int, default=d.epochs)
        p.add_argument("--batch-size", type=int, default=d.batch_size)
        p.add_argument("--lr", type=float, default=d.lr)
        p.add_argument("--momentum", type=float, default=d.momentum)
        p.add_argument("--weight-decay", type=float, default=d.weight_decay)
        p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule)
        p.add_argument(
            "--augment", action="store_true", help="random 4-px-padded crops and horizontal flips"
        )
        p.add_argument("--train-images", type=int, help="train on the first N training images only")
        p.add_argument(
            "--valid-images", type=int, help="validate on the first N held-out images only"
        )
        p.add_argument(
            "--reward-epochs", type=int, default=d.reward_epochs,
            help="reward from the last K epochs",
        )  # fmt: skip
        p.add_argument("--reward-exponent", type=float, default=d.reward_exponent)
        p.add_argument(
            "--concat", choices=sorted(CONCAT_IMPLS), default=d.concat, help="skip-concat kernel"
        )
        p.add_argument(
            "--test", action="store_true", help="also report test accuracy (never used for reward)"
        )
        add_device_argument(p, f"where the model trains: {DEVICES_HELP}")
        p.add_argument("--seed", type=int, default=d.seed)
        p.add_argument(
            "--threads",
            type=int,
            default=1,
            help="torch intra-op threads (default 1: small convs gain little from more, and on "
            "shared cores more threads can be much slower)",
        )
        p.add_argument("--output", help="write the result as JSON to this file")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def train_command(self, args: argparse.Namespace) -> int:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        try:
            config = CIFAR10Config(
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                momentum=args.momentum, weight_decay=args.weight_decay,
                lr_schedule=args.lr_schedule, augment=args.augment,
                train_images=args.train_images, valid_images=args.valid_images,
                reward_epochs=args.reward_epochs, reward_exponent=args.reward_exponent,
                concat=args.concat, test=args.test, seed=args.seed, device=args.device,
            )  # fmt: skip
        except ValueError as exc:
            raise UsageError(f"bad option: {exc}".replace("_", "-")) from None
        child_device(config)  # DeviceError: exit 2
        if args.arch in BASELINES:
            raise UsageError(_not_a_conv_net(args.arch))
        try:
            arch = load_conv_net(args.arch)
        except ArchitectureError as exc:
            raise UsageError(f"bad --arch: {exc}") from None
        data = load_cifar10(args.data_dir, args.variant, args.valid_size, seed=args.seed)
        torch.set_num_threads(args.threads)
        print(arch.render(data.image_shape[1], data.image_shape[0]), file=sys.stderr)
        print(
            f"data {data.source.name}: {len(data.train)} train / {len(data.valid)} validation / "
            f"{len(data.test)} test images; concat={config.concat} threads={args.threads} "
            f"device={config.device}",
            file=sys.stderr,
        )

        def report(epoch: int, accuracy: float) -> None:
            print(f"epoch {epoch}: validation accuracy {accuracy:.4f}", file=sys.stderr,
                  flush=True)  # fmt: skip

        result = train_child(arch, config, data, progress=not args.quiet, on_epoch=report)
        record = {
            "arch": json.loads(arch.to_json()),
            "config": config.to_dict(),
            "data": {"file": data.source.name, "valid_size": args.valid_size},
            **result.to_dict(),
        }
        if args.output:
            write_atomic(Path(args.output), json.dumps(record, indent=2) + "\n")
        if not result.ok:
            print(f"child failed: {result.reason}", file=sys.stderr)
            return 1
        m = result.metrics
        test = f"  test accuracy {m['test_accuracy']:.4f}" if "test_accuracy" in m else ""
        print(
            f"validation accuracy {m['accuracy']:.4f}  reward {result.reward:.6g}{test}  "
            f"params {m['params']:,}  {m['seconds']:.1f}s  "
            f"{m['train_images_per_second']:.0f} train images/s"
        )
        return 0

    # ----- python -m pynas.data fetch cifar10 ---------------------------------------------------
    def fetch(self, dest: str | os.PathLike[str], url: str | None, md5: str | None,
              say: Callable[[str], None]) -> Path:  # fmt: skip
        return fetch_cifar10(dest, url or CIFAR10_URL, md5 or CIFAR10_MD5, say=say)


class CIFAR10Retraining(Retraining):
    """The run's child settings, the point's learning rate, weight decay and batch-norm
    eps/momentum; the score is the validation accuracy of the final model."""

    def __init__(
        self,
        child: CIFAR10Child,
        config: CIFAR10Config,
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__(NAME, ACCURACY, progress)
        self.child = child
        self.config = config
        self.test_limit = test_limit
        self.data = load_cifar10(data_dir, child.variant, child.valid_size)

    @property
    def settings(self) -> dict[str, Any]:
        where_and_grid = ("lr", "weight_decay", "device")  # not part of a point's result
        out = {k: v for k, v in self.config.to_dict().items() if k not in where_and_grid}
        data = {"variant": self.child.variant, "valid_size": self.child.valid_size}
        return {**out, **data, "test_images": self.test_limit}

    def train(self, arch: Any, point: dict[str, float], build: ModelFactory) -> Trained:
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
            net, config, self.data, self.progress, build=lambda: build(net, options)
        )
        curve = result.metrics.get("epoch_accuracy") or []
        return Trained.of(result, curve[-1] if curve else None, curve, model)

    def child_device(self) -> Any:
        return child_device(self.config)

    def evaluate(self, model: nn.Module) -> float:
        test = self.data.test.head(self.test_limit)
        return evaluate_accuracy(model, test, self.config.eval_batch_size)


def _not_a_conv_net(name: str) -> str:
    return (
        f"{name!r} is a baseline of the PTB language models (nn.{name.upper()} layers), not a "
        "CIFAR-10 network: use --task ptb, or a CIFAR-10 architecture"
    )
