"""Training and scoring the shared tree-cell language model: the engine of a weight-sharing search.

:class:`SharedEngine` owns one :class:`~pynas.children.shared_language_model.
SharedCellLanguageModel`, its optimizer, the position in the training stream and the hidden
state carried between windows. A search loop drives it with three calls:

- ``train_step(archs)``: one SGD step on the next BPTT window, the batch rows split between
  the m architectures (one fused-op call per layer); architectures that diverge are isolated
  (their rows masked) so they cannot poison the weights every architecture shares;
- ``score(archs)``: the m architectures on the next validation slice, in one batched forward
  (the slice's rows replicated once per architecture); a :class:`ChildResult` per architecture
  with ``ppl`` and reward ``c / ppl²`` (c = 80, as the PTB task);
- ``rank(archs)``: the same on a larger slice (default: the whole validation split), for the
  final leaderboard;

and ``state_dict`` / ``load_state_dict`` for checkpoints. The rules (what is shared, the
carried state, dropout, isolation, rewards of failures) are in docs/weight-sharing.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from pynas.arch import RNNCell
from pynas.children.shared_language_model import SharedCellLanguageModel
from pynas.children.tree_rnn import DEFAULT_IMPL
from pynas.ops.tree_cell import stack_programs
from pynas.tasks.base import ChildResult
from pynas.tasks.ptb.corpus import Corpus, batchify, bptt_windows
from pynas.tasks.ptb.training import divergence, reward_from_ppl

__all__ = [
    "CARRY_POLICIES",
    "FAILED_TOLD",
    "SharedConfig",
    "SharedEngine",
    "StepReport",
    "rows_per_program",
    "told_reward",
]

CARRY_POLICIES = ("keep", "reset")

#: What a strategy is told for an architecture whose shared-weight score failed: None, which
#: ``Strategy.tell`` takes as "failed" (each strategy documents what it does with a failure).
FAILED_TOLD: float | None = None

# Reasons a training row is masked (see StepReport.reasons).
NONFINITE_LOSS = "non-finite loss"
LOSS_ABOVE_LIMIT = "loss above limit"
LOSS_OUTLIER = "loss far above the step's median"
NONFINITE_STATE = "non-finite state"
NONFINITE_GRADIENT = "non-finite gradient"
# A step runs at most this many forward passes: the first, and one more after each round of
# masking (by loss or state, then by gradient).
MAX_ATTEMPTS = 3
# Scoring computes the decoder in chunks of about this many tokens (bounds the logits' memory).
SCORE_CHUNK_TOKENS = 4096


@dataclass(frozen=True)
class SharedConfig:
    """How the shared model is trained and scored."""

    base: int = 8
    hidden: int = 200
    num_layers: int = 2
    # Training rows per step, split between the step's architectures. 16, not ENAS's 64: at a
    # fixed time, more and smaller steps train the shared weights further (docs/weight-sharing.md).
    batch_size: int = 16
    bptt: int = 35
    lr: float = 20.0
    clip: float = 0.25
    weight_decay: float = 0.0
    dropout: float = 0.2
    tie_weights: bool = True
    carry_state: str = "keep"  # "keep": rows keep their state when their program changes
    # A training row is masked when its mean loss per token on the window is above this
    # multiple of ln(vocab), the uniform model's loss (2: ppl above vocab²; one window of a few
    # rows is noisy, so the limit is looser than the scoring rule, ppl above vocab).
    loss_limit_factor: float = 2.0
    # An architecture whose mean row loss is more than this many nats above the median
    # architecture's in the step is masked for the step (None: off): its gradient would
    # dominate the clipped update of the weights every architecture shares.
    outlier_nats: float | None = None
    # Clip each architecture's gradient through the layers and the embedding separately (to
    # ``clip``, as if it were trained alone, as ENAS trains one architecture per step) and the
    # decoder's once. Runs one fused-op call per architecture and layer instead of one per
    # layer, so a bad architecture's gradient cannot shrink the others' update.
    clip_per_arch: bool = True
    eval_batch_size: int = 10  # validation rows per scored architecture
    score_windows: int = 2  # BPTT windows per score() call (2 x 35 x 10 = 700 tokens)
    train_tokens: int | None = None  # use only the first N training tokens
    valid_tokens: int | None = None  # use only the first N validation tokens
    impl: str = DEFAULT_IMPL
    seed: int = 0

    def __post_init__(self) -> None:
        if self.carry_state not in CARRY_POLICIES:
            raise ValueError(
                f"carry_state must be one of {CARRY_POLICIES}, got {self.carry_state!r}"
            )
        for name in ("base", "hidden", "num_layers", "batch_size", "bptt", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.score_windows < 1:
            raise ValueError(f"score_windows must be >= 1, got {self.score_windows}")
        if not self.loss_limit_factor > 0:
            raise ValueError(f"loss_limit_factor must be > 0, got {self.loss_limit_factor}")
        if self.outlier_nats is not None and not self.outlier_nats > 0:
            raise ValueError(f"outlier_nats must be > 0 or None, got {self.outlier_nats}")

    def with_(self, **changes: Any) -> SharedConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepReport:
    """What one ``train_step`` did; lists are per architecture, in the order given."""

    step: int  # steps taken before this one (0-based index of this step)
    epoch: int  # 1-based epoch of the training stream
    window: int  # index of the BPTT window in the epoch
    loss: float | None  # mean loss per token of the rows trained on (None: nothing trained)
    grad_norm: float | None  # before clipping (None: no backward, or not finite)
    skipped: str | None  # why the optimizer step was not taken (None: it was)
    attempts: int  # forward passes run
    rows: list[int]
    masked_rows: list[int]
    reasons: list[dict[str, int]]  # per architecture: masked rows by reason
    # per architecture: mean loss per token of its rows in the last forward (None: no finite
    # row in it), masked rows included
    losses: list[float | None]

    @property
    def failed(self) -> list[bool]:
        """Architectures all of whose rows were masked in this step."""
        return [m == r for m, r in zip(self.masked_rows, self.rows, strict=True)]


@dataclass
class Totals:
    """Counters over the engine's life (checkpointed with it)."""

    steps: int = 0
    skipped_steps: int = 0
    rows: int = 0
    masked_rows: int = 0
    steps_with_masking: int = 0
    reasons: Counter = field(default_factory=Counter)
    skip_reasons: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = dict(self.reasons)
        out["skip_reasons"] = dict(self.skip_reasons)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        return cls(
            **{k: v for k, v in data.items() if k not in ("reasons", "skip_reasons")},
            reasons=Counter(data["reasons"]),
            skip_reasons=Counter(data["skip_reasons"]),
        )


