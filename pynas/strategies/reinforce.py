"""REINFORCE with the LSTM controller (SPEC §1, §4), plain or sample-efficient.

Told results are grouped into batches of m architectures; each batch gives one gradient,
computed by the pure :func:`pynas.controller.compute_gradient` at the current parameter version;
once g gradients have accumulated their mean is applied with Adam and the version increments.
With ``epochs`` > 1 the same batches then give ``epochs`` − 1 more Adam steps, each with PPO's
clipped surrogate against their log-probabilities at the first step. What a reward means for
the gradient (its advantage), whether ``ask`` avoids architectures seen before, and whether the
best architectures seen so far are imitated are settings (:class:`ReinforceSettings`).
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from pynas.controller import Controller, ControllerConfig
from pynas.controller.policy_gradient import gradient_and_log_prob
from pynas.controller.threads import single_thread
from pynas.spaces.decision import Decisions, DecisionSpace
from pynas.strategies.base import Strategy
from pynas.strategies.presets import DEFAULT_PRESET, ReinforceSettings, preset

Key = tuple[int, ...]
# novel asks (see Reinforce._ask_novel): draws per temperature level, and the largest boost
LEVEL_DRAWS, LEVEL_MIN, MAX_BOOST = 32, 256, 1024.0


@dataclass
class Gradient:
    """One batch's gradient, tagged with the parameter version it was computed at."""

    version: int
    tensors: dict[str, torch.Tensor]
    batch_size: int


@dataclass
class _Batch:
    """A batch kept for the clipped epochs of its update."""

    indices: torch.Tensor  # [m, T]
    advantages: torch.Tensor  # [m]
    old_log_prob: torch.Tensor  # [m], at the update's first step


