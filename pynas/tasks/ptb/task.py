"""Penn Treebank as a task: recurrent cells scored by validation perplexity (SPEC §7).

Everything the rest of pynas needs of it: the child settings of a search (:class:`PTBChild`),
the named budgets, the search task, retraining, the model builder of ``pynas.build_model``, the
evaluation of a saved model and the options of ``python -m pynas.train --task ptb``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pynas.arch import NAMED_CELLS, ArchitectureError, RNNCell, load_rnn_cell
from pynas.argtypes import UsageError
from pynas.children.baseline_rnn import BASELINES, RNNLanguageModel, hidden_for_budget
from pynas.children.language_model import CellLanguageModel, hidden_for_param_budget
from pynas.children.tree_rnn import DEFAULT_IMPL, IMPLS
from pynas.io import write_atomic
from pynas.spaces import RNNCellSpace
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
from pynas.tasks.device import DEVICES_HELP, add_device_argument
from pynas.tasks.ptb.corpus import NAME, batchify, load_corpus
from pynas.tasks.ptb.training import (
    PTBConfig,
    child_device,
    evaluate_ppl,
    train_child,
    train_model,
)

PPL = Metric("ppl", higher_is_better=False, spec=".1f", column="ppl")
# Zaremba et al.'s "medium" PTB LSTM (2x650, untied): the parameter count the paper matches.
MEDIUM_BASELINE_PARAMS = 19_780_400
VOCAB = 10_000


@dataclass(frozen=True)
class PTBChild:
    """A search's PTB children: base-`base` cells trained per `train` (its seed is replaced
    by one per child, from the run's seed and the child's index)."""

    base: int = 8
    train: PTBConfig = field(default_factory=PTBConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PTBChild:
        settings = dict(data)
        base = int(settings.pop("base", 8))
        return cls(base, PTBConfig(**settings))

    def to_dict(self) -> dict[str, Any]:
        train = {k: v for k, v in self.train.to_dict().items() if k != "seed"}
        return {"base": self.base, **train}


def _child(**settings: Any) -> PTBChild:
    return PTBChild.from_dict(settings)


def paper_budget() -> Budget:
    hidden = hidden_for_param_budget(8, VOCAB, MEDIUM_BASELINE_PARAMS, 2, tie_weights=False)
    return Budget(
        # The paper gives no child count for its PTB search; 12,800 is its CIFAR-10 count.
        children=12_800,
        # Zoph & Le §4.2 (PTB): S=20, K=400, m=1 ("400 networks being trained on 400 CPUs
        # concurrently"), an update once 10 gradients have accumulated, controller lr 5e-4.
        batch_size=1,
        grads_per_update=10,
        child=_child(
            base=8, hidden=hidden, num_layers=2, epochs=35, batch_size=20, bptt=35, lr=1.0,
            lr_decay=1.2, clip=5.0, dropout=0.5, tie_weights=False,
        ),  # fmt: skip
        description=(
            f"SPEC §6: base 8, hidden {hidden} (medium-baseline parameter count), 35 epochs, "
            "m=1, an update per 10 gradients (the paper's PTB search)"
        ),
        preset="paper",
    )


def default_budget() -> Budget:
    return Budget(
        children=400,
        batch_size=4,
        grads_per_update=1,
        child=_child(
            base=8, hidden=32, num_layers=2, epochs=1, batch_size=20, bptt=35, lr=20.0,
            clip=0.25, dropout=0.0, tie_weights=True, train_tokens=30_000, valid_tokens=4_000,
            eval_batch_size=20,
        ),  # fmt: skip
        time_limit=510.0,
        description="laptop budget: tiny children, stops after 8.5 minutes of search",
    )


class PTBTask(Task):
    name = NAME
    help = "PTB language modelling (the copy inside pynas, or --data-dir)"
    metric = PPL
    trains_on_device = True
    retrain_grid = {"lr": [20.0, 10.0], "weight_decay": [0.0, 1e-6]}
    retrain_options = ("hidden", "dropout", "params_budget")
    baselines = BASELINES

    # ----- the search ---------------------------------------------------------------------------
    def budgets(self) -> dict[str, Callable[[], Budget]]:
        return {"default": default_budget, "paper": paper_budget}

    def child_settings(self, data: Mapping[str, Any]) -> PTBChild:
        return PTBChild.from_dict(data)

    def with_device(self, child: PTBChild, device: str) -> PTBChild:  # type: ignore[override]
        return replace(child, train=child.train.with_(device=device))

    def device_of(self, child: PTBChild) -> str:  # type: ignore[override]
        return child.train.device

    def check_device(self, child: PTBChild) -> None:  # type: ignore[override]
        child_device(child.train)

    def search_task(
        self, child: PTBChild, seed: int, data_dir: str | os.PathLike[str] | None
    ) -> SearchTask:  # type: ignore[override]
        config = child.train
        corpus = load_corpus(data_dir)

        def evaluate(arch: Any, index: int) -> ChildResult:
            # Each child its own seed: a child trained again after a kill gets the same result.
            return train_child(arch, config.with_(seed=seed * 1_000_003 + index), corpus)

        describe = f"PTB, base-{child.base} cells, {config}"
        return SearchTask(self.name, RNNCellSpace(child.base), evaluate, describe)

    # ----- after the search ---------------------------------------------------------------------
    def retraining(
        self,
        child: PTBChild,
        overrides: RetrainOverrides,
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None,
    ) -> PTBRetraining:  # type: ignore[override]
        changes: dict[str, Any] = {"seed": overrides.seed, "valid_tokens": overrides.valid_limit}
        if overrides.device is not None:
            changes["device"] = overrides.device
        if overrides.epochs is not None:
            changes["epochs"] = overrides.epochs
        if overrides.change_train_limit:
            changes["train_tokens"] = overrides.train_limit
        for name in ("hidden", "dropout"):
            if getattr(overrides, name) is not None:
                changes[name] = getattr(overrides, name)
        budget = overrides.params_budget
        return PTBRetraining(child.train.with_(**changes), data_dir, test_limit,
                             params_budget=budget)  # fmt: skip

    def build_model(self, arch: Any, options: dict[str, Any]) -> nn.Module:
        """A cell's ``CellLanguageModel``, or for ``"lstm"`` / ``"gru"`` the baseline
        ``RNNLanguageModel`` of the same harness (its options: vocab_size, hidden_size,
        num_layers, dropout, tie_weights)."""
        options = {"vocab_size": VOCAB, "hidden_size": 200, **options}
        if is_baseline(arch):
            if "impl" in options:  # the tree cell's kernel; nn.LSTM / nn.GRU have their own
                raise ValueError(f"option impl applies to tree cells, not to the {arch} baseline")
            return RNNLanguageModel(arch, **options)
        cell = arch if isinstance(arch, RNNCell) else load_rnn_cell(arch)
        return CellLanguageModel(cell, **options)

    def arch_from_json(self, text: str) -> RNNCell | str:
        """A saved model's architecture: a cell, or the name of a baseline (JSON string)."""
        value = json.loads(text)
        return value if is_baseline(value) else RNNCell.from_dict(value)

    def evaluate_saved(
        self, model: nn.Module, data_dir: str | os.PathLike[str] | None, split: str,
        batch_size: int | None, bptt: int, limit: int | None, variant: str, valid_size: int,
    ) -> float:  # fmt: skip
        tokens = getattr(load_corpus(data_dir), split)
        tokens = tokens[:limit] if limit else tokens
        return evaluate_ppl(model, batchify(tokens, batch_size or 10), bptt)  # type: ignore[arg-type]

    # ----- python -m pynas.train --task ptb -----------------------------------------------------
    def add_train_arguments(self, p: argparse.ArgumentParser) -> None:
        defaults = PTBConfig()
        p.add_argument(
            "--arch",
            required=True,
            help=f"a named architecture ({', '.join(sorted(NAMED_CELLS))}), a JSON file or "
            f"inline JSON; or a baseline of the same harness: {' or '.join(BASELINES)} "
            "(nn.LSTM / nn.GRU layers)",
        )
        p.add_argument("--data-dir", help="directory with the task's files (default: $PYNAS_DATA)")
        p.add_argument("--epochs", type=int, default=defaults.epochs)
        p.add_argument(
            "--hidden", type=int, default=defaults.hidden, help="hidden (and embedding) size"
        )
        p.add_argument(
            "--params-budget",
            type=int,
            help="choose --hidden to fit this many parameters (for a cell, an lstm or a gru: "
            "equal budgets give comparable models)",
        )
        p.add_argument("--layers", type=int, default=defaults.num_layers)
        p.add_argument("--batch-size", type=int, default=defaults.batch_size)
        p.add_argument("--bptt", type=int, default=defaults.bptt)
        p.add_argument("--lr", type=float, default=defaults.lr)
        p.add_argument("--clip", type=float, default=defaults.clip)
        p.add_argument("--dropout", type=float, default=defaults.dropout)
        p.add_argument(
            "--no-tie", action="store_true", help="do not tie embedding and softmax weights"
        )
        p.add_argument("--train-tokens", type=int, help="train on the first N tokens only")
        p.add_argument("--valid-tokens", type=int, help="validate on the first N tokens only")
        p.add_argument(
            "--impl", choices=IMPLS, help=f"tree-cell implementation (default {DEFAULT_IMPL})"
        )
        add_device_argument(p, f"where the model trains: {DEVICES_HELP}")
        p.add_argument("--seed", type=int, default=defaults.seed)
        p.add_argument(
            "--threads",
            type=int,
            help="torch intra-op threads (default: torch's, one per core; use 1 on a busy "
            "machine)",
        )
        p.add_argument("--output", help="write the result as JSON to this file")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    def train_command(self, args: argparse.Namespace) -> int:
        _check_train_arguments(args)
        arch: RNNCell | str
        if is_baseline(args.arch):
            if args.impl is not None:
                raise UsageError(f"--impl applies to tree cells, not to the {args.arch} baseline")
            arch = args.arch
        else:
            try:
                arch = load_rnn_cell(args.arch)
            except ArchitectureError as exc:
                raise UsageError(f"bad --arch: {exc}") from None
        impl = args.impl or DEFAULT_IMPL
        corpus = load_corpus(args.data_dir)  # DataError: exit 2
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        hidden = args.hidden
        if args.params_budget:
            try:
                hidden = hidden_for_budget(
                    arch, corpus.vocab_size, args.params_budget, args.layers, not args.no_tie
                )
            except ValueError as exc:
                raise UsageError(f"--params-budget: {exc}") from None
        config = PTBConfig(
            hidden=hidden, num_layers=args.layers, epochs=args.epochs,
            batch_size=args.batch_size, bptt=args.bptt, lr=args.lr, clip=args.clip,
            dropout=args.dropout, tie_weights=not args.no_tie, train_tokens=args.train_tokens,
            valid_tokens=args.valid_tokens, impl=impl, seed=args.seed, device=args.device,
        )  # fmt: skip
        child_device(config)  # DeviceError: exit 2
        if isinstance(arch, RNNCell):
            print(arch.render(), file=sys.stderr)
        kind = f"{arch} baseline" if isinstance(arch, str) else f"impl={impl}"
        print(f"hidden={hidden} vocab={corpus.vocab_size} {kind} device={args.device}",
              file=sys.stderr)  # fmt: skip

        def report(epoch: int, ppl: float) -> None:
            print(f"epoch {epoch}: validation perplexity {ppl:.2f}", file=sys.stderr, flush=True)

        if isinstance(arch, str):
            baseline = arch  # a name for the closure (mypy: arch is RNNCell | str)
            result, _ = train_model(
                None, config, corpus, progress=not args.quiet, on_epoch=report,
                build=lambda: RNNLanguageModel(
                    baseline, corpus.vocab_size, hidden, config.num_layers, config.dropout,
                    config.tie_weights,
                ),
            )  # fmt: skip
            arch_value: Any = arch
        else:
            result = train_child(arch, config, corpus, progress=not args.quiet, on_epoch=report)
            arch_value = json.loads(arch.to_json())
        record = {"arch": arch_value, "config": config.to_dict(), **result.to_dict()}
        if args.output:
            write_atomic(Path(args.output), json.dumps(record, indent=2) + "\n")
        if not result.ok:
            print(f"child failed: {result.reason}", file=sys.stderr)
            return 1
        m = result.metrics
        print(
            f"validation perplexity {m['ppl']:.2f}  reward {result.reward:.6g}  "
            f"params {m['params']:,}  {m['seconds']:.1f}s  "
            f"{m['train_tokens_per_second']:.0f} tokens/s"
        )
        return 0


