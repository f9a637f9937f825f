"""The PTB task: train a tree-cell language model, score it by validation perplexity.

Reward = c / ppl² with c = 80 (SPEC §5); the perplexity is the best validation perplexity
over the child's epochs. A NaN/Inf loss or perplexity, or an error while training, is a
recorded failure, never a crash of the caller. So is divergence (:func:`divergence`): a best
validation perplexity above the vocabulary size, the perplexity of the uniform model that
predicts every word with the same probability, means the child learned nothing usable; it is
failed with the failure reward and its perplexity is kept in the record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from pynas.arch import RNNCell
from pynas.children.language_model import CellLanguageModel
from pynas.children.tree_rnn import DEFAULT_IMPL
from pynas.progress_bar import ProgressBar
from pynas.tasks.base import CHILD_ERRORS, ChildResult
from pynas.tasks.device import check_device, parse_device
from pynas.tasks.ptb.corpus import Corpus, batchify, bptt_windows

REWARD_C = 80.0


@dataclass(frozen=True)
class PTBConfig:
    """How one child is trained. Defaults: the `pynas.train` single-architecture run."""

    hidden: int = 200
    num_layers: int = 2
    epochs: int = 1
    batch_size: int = 10  # 1-epoch NAS cell, hidden 200: val ppl 217 (20: 263)
    eval_batch_size: int = 10
    bptt: int = 35
    lr: float = 20.0
    lr_decay: float = 4.0  # divide the learning rate when validation does not improve
    clip: float = 0.25
    weight_decay: float = 0.0  # L2 penalty of the SGD update (0: none, as in the search)
    dropout: float = 0.2
    tie_weights: bool = True
    train_tokens: int | None = None  # use only the first N training tokens (small budgets)
    valid_tokens: int | None = None
    impl: str = DEFAULT_IMPL
    seed: int = 0
    device: str = "cpu"  # cpu, cuda or cuda:N: model, data and state live there

    def __post_init__(self) -> None:
        parse_device(self.device)

    def with_(self, **changes: Any) -> PTBConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reward_from_ppl(ppl: float) -> float:
    return REWARD_C / (ppl * ppl)


def divergence(ppl: float, vocab_size: int) -> str | None:
    """The failure reason of a child whose best validation perplexity `ppl` has diverged.

    The rule: worse than the uniform model over the vocabulary (perplexity = vocabulary size,
    10,000 for PTB); None if the child has not diverged.
    """
    if ppl > vocab_size:
        shown = f"{ppl:,.0f}" if ppl < 1e9 else f"{ppl:.3g}"
        uniform = f"{vocab_size:,}"
        return f"diverged: validation perplexity {shown} is above the uniform model's {uniform}"
    return None


def _detach(state):
    return [(h.detach(), c.detach()) for h, c in state]


def child_device(config: PTBConfig) -> torch.device:
    """The config's device, checked (DeviceError if unusable; the fused op needs CUDA kernels)."""
    ops = ("tree_cell_seq",) if config.impl == "fused" else ()
    return check_device(config.device, ops, fallback="--impl reference")


