"""`python -m pynas.train --task cifar10 --arch skip15 --epochs 5`: train and score one CNN.

`pynas.train` dispatches here for ``--task cifar10``; :func:`main` also runs on its own.
Argument errors (bad values, malformed architecture, missing or malformed data) exit with 2,
a failed child with 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from pynas.arch import NAMED_CONV_NETS, ArchitectureError, load_conv_net
from pynas.children.conv_net import CONCAT_IMPLS
from pynas.tasks.cifar10 import (
    LR_SCHEDULES,
    CIFAR10Config,
    child_device,
    load_cifar10,
    train_child,
)
from pynas.tasks.cifar10_data import VARIANTS
from pynas.tasks.data import DataError
from pynas.tasks.device import DEVICES_HELP, DeviceError, add_device_argument

DEFAULT_VALID_SIZE = 500


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The cifar10 options (everything but --task)."""
    d = CIFAR10Config()
    p.add_argument(
        "--arch",
        required=True,
        help=f"a named network ({', '.join(sorted(NAMED_CONV_NETS))}), a JSON file or inline JSON",
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
    p.add_argument("--valid-images", type=int, help="validate on the first N held-out images only")
    p.add_argument(
        "--reward-epochs", type=int, default=d.reward_epochs, help="reward from the last K epochs"
    )
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pynas.train",
        description="Train and score one CNN architecture on CIFAR-10 and print its reward.",
    )
    p.add_argument("--task", required=True, choices=["cifar10"], help="benchmark task")
    add_arguments(p)
    return p


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> CIFAR10Config:
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    try:
        config = CIFAR10Config(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
            weight_decay=args.weight_decay, lr_schedule=args.lr_schedule, augment=args.augment,
            train_images=args.train_images, valid_images=args.valid_images,
            reward_epochs=args.reward_epochs, reward_exponent=args.reward_exponent,
            concat=args.concat, test=args.test, seed=args.seed, device=args.device,
        )  # fmt: skip
    except ValueError as exc:
        parser.error(f"bad option: {exc}".replace("_", "-"))
    try:
        child_device(config)
    except DeviceError as exc:
        parser.error(str(exc))
    return config


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Train the architecture `args` describe; exit code 0 ok, 1 child failed (2 via parser)."""
    config = _config(parser, args)
    try:
        arch = load_conv_net(args.arch)
    except ArchitectureError as exc:
        parser.error(f"bad --arch: {exc}")
    try:
        data = load_cifar10(args.data_dir, args.variant, args.valid_size, seed=args.seed)
    except DataError as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    print(arch.render(data.image_shape[1], data.image_shape[0]), file=sys.stderr)
    print(
        f"data {data.source.name}: {len(data.train)} train / {len(data.valid)} validation / "
        f"{len(data.test)} test images; concat={config.concat} threads={args.threads} "
        f"device={config.device}",
        file=sys.stderr,
    )

    def report(epoch: int, accuracy: float) -> None:
        print(f"epoch {epoch}: validation accuracy {accuracy:.4f}", file=sys.stderr, flush=True)

    result = train_child(arch, config, data, progress=not args.quiet, on_epoch=report)
    record = {
        "arch": json.loads(arch.to_json()),
        "config": config.to_dict(),
        "data": {"file": data.source.name, "valid_size": args.valid_size},
        **result.to_dict(),
    }
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    return run(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