def is_baseline(arch: Any) -> bool:
    """Whether `arch` names an LSTM or GRU baseline (``"lstm"``, ``"gru"``)."""
    return isinstance(arch, str) and arch in BASELINES


def _check_train_arguments(args: argparse.Namespace) -> None:
    for name in ("epochs", "hidden", "layers", "batch_size", "bptt"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    for name in ("lr", "clip"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name} must be > 0, got {getattr(args, name)}")
    if not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")


class PTBRetraining(Retraining):
    """The run's child settings (with the command line's overrides), SGD with the point's
    learning rate and weight decay; the score is the best validation perplexity and the model
    keeps that epoch's weights. An architecture is a cell or a baseline (``"lstm"``, ``"gru"``:
    ``RNNLanguageModel`` on the same harness); with `params_budget` each one's hidden size is
    the largest that fits that many parameters (:func:`hidden_for_budget`), else the settings'."""

    def __init__(
        self,
        config: PTBConfig,
        data_dir: str | os.PathLike[str] | None,
        test_limit: int | None = None,
        progress: bool = False,
        params_budget: int | None = None,
    ) -> None:
        super().__init__(NAME, PPL, progress)
        self.config = config
        self.test_limit = test_limit
        self.params_budget = params_budget
        self.corpus = load_corpus(data_dir)
        if params_budget is not None:  # ValueError now (exit 2) if no model fits it
            hidden_for_budget("lstm", self.corpus.vocab_size, params_budget, config.num_layers,
                              config.tie_weights)  # fmt: skip

    @property
    def settings(self) -> dict[str, Any]:
        where_and_grid = ("lr", "weight_decay", "device")  # not part of a point's result
        out = {k: v for k, v in self.config.to_dict().items() if k not in where_and_grid}
        if self.params_budget is not None:  # the hidden size is each model's own
            out["hidden"] = None
            out["params_budget"] = self.params_budget
        return {**out, "test_tokens": self.test_limit}

    def child_device(self) -> Any:
        return child_device(self.config)

    def hidden_of(self, arch: RNNCell | str) -> int:
        if self.params_budget is None:
            return self.config.hidden
        config = self.config
        return hidden_for_budget(arch, self.corpus.vocab_size, self.params_budget,
                                 config.num_layers, config.tie_weights)  # fmt: skip

    def train(self, arch: Any, point: dict[str, float], build: ModelFactory) -> Trained:
        model_arch: RNNCell | str = arch if is_baseline(arch) else RNNCell.from_dict(arch)
        hidden = self.hidden_of(model_arch)
        config = self.config.with_(lr=point["lr"], weight_decay=point["weight_decay"],
                                   hidden=hidden)  # fmt: skip
        options = {
            "vocab_size": self.corpus.vocab_size,
            "hidden_size": hidden,
            "num_layers": config.num_layers,
            "dropout": config.dropout,
            "tie_weights": config.tie_weights,
        }
        cell = None
        if isinstance(model_arch, RNNCell):
            cell, options["impl"] = model_arch, config.impl
        result, model = train_model(
            cell, config, self.corpus, self.progress, build=lambda: build(model_arch, options)
        )
        return Trained.of(result, result.metrics.get("ppl"), result.metrics.get("epoch_ppl"), model)

    def evaluate(self, model: nn.Module) -> float:
        tokens = self.corpus.test[: self.test_limit] if self.test_limit else self.corpus.test
        data = batchify(tokens, self.config.eval_batch_size)
        return evaluate_ppl(model, data, self.config.bptt)  # type: ignore[arg-type]