class Reinforce(Strategy):
    """Policy-gradient search with the LSTM controller.

    ``settings`` is a preset name (``"default"``, ``"paper"``, ``"enas"``) or a
    :class:`ReinforceSettings`; keyword ``overrides`` change single settings of a named preset.
    A failure (reward ``None``) gets the worst advantage of its batch (``failure_reward`` with
    the ``"baseline"`` advantage, the lowest rank with the rank advantages) and never enters
    the imitated elite.
    """

    name = "reinforce"

    def __init__(
        self,
        space: DecisionSpace,
        settings: str | ReinforceSettings = DEFAULT_PRESET,
        batch_size: int = 8,
        grads_per_update: int = 1,
        seed: int | None = None,
        controller_config: ControllerConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(space)
        if isinstance(settings, str):
            settings = preset(settings, getattr(space, "family", "generic"), **overrides)
        elif overrides:
            raise ValueError("overrides apply to a named preset only")
        if batch_size < 1 or grads_per_update < 1:
            raise ValueError("batch_size and grads_per_update must be >= 1")
        self.settings = settings
        self.batch_size = batch_size
        self.grads_per_update = grads_per_update
        base = controller_config or ControllerConfig()
        self.controller_config = ControllerConfig(
            hidden=base.hidden,
            layers=base.layers,
            init_range=base.init_range,
            temperature=settings.temperature,
            tanh_constant=settings.tanh_constant,
        )
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        controller_cls = getattr(space, "controller_class", Controller)  # CNN: anchor attention
        self.controller = controller_cls(space, self.controller_config, generator=self.generator)
        # fused: one kernel for all ~20 parameter tensors; the per-tensor loop costs ~7x more
        self.optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=settings.lr, betas=settings.adam_betas, fused=True
        )
        self.baseline: float | None = None
        self.version = 0
        self._buffer: list[tuple[Decisions, float | None]] = []
        self._grads: list[Gradient] = []
        self._batches: list[_Batch] = []  # for the clipped epochs of the pending update
        # memory of the search (kept only when a setting uses it)
        self._seen: dict[Key, None] = {}  # every architecture asked or told (novel asks)
        self._told_rewards: list[float] = []  # sorted successful rewards (history ranks)
        self._elite: list[tuple[float, Key]] = []  # best told, best first

    # ----- ask / tell -------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Any]:
        self._check_n(n)
        if n == 0:
            return []
        with single_thread():
            rows = self._ask_novel(n) if self.settings.novel else self._sample(n)
        return [self.space.to_arch(self.space.decode(row)) for row in rows]

    def tell(self, archs: Sequence[Any], rewards: Sequence[float | None]) -> None:
        values = self._check_told(archs, rewards)
        for arch, reward in zip(archs, values, strict=True):
            self._buffer.append((self.space.from_arch(arch), reward))
        with single_thread():
            self._learn()

    def _sample(self, n: int, boost: float = 1.0) -> list[list[int]]:
        with self._temperature(boost):
            out = self.controller.sample(n, generator=self.generator)
        return out.indices.tolist()

    @contextmanager
    def _temperature(self, boost: float) -> Iterator[None]:
        """Sample `boost` times hotter than the policy (the policy itself is unchanged)."""
        if boost == 1.0:
            yield
            return
        config = self.controller.config
        self.controller.config = replace(config, temperature=(config.temperature or 1.0) * boost)
        try:
            yield
        finally:
            self.controller.config = config

    def _ask_novel(self, n: int) -> list[list[int]]:
        """`n` architectures never asked or told before (distinct from each other).

        Rejection sampling from the policy; when a level's draws hold too few new architectures
        the policy is sampled at a doubled temperature, and past MAX_BOOST repeats are allowed
        (a space that is nearly exhausted). A level draws LEVEL_DRAWS x the missing number (at
        least LEVEL_MIN) in one call (the cost of a call is mostly its steps, not its rows); the
        first level tries a call of a quarter of that first, which is enough while the policy
        still spreads its mass.
        """
        out: list[list[int]] = []
        boost, first = 1.0, True
        if len(self._seen) >= self.space.size:  # nothing new is left: sample as usual
            boost = 2 * MAX_BOOST
        while len(out) < n:
            missing = n - len(out)
            if boost > MAX_BOOST:
                out += self._sample(missing)
                break
            draws = max(LEVEL_MIN, LEVEL_DRAWS * missing) // (4 if first else 1)
            for row in self._sample(draws, boost):
                key = tuple(row)
                if key not in self._seen:
                    self._seen[key] = None
                    out.append(row)
                    if len(out) == n:
                        break
            if not first:
                boost *= 2
            first = False
        for row in out:
            self._seen[tuple(row)] = None
        return out

    def _learn(self) -> None:
        while len(self._buffer) >= self.batch_size:
            batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            keys = [tuple(self.space.encode(d)) for d, _ in batch]  # encoded once per batch
            rewards = [r for _, r in batch]
            grad, batch_state = self._batch_gradient(keys, rewards)
            if self.settings.epochs > 1:
                self._batches.append(batch_state)
            self._grads.append(grad)
            self._update_baseline(rewards)
            self._remember(keys, rewards)
            if len(self._grads) >= self.grads_per_update:
                self.apply(self._grads)
                for _ in range(self.settings.epochs - 1):
                    self.apply([self._clipped_gradient(b) for b in self._batches])
                self._grads, self._batches = [], []

    # ----- advantages and the memory of the search ----------------------------------------------
    def _advantages(self, rewards: Sequence[float | None]) -> torch.Tensor:
        """The weight of each architecture's log-probability (see ReinforceSettings)."""
        s = self.settings
        if s.advantage in ("baseline", "batch_standard"):
            values = torch.tensor(
                [s.failure_reward if r is None else r for r in rewards], dtype=torch.float32
            )
            if s.advantage == "batch_standard":
                spread = float(values.std()) if len(values) > 1 else 0.0
                return (values - values.mean()) / (spread if spread > 1e-12 else 1.0)
            baseline = self.baseline if self.baseline is not None else float(values.mean())
            return values - baseline
        successes = sorted(r for r in rewards if r is not None)
        if s.advantage == "batch_rank":
            population, count = successes, len(rewards)
            failures = len(rewards) - len(successes)
        else:  # history_rank: among every reward told so far and this batch's
            population = sorted(self._told_rewards + successes)
            count, failures = len(population), 0
        out = []
        for r in rewards:
            if r is None or count <= 1:
                out.append(-0.5 if r is None and count > 1 else 0.0)
                continue
            below = bisect.bisect_left(population, r)
            ties = bisect.bisect_right(population, r) - below
            rank = failures + below + (ties - 1) / 2  # 0 = worst .. count - 1 = best
            out.append(rank / (count - 1) - 0.5)
        return torch.tensor(out, dtype=torch.float32)

    def _remember(self, keys: Sequence[Key], rewards: Sequence[float | None]) -> None:
        s = self.settings
        for key, reward in zip(keys, rewards, strict=True):
            if s.novel:
                self._seen[key] = None
            if reward is None:
                continue
            if s.advantage == "history_rank":
                bisect.insort(self._told_rewards, reward)
            if s.elite_size:
                self._elite = _merged_elite(self._elite, [(reward, key)], s.elite_size)

    def _elite_rows(self, keys: Sequence[Key], rewards: Sequence[float | None]) -> Any:
        """Choice indices of the elite (with this batch's results merged in), or None."""
        s = self.settings
        if not (s.elite_size and s.elite_weight):
            return None
        batch = [(r, k) for k, r in zip(keys, rewards, strict=True) if r is not None]
        elite = _merged_elite(self._elite, batch, s.elite_size)
        steps = len(self.space.decisions)  # a space that grew: only rows of its current size
        rows = [list(key) for _, key in elite if len(key) == steps]
        return torch.tensor(rows) if rows else None

    # ----- the two separable halves -----------------------------------------------------------
    def indices(self, archs: Sequence[Any]) -> torch.Tensor:
        return torch.tensor([self.space.encode(self.space.from_arch(a)) for a in archs])

    def log_prob(self, archs: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probability and entropy of `archs` under the current controller."""
        with torch.no_grad(), single_thread():
            out = self.controller.score(self.indices(archs))
        return out.log_prob, out.entropy

    def gradient(self, archs: Sequence[Any], rewards: Sequence[float | None]) -> Gradient:
        """Gradient for one batch at the current parameters and memory (changes nothing)."""
        rewards = self._check_told(archs, rewards)
        keys = [tuple(self.space.encode(self.space.from_arch(a))) for a in archs]
        return self._batch_gradient(keys, rewards)[0]

    def _batch_gradient(
        self, keys: Sequence[Key], rewards: Sequence[float | None]
    ) -> tuple[Gradient, _Batch]:
        """The batch's gradient, and the batch as its clipped epochs will see it."""
        indices, advantages = torch.tensor(keys), self._advantages(rewards)
        tensors, log_prob = gradient_and_log_prob(
            self.controller,
            dict(self.controller.named_parameters()),
            indices,
            advantages,
            0.0,
            self.settings.entropy_weight,
            elite=self._elite_rows(keys, rewards),
            elite_weight=self.settings.elite_weight,
        )
        return Gradient(self.version, tensors, len(keys)), _Batch(indices, advantages, log_prob)

    def _clipped_gradient(self, batch: _Batch) -> Gradient:
        s = self.settings
        tensors, _ = gradient_and_log_prob(
            self.controller,
            dict(self.controller.named_parameters()),
            batch.indices,
            batch.advantages,
            0.0,
            s.entropy_weight,
            old_log_prob=batch.old_log_prob,
            clip=s.clip,
            # the elite is imitated in an update's first step only: rescoring it in every
            # clipped step cost ~40% of `tell` and found the best no sooner (bench/RESULTS.md)
            elite=None,
        )
        return Gradient(self.version, tensors, len(batch.indices))

    def apply(self, grads: Sequence[Gradient]) -> None:
        """Apply the mean of accumulated gradients with the optimizer; bump the version."""
        params = dict(self.controller.named_parameters())
        apply_mean_gradient(self.optimizer, params, [g.tensors for g in grads])
        self.version += 1

    def _update_baseline(self, rewards: Sequence[float | None]) -> None:
        failure = self.settings.failure_reward
        self.baseline = moving_baseline(
            self.baseline,
            [failure if r is None else r for r in rewards],
            self.settings.baseline_decay,
        )

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot (deep copy): later steps do not change it."""
        return self.state_dict_with(
            controller=self.controller.state_dict(),
            optimizer=self.optimizer.state_dict(),
            baseline=self.baseline,
            version=self.version,
            buffer=list(self._buffer),
            grads=[(g.version, g.tensors, g.batch_size) for g in self._grads],
        )

    def state_dict_with(
        self,
        *,
        controller: Mapping[str, torch.Tensor],
        optimizer: dict[str, Any],
        baseline: float | None,
        version: int,
        buffer: Sequence[Any] = (),
        grads: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """This strategy's state format (:meth:`load_state_dict` reads it) holding learned
        parts kept elsewhere, e.g. by the parameter servers of the Ray search; a deep copy."""
        return copy.deepcopy(
            {
                "settings": asdict(self.settings),
                "batch_size": self.batch_size,
                "grads_per_update": self.grads_per_update,
                "controller": controller,
                "optimizer": optimizer,
                "rng": self.generator.get_state(),
                "baseline": baseline,
                "version": version,
                "buffer": list(buffer),
                "grads": list(grads),
                # the memory of the search lives in this strategy wherever the learned parts are
                "batches": [(b.indices, b.advantages, b.old_log_prob) for b in self._batches],
                "seen": list(self._seen),
                "told_rewards": list(self._told_rewards),
                "elite": list(self._elite),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)  # the optimizer would otherwise share tensors with `state`
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"])
        self.baseline = state["baseline"]
        self.version = state["version"]
        self._buffer = [(dict(d), None if r is None else float(r)) for d, r in state["buffer"]]
        self._grads = [Gradient(v, t, b) for v, t, b in state["grads"]]
        # absent in checkpoints written before these settings existed (their search used none)
        self._batches = [_Batch(*b) for b in state.get("batches", [])]
        self._seen = dict.fromkeys(tuple(k) for k in state.get("seen", []))
        self._told_rewards = [float(r) for r in state.get("told_rewards", [])]
        self._elite = [(float(r), tuple(k)) for r, k in state.get("elite", [])]


def _merged_elite(
    elite: list[tuple[float, Key]], new: Sequence[tuple[float, Key]], size: int
) -> list[tuple[float, Key]]:
    """The `size` best distinct architectures of `elite` and `new`, best first (stable)."""
    best: dict[Key, float] = {}
    for reward, key in [*elite, *new]:
        if key not in best or reward > best[key]:
            best[key] = reward
    ranked = sorted(best.items(), key=lambda item: -item[1])  # sorted() is stable
    return [(reward, key) for key, reward in ranked[:size]]


def moving_baseline(baseline: float | None, rewards: Iterable[float], decay: float) -> float | None:
    """The REINFORCE baseline after `rewards`: an exponential moving average (the first reward
    starts it). The parameter servers keep theirs with this too."""
    for r in rewards:
        baseline = r if baseline is None else decay * baseline + (1 - decay) * r
    return baseline


def apply_mean_gradient(
    optimizer: torch.optim.Optimizer,
    params: Mapping[str, torch.Tensor],
    grads: Sequence[Mapping[str, torch.Tensor]],
) -> None:
    """One optimizer step with the mean of `grads` (each a tensor per name of `params`).
    The parameter servers step their slices with this too (Adam is elementwise)."""
    for name, p in params.items():
        if len(grads) == 1:
            p.grad = grads[0][name]  # read only by the step, detached below
        else:
            p.grad = torch.stack([g[name] for g in grads]).mean(dim=0)
    optimizer.step()
    for p in params.values():  # no .grad left aliasing a gradient's tensors
        p.grad = None
