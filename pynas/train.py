"""Train one architecture: `python -m pynas.train --task ptb --arch nas_cell --epochs 1`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from pynas.arch import NAMED_CELLS, ArchitectureError, load_rnn_cell
from pynas.children.language_model import hidden_for_param_budget
from pynas.children.tree_rnn import DEFAULT_IMPL, IMPLS
from pynas.tasks.data import DataError
from pynas.tasks.device import DEVICES_HELP, DeviceError, add_device_argument
from pynas.tasks.ptb import PTBConfig, child_device, load_corpus, train_child


def build_parser() -> argparse.ArgumentParser:
    defaults = PTBConfig()
    p = argparse.ArgumentParser(
        prog="python -m pynas.train",
        description="Train and score one architecture (one child) and print its reward.",
    )
    p.add_argument("--task", required=True, choices=["ptb", "cifar10"], help="benchmark task")
    p.add_argument(
        "--arch",
        required=True,
        help=f"a named architecture ({', '.join(sorted(NAMED_CELLS))}), a JSON file or inline JSON",
    )
    p.add_argument("--data-dir", help="directory with the task's files (default: $PYNAS_DATA)")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument(
        "--hidden", type=int, default=defaults.hidden, help="hidden (and embedding) size"
    )
    p.add_argument("--params-budget", type=int, help="choose --hidden to fit this many parameters")
    p.add_argument("--layers", type=int, default=defaults.num_layers)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--bptt", type=int, default=defaults.bptt)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--clip", type=float, default=defaults.clip)
    p.add_argument("--dropout", type=float, default=defaults.dropout)
    p.add_argument("--no-tie", action="store_true", help="do not tie embedding and softmax weights")
    p.add_argument("--train-tokens", type=int, help="train on the first N tokens only")
    p.add_argument("--valid-tokens", type=int, help="validate on the first N tokens only")
    p.add_argument("--impl", choices=IMPLS, default=DEFAULT_IMPL, help="cell implementation")
    add_device_argument(p, f"where the model trains: {DEVICES_HELP}")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (default: torch's, one per core; use 1 on a busy machine)",
    )
    p.add_argument("--output", help="write the result as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _check_positive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("epochs", "hidden", "layers", "batch_size", "bptt"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    for name in ("lr", "clip"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name} must be > 0, got {getattr(args, name)}")
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task")
    if pre.parse_known_args(argv)[0].task == "cifar10":
        from pynas import train_cifar10  # its own options: see pynas/train_cifar10.py

        return train_cifar10.main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_positive(parser, args)
    try:
        arch = load_rnn_cell(args.arch)
    except ArchitectureError as exc:
        parser.error(f"bad --arch: {exc}")
    try:
        corpus = load_corpus(args.data_dir)
    except DataError as exc:
        parser.error(str(exc))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    hidden = args.hidden
    if args.params_budget:
        hidden = hidden_for_param_budget(
            arch.base, corpus.vocab_size, args.params_budget, args.layers, not args.no_tie
        )
    config = PTBConfig(
        hidden=hidden, num_layers=args.layers, epochs=args.epochs, batch_size=args.batch_size,
        bptt=args.bptt, lr=args.lr, clip=args.clip, dropout=args.dropout,
        tie_weights=not args.no_tie, train_tokens=args.train_tokens,
        valid_tokens=args.valid_tokens, impl=args.impl, seed=args.seed, device=args.device,
    )  # fmt: skip
    try:
        child_device(config)
    except DeviceError as exc:
        parser.error(str(exc))
    print(arch.render(), file=sys.stderr)
    print(
        f"hidden={hidden} vocab={corpus.vocab_size} impl={args.impl} device={args.device}",
        file=sys.stderr,
    )

    def report(epoch: int, ppl: float) -> None:
        print(f"epoch {epoch}: validation perplexity {ppl:.2f}", file=sys.stderr, flush=True)

    result = train_child(arch, config, corpus, progress=not args.quiet, on_epoch=report)
    record = {"arch": json.loads(arch.to_json()), "config": config.to_dict(), **result.to_dict()}
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    if not result.ok:
        print(f"child failed: {result.reason}", file=sys.stderr)
        return 1
    m = result.metrics
    print(
        f"validation perplexity {m['ppl']:.2f}  reward {result.reward:.6g}  "
        f"params {m['params']:,}  {m['seconds']:.1f}s  {m['train_tokens_per_second']:.0f} tokens/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