@torch.no_grad()
def evaluate_ppl(model: CellLanguageModel, data: torch.Tensor, bptt: int) -> float:
    """Perplexity of `model` on a batchified stream [steps, batch] (moved to the model's device)."""
    model.eval()
    data = data.to(next(model.parameters()).device)
    state = model.init_state(data.shape[1])
    total_loss, total_tokens = 0.0, 0
    for inputs, targets in bptt_windows(data, bptt):
        logits, state = model(inputs, state)
        loss = nn.functional.cross_entropy(
            logits.view(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        )
        total_loss += loss.item()
        total_tokens += targets.numel()
    mean = total_loss / total_tokens
    return math.exp(mean) if mean < 700 else math.inf


def train_child(
    arch: RNNCell,
    config: PTBConfig,
    corpus: Corpus,
    progress: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> ChildResult:
    """Train `arch` on PTB per `config`; metrics: ppl, params, seconds, epoch_ppl."""
    return _run(arch, config, corpus, progress, on_epoch, None, keep_best=False)[0]


def train_model(
    arch: RNNCell | None,
    config: PTBConfig,
    corpus: Corpus,
    progress: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
    build: Callable[[], nn.Module] | None = None,
) -> tuple[ChildResult, nn.Module | None]:
    """Like :func:`train_child`, and also return the trained model (None if training failed).

    The model carries the weights of its best validation epoch (the one `ppl` reports).
    `build()`, if given, makes the untrained model instead of the default
    ``CellLanguageModel(arch, vocab, config.hidden, ...)``; it is called after seeding, so a
    factory building the same module gets the same initial weights as :func:`train_child`.
    `arch` may be None when `build` is given (e.g. an LSTM or GRU baseline).
    """
    if arch is None and build is None:
        raise ValueError("train_model needs an architecture or a build() factory")
    return _run(arch, config, corpus, progress, on_epoch, build, keep_best=True)


def _run(
    arch: RNNCell | None,
    config: PTBConfig,
    corpus: Corpus,
    progress: bool,
    on_epoch: Callable[[int, float], None] | None,
    build: Callable[[], nn.Module] | None,
    keep_best: bool,
) -> tuple[ChildResult, nn.Module | None]:
    start = time.monotonic()
    try:
        return _train(arch, config, corpus, progress, on_epoch, start, build, keep_best)
    except CHILD_ERRORS as exc:
        return ChildResult.from_exception(exc, time.monotonic() - start), None


def _train(
    arch: RNNCell | None,
    config: PTBConfig,
    corpus: Corpus,
    progress: bool,
    on_epoch: Callable[[int, float], None] | None,
    start: float,
    build: Callable[[], nn.Module] | None = None,
    keep_best: bool = False,
) -> tuple[ChildResult, nn.Module | None]:
    device = child_device(config)
    torch.manual_seed(config.seed)  # seeds the CUDA generators too (dropout on the GPU)
    train_ids = corpus.train[: config.train_tokens] if config.train_tokens else corpus.train
    valid_ids = corpus.valid[: config.valid_tokens] if config.valid_tokens else corpus.valid
    train_data = batchify(train_ids, config.batch_size).to(device)
    valid_data = batchify(valid_ids, config.eval_batch_size).to(device)

    if build is not None:
        model = build()
    else:
        model = CellLanguageModel(
            arch,
            corpus.vocab_size,
            config.hidden,
            num_layers=config.num_layers,
            dropout=config.dropout,
            tie_weights=config.tie_weights,
            impl=config.impl,
        )
    model.to(device)  # built on the CPU after seeding: the same initial weights on any device
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_state: dict[str, torch.Tensor] | None = None
    windows_per_epoch = math.ceil((train_data.shape[0] - 1) / config.bptt)
    epoch_ppl: list[float] = []
    best = math.inf
    tokens = 0

    for epoch in range(1, config.epochs + 1):
        model.train()
        state = model.init_state(config.batch_size)
        bar = ProgressBar(
            windows_per_epoch, desc=f"epoch {epoch}/{config.epochs}", enabled=progress
        )
        for step, (inputs, targets) in enumerate(bptt_windows(train_data, config.bptt)):
            state = _detach(state)
            logits, state = model(inputs, state)
            loss = nn.functional.cross_entropy(
                logits.view(-1, logits.shape[-1]), targets.reshape(-1)
            )
            if not torch.isfinite(loss):
                return ChildResult.failed(
                    f"non-finite training loss ({loss.item()}) at epoch {epoch}, step {step}",
                    params=params, seconds=time.monotonic() - start, epoch_ppl=epoch_ppl,
                ), None  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            tokens += targets.numel()
            bar.update(1, loss=loss.item(), ppl=math.exp(min(loss.item(), 50)))
        bar.close()

        ppl = evaluate_ppl(model, valid_data, config.bptt)
        epoch_ppl.append(ppl)
        if on_epoch is not None:
            on_epoch(epoch, ppl)
        if not math.isfinite(ppl):
            return ChildResult.failed(
                f"non-finite validation perplexity at epoch {epoch}",
                params=params, seconds=time.monotonic() - start, epoch_ppl=epoch_ppl,
            ), None  # fmt: skip
        if ppl < best:
            best = ppl
            if keep_best and epoch < config.epochs:  # the last epoch's weights are in the model
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif keep_best:
                best_state = None
        else:
            for group in optimizer.param_groups:
                group["lr"] /= config.lr_decay

    diverged = divergence(best, corpus.vocab_size)
    if diverged is not None:
        return ChildResult.failed(
            diverged, ppl=best, params=params, seconds=time.monotonic() - start,
            epoch_ppl=epoch_ppl,
        ), None  # fmt: skip
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.monotonic() - start
    result = ChildResult(
        status="ok",
        reward=reward_from_ppl(best),
        metrics={
            "ppl": best,
            "params": params,
            "seconds": seconds,
            "epoch_ppl": epoch_ppl,
            "train_tokens_per_second": tokens / seconds,
        },
    )
    return result, model.eval()