def rows_per_program(programs: int, rows: int) -> torch.Tensor:
    """row_program [rows]: `programs` contiguous groups of (as nearly as possible) equal size."""
    if not 1 <= programs <= rows:
        raise ValueError(f"cannot split {rows} batch rows between {programs} architectures")
    return torch.arange(rows) * programs // rows


def told_reward(result: ChildResult) -> float | None:
    """The reward a strategy is told for a scored architecture (failures: FAILED_TOLD)."""
    return result.reward if result.ok else FAILED_TOLD


class SharedEngine:
    """The shared model with its optimizer, data position and carried state (see module doc)."""

    def __init__(self, config: SharedConfig, corpus: Corpus) -> None:
        self.config = config
        self.vocab_size = corpus.vocab_size
        torch.manual_seed(config.seed)
        train_ids = corpus.train[: config.train_tokens] if config.train_tokens else corpus.train
        valid_ids = corpus.valid[: config.valid_tokens] if config.valid_tokens else corpus.valid
        self.valid_ids = valid_ids
        self.train_data = batchify(train_ids, config.batch_size)
        self.valid_data = batchify(valid_ids, config.eval_batch_size)
        self.train_starts = list(range(0, self.train_data.shape[0] - 1, config.bptt))
        self.valid_starts = list(range(0, self.valid_data.shape[0] - 1, config.bptt))
        self.loss_limit = config.loss_limit_factor * math.log(corpus.vocab_size)
        self.model = SharedCellLanguageModel(
            config.base,
            corpus.vocab_size,
            config.hidden,
            num_layers=config.num_layers,
            dropout=config.dropout,
            tie_weights=config.tie_weights,
            impl=config.impl,
        )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.epoch = 1
        self.window = 0  # next training window of the epoch
        self.score_window = 0  # next validation window score() starts at
        self.state = self.model.init_state(config.batch_size)
        self.row_programs: torch.Tensor | None = None  # [B, 2N+3]: what each row ran last
        self.totals = Totals()

    @property
    def windows_per_epoch(self) -> int:
        return len(self.train_starts)

    # ----- training ---------------------------------------------------------------------------
    def _next_window(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.window >= len(self.train_starts):
            self.epoch += 1
            self.window = 0
            self.state = self.model.init_state(self.config.batch_size)
            self.row_programs = None
        start = self.train_starts[self.window]
        length = min(self.config.bptt, self.train_data.shape[0] - 1 - start)
        self.window += 1
        return (
            self.train_data[start : start + length],
            self.train_data[start + 1 : start + 1 + length],
        )

    def _carried_state(self, row_programs: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.config.carry_state == "keep" or self.row_programs is None:
            return self.state
        changed = (row_programs != self.row_programs).any(dim=1, keepdim=True)
        return [(h.masked_fill(changed, 0.0), c.masked_fill(changed, 0.0)) for h, c in self.state]

    def train_step(self, archs: Sequence[RNNCell]) -> StepReport:
        """One SGD step on the next training window; row b runs ``archs[row_program[b]]``.

        Rows whose loss is non-finite or whose new state is non-finite are masked and the step
        re-run without them. Rows whose loss is above the limit, and the rows of architectures
        far above the step's median loss (``outlier_nats``), are masked (left out of the
        loss). If the gradient is still non-finite, the rows whose state gradient is
        non-finite are masked and the step re-run once more; the step is skipped when no row
        can be blamed. Masked rows start the next window from a zero state.
        """
        config = self.config
        programs = self._programs(archs)
        batch = config.batch_size
        row_program = rows_per_program(len(archs), batch)
        row_programs = programs[row_program]
        inputs, targets = self._next_window()
        state = self._carried_state(row_programs)
        report = StepReport(
            step=self.totals.steps, epoch=self.epoch, window=self.window - 1, loss=None,
            grad_norm=None, skipped=None, attempts=0,
            rows=torch.bincount(row_program, minlength=len(archs)).tolist(),
            masked_rows=[0] * len(archs), reasons=[Counter() for _ in archs],
            losses=[None] * len(archs),
        )  # fmt: skip
        keep = torch.ones(batch, dtype=torch.bool)

        def mask(rows: torch.Tensor, reason: str) -> None:
            rows = rows[keep[rows]]  # count each row once
            keep[rows] = False
            for program in row_program[rows].tolist():
                report.masked_rows[program] += 1
                report.reasons[program][reason] += 1

        self.model.train()
        params = list(self.model.parameters())
        rows, new_state = torch.arange(batch), None
        for _ in range(MAX_ATTEMPTS):
            rows = keep.nonzero().flatten()
            if rows.numel() == 0:
                # the last attempt's state belongs to rows now masked: carry none of it
                report.skipped, new_state = "every row masked", None
                break
            report.attempts += 1
            start = [
                (h[rows].detach().requires_grad_(), c[rows].detach().requires_grad_())
                for h, c in state
            ]
            if config.clip_per_arch:
                logits, new_state, split = self._forward_split(
                    inputs[:, rows], start, programs, row_program[rows]
                )
            else:
                logits, new_state = self.model(inputs[:, rows], start, programs, row_program[rows])
            token_loss = nn.functional.cross_entropy(
                logits.view(-1, logits.shape[-1]), targets[:, rows].reshape(-1), reduction="none"
            )
            token_loss = token_loss.view(targets.shape[0], -1)
            row_loss = token_loss.detach().mean(dim=0)
            report.losses = _program_means(row_loss, row_program[rows], len(archs))
            nonfinite = ~torch.isfinite(row_loss)
            bad_state = ~nonfinite & ~_finite_rows(new_state)
            if nonfinite.any() or bad_state.any():
                # NaN/Inf in the forward would reach the shared gradients (0 * NaN = NaN):
                # run the step again without these rows.
                mask(rows[nonfinite], NONFINITE_LOSS)
                mask(rows[bad_state], NONFINITE_STATE)
                new_state = None
                continue
            # Finite rows above the limit only drop out of the loss: their gradient is 0.
            above = row_loss > self.loss_limit
            mask(rows[above], LOSS_ABOVE_LIMIT)
            outliers = self._outliers(row_loss, row_program[rows], ~above)
            mask(rows[outliers], LOSS_OUTLIER)
            above |= outliers
            if above.all():
                report.skipped = "every row masked"
                break
            loss = token_loss[:, ~above].mean()
            self.optimizer.zero_grad(set_to_none=True)
            if config.clip_per_arch:
                norm, blamed = self._backward_split(loss, split, ~above)
            else:
                loss.backward()
                norm = float(nn.utils.clip_grad_norm_(params, config.clip))
                blamed = ~_finite_rows([(h.grad, c.grad) for h, c in start])
            if math.isfinite(norm):
                report.loss, report.grad_norm = loss.item(), norm
                self.optimizer.step()
                break
            self.optimizer.zero_grad(set_to_none=True)
            if not blamed.any():
                report.skipped = NONFINITE_GRADIENT + " (no row to blame)"
                break
            mask(rows[blamed], NONFINITE_GRADIENT)
        else:
            report.skipped = f"still failing after {MAX_ATTEMPTS} attempts"
        self._carry(rows, keep, new_state, row_programs)
        self._count(report)
        return report

    def _forward_split(
        self,
        tokens: torch.Tensor,
        start: list[tuple[torch.Tensor, torch.Tensor]],
        programs: torch.Tensor,
        row_program: torch.Tensor,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], _Split]:
        """The model's forward with one layer call per architecture, each on its own alias of
        the layer parameters (so each gets its own gradient) and the embedding output detached
        (so its gradient can be scaled per row before it reaches the embedding)."""
        model = self.model
        embedded = model.dropout(model.embedding(tokens))
        split = _Split(embedded, embedded.detach().requires_grad_())
        tops, states = [], []
        for program in row_program.unique().tolist():  # ascending: rows come in this order
            idx = (row_program == program).nonzero().flatten()
            one = torch.zeros(idx.numel(), dtype=torch.int64)
            x, layer_states, aliases = split.embedded_leaf[:, idx], [], []
            for layer, (h, c) in zip(model.layers, start, strict=True):
                params = {n: p.detach().requires_grad_() for n, p in layer.named_parameters()}
                x, layer_state = torch.func.functional_call(
                    layer, params, (x, (h[idx], c[idx]), programs[program : program + 1], one)
                )
                x = model.dropout(x)
                layer_states.append(layer_state)
                aliases.append(params)
            split.groups.append((idx, aliases))
            tops.append(x)
            states.append(layer_states)
        new_state = [
            (torch.cat([s[i][0] for s in states]), torch.cat([s[i][1] for s in states]))
            for i in range(len(model.layers))
        ]
        return model.decoder(torch.cat(tops, dim=1)), new_state, split

    def _backward_split(
        self, loss: torch.Tensor, split: _Split, kept: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        """Backward of :meth:`_forward_split`'s loss, clipping the decoder's gradient and each
        architecture's (layers + embedding) separately. Returns the norm of the gradient
        applied (nan if not finite) and the rows to blame for a non-finite gradient."""
        clip = self.config.clip
        loss.backward()
        decoder = self.model.decoder
        decoder_norm = float(nn.utils.clip_grad_norm_([decoder.weight, decoder.bias], clip))
        blamed = torch.zeros_like(kept)
        embedded_grad = split.embedded_leaf.grad
        factors = torch.ones(kept.numel())
        scales = []
        for idx, aliases in split.groups:
            squares = sum(float(p.grad.square().sum()) for a in aliases for p in a.values())
            squares += float(embedded_grad[:, idx].square().sum())
            norm = math.sqrt(squares)
            if not math.isfinite(norm):
                blamed[idx] = True
                continue
            # the architecture's share of the mean loss: clip its own mean-loss gradient
            share = float(kept[idx].sum()) / float(kept.sum())
            own = norm / share if share > 0 else 0.0
            factors[idx] = min(1.0, clip / own) if own > 0 else 1.0
            scales.append(factors[idx[0]].item())
        if blamed.any() or not math.isfinite(decoder_norm):
            return math.nan, blamed
        for layer_index, layer in enumerate(self.model.layers):
            for name, param in layer.named_parameters():
                param.grad = sum(
                    scale * aliases[layer_index][name].grad
                    for scale, (_, aliases) in zip(scales, split.groups, strict=True)
                )
        split.embedded.backward(embedded_grad * factors[None, :, None])
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))), blamed

    def _outliers(
        self, row_loss: torch.Tensor, row_program: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Rows of the architectures whose mean loss over their `valid` rows is more than
        ``outlier_nats`` above the median architecture's."""
        outliers = torch.zeros_like(valid)
        if self.config.outlier_nats is None:
            return outliers
        programs = row_program[valid].unique()
        if programs.numel() < 2:
            return outliers
        means = torch.stack([row_loss[valid & (row_program == p)].mean() for p in programs])
        # the lower median: with two architectures, the better one is the reference
        limit = means.median() + self.config.outlier_nats
        for program, mean in zip(programs, means, strict=True):
            if mean > limit:
                outliers |= valid & (row_program == program)
        return outliers

    def _carry(self, rows, keep, new_state, row_programs) -> None:
        """The state of the next window: the last forward's, zero for masked rows."""
        carried = self.model.init_state(self.config.batch_size)
        if new_state is not None:
            kept = keep[rows]
            carried = [
                (
                    h0.index_copy(0, rows[kept], h.detach()[kept]),
                    c0.index_copy(0, rows[kept], c.detach()[kept]),
                )
                for (h0, c0), (h, c) in zip(carried, new_state, strict=True)
            ]
        self.state = carried
        self.row_programs = row_programs

    def _count(self, report: StepReport) -> None:
        totals = self.totals
        totals.steps += 1
        totals.rows += sum(report.rows)
        masked = sum(report.masked_rows)
        totals.masked_rows += masked
        totals.steps_with_masking += masked > 0
        for reasons in report.reasons:
            totals.reasons.update(reasons)
        report.reasons = [dict(r) for r in report.reasons]
        if report.skipped is not None:
            totals.skipped_steps += 1
            totals.skip_reasons[report.skipped] += 1

    def _programs(self, archs: Sequence[RNNCell]) -> torch.Tensor:
        if not archs:
            raise ValueError("expected at least one architecture")
        bases = {a.base for a in archs}
        if bases != {self.config.base}:
            raise ValueError(
                f"the shared model is base {self.config.base}; got architectures of base "
                f"{sorted(bases)}"
            )
        return stack_programs(archs)

    # ----- scoring ----------------------------------------------------------------------------
    def score(self, archs: Sequence[RNNCell], windows: int | None = None) -> list[ChildResult]:
        """Score `archs` on the next `windows` validation windows (default: the config's).

        Every architecture sees the same rows, from a zero state; the slice moves on with
        every call and wraps around the validation split.
        """
        windows = windows or self.config.score_windows
        windows = min(windows, len(self.valid_starts))
        if self.score_window + windows > len(self.valid_starts):
            self.score_window = 0
        first = self.valid_starts[self.score_window]
        if self.score_window + windows < len(self.valid_starts):
            end = self.valid_starts[self.score_window + windows] + 1
        else:
            end = self.valid_data.shape[0]
        self.score_window += windows
        return self.evaluate(archs, self.valid_data[first:end])

    def rank(
        self,
        archs: Sequence[RNNCell],
        valid_tokens: int | None = None,
        per_call: int = 8,
        batch_size: int | None = None,
    ) -> list[ChildResult]:
        """Score `archs` on the first `valid_tokens` validation tokens (default: all the
        engine's), `per_call` architectures per batched forward; results in the given order."""
        ids = self.valid_ids[:valid_tokens] if valid_tokens else self.valid_ids
        data = batchify(ids, batch_size or self.config.eval_batch_size)
        results: list[ChildResult] = []
        for first in range(0, len(archs), per_call):
            results.extend(self.evaluate(archs[first : first + per_call], data))
        return results

    @torch.no_grad()
    def evaluate(self, archs: Sequence[RNNCell], data: torch.Tensor) -> list[ChildResult]:
        """Each of `archs` on the batchified tokens `data` [steps, rows], in one batched pass
        per window: the rows are replicated once per architecture."""
        programs = self._programs(archs)
        count, width = len(archs), data.shape[1]
        tokens = data.repeat(1, count)  # architecture k reads columns k*width .. (k+1)*width-1
        row_program = torch.arange(count).repeat_interleave(width)
        self.model.eval()
        state = self.model.init_state(tokens.shape[1])
        loss_sum = torch.zeros(tokens.shape[1], dtype=torch.float64)
        scored = 0
        for inputs, targets in bptt_windows(tokens, self.config.bptt):
            hidden, state = self.model.hidden_states(inputs, state, programs, row_program)
            loss_sum += self._row_loss_sums(hidden, targets)
            scored += targets.shape[0]
        self.model.train()
        loss = loss_sum.view(count, width).sum(dim=1) / (scored * width)
        return [self._score_result(float(v), scored * width) for v in loss]

    def _row_loss_sums(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        steps, rows = targets.shape
        chunk = max(1, SCORE_CHUNK_TOKENS // rows)
        sums = torch.zeros(rows, dtype=torch.float64)
        for t in range(0, steps, chunk):
            logits = self.model.decoder(hidden[t : t + chunk])
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets[t : t + chunk].reshape(-1),
                reduction="none",
            )
            sums += loss.view(-1, rows).sum(dim=0, dtype=torch.float64)
        return sums

    def _score_result(self, loss: float, tokens: int) -> ChildResult:
        """A scored architecture fails as a standalone child does: a non-finite loss, or a
        perplexity above the uniform model's (:func:`pynas.tasks.ptb.divergence`; ppl kept)."""
        if not math.isfinite(loss):
            return ChildResult.failed(f"{NONFINITE_LOSS} with the shared weights", tokens=tokens)
        ppl = math.exp(loss) if loss < 700 else math.inf
        diverged = divergence(ppl, self.vocab_size)
        if diverged is not None:
            return ChildResult.failed(f"{diverged} (shared weights)", ppl=ppl, tokens=tokens)
        return ChildResult(
            status="ok", reward=reward_from_ppl(ppl), metrics={"ppl": ppl, "tokens": tokens}
        )

    # ----- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, data position, carried
        state, counters and torch's global RNG (dropout draws from it)."""
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "window": self.window,
            "score_window": self.score_window,
            "state": [(h.clone(), c.clone()) for h, c in self.state],
            "row_programs": None if self.row_programs is None else self.row_programs.clone(),
            "totals": self.totals.to_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["config"] != self.config.to_dict():
            raise ValueError("checkpoint was written with other settings than this engine's")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = state["epoch"]
        self.window = state["window"]
        self.score_window = state["score_window"]
        self.state = [(h.clone(), c.clone()) for h, c in state["state"]]
        rows = state["row_programs"]
        self.row_programs = None if rows is None else rows.clone()
        self.totals = Totals.from_dict(state["totals"])
        torch.set_rng_state(state["torch_rng"])


@dataclass
class _Split:
    """What :meth:`SharedEngine._forward_split` hands to its backward."""

    embedded: torch.Tensor  # the embedding output (after dropout), attached to the embedding
    embedded_leaf: torch.Tensor  # the same values, detached: the layers' input
    # per architecture: its rows (in the step's subset) and, per layer, its parameter aliases
    groups: list[tuple[torch.Tensor, list[dict[str, torch.Tensor]]]] = field(default_factory=list)


def _program_means(
    row_loss: torch.Tensor, row_program: torch.Tensor, count: int
) -> list[float | None]:
    """Mean of the finite `row_loss` of each of `count` programs (None: no finite row)."""
    out: list[float | None] = []
    for program in range(count):
        values = row_loss[(row_program == program) & torch.isfinite(row_loss)]
        out.append(float(values.mean()) if values.numel() else None)
    return out


def _finite_rows(state: Sequence[tuple[torch.Tensor | None, torch.Tensor | None]]) -> torch.Tensor:
    """[B] bool: rows whose every tensor of `state` (per layer h and c, [B, H]) is finite."""
    ok: torch.Tensor | None = None
    for pair in state:
        for t in pair:
            if t is None:
                continue
            row_ok = torch.isfinite(t.detach()).all(dim=1)
            ok = row_ok if ok is None else ok & row_ok
    assert ok is not None, "no state tensors"
    return ok
