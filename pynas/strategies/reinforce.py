"""REINFORCE with an exponential-moving-average baseline (SPEC §1, §4).

Told results are grouped into batches of m architectures; each batch gives one gradient,
computed by the pure :func:`pynas.controller.compute_gradient` at the current parameter version;
once g gradients have accumulated their mean is applied with Adam and the version increments.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from pynas.controller import Controller, ControllerConfig, compute_gradient
from pynas.controller.threads import single_thread
from pynas.spaces.decision import Decisions, DecisionSpace
from pynas.strategies.base import Strategy
from pynas.strategies.presets import ReinforceSettings, preset


@dataclass
class Gradient:
    """One batch's gradient, tagged with the parameter version it was computed at."""

    version: int
    tensors: dict[str, torch.Tensor]
    batch_size: int


class Reinforce(Strategy):
    """Policy-gradient search with the LSTM controller.

    ``settings`` is a preset name (``"paper"``, ``"enas"``) or a :class:`ReinforceSettings`;
    keyword ``overrides`` change single settings of a named preset.
    """

    name = "reinforce"

    def __init__(
        self,
        space: DecisionSpace,
        settings: str | ReinforceSettings = "paper",
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
        self.optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=settings.lr, betas=settings.adam_betas
        )
        self.baseline: float | None = None
        self.version = 0
        self._buffer: list[tuple[Decisions, float]] = []
        self._grads: list[Gradient] = []

    # ----- ask / tell -------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Any]:
        self._check_n(n)
        if n == 0:
            return []
        with single_thread():
            out = self.controller.sample(n, generator=self.generator)
        return [self.space.to_arch(self.space.decode(row.tolist())) for row in out.indices]

    def tell(self, archs: Sequence[Any], rewards: Sequence[float]) -> None:
        values = self._check_told(archs, rewards)
        for arch, reward in zip(archs, values, strict=True):
            self._buffer.append((self.space.from_arch(arch), reward))
        with single_thread():
            self._learn()

    def _learn(self) -> None:
        while len(self._buffer) >= self.batch_size:
            batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            self._grads.append(self.gradient([d for d, _ in batch], [r for _, r in batch]))
            self._update_baseline([r for _, r in batch])
            if len(self._grads) >= self.grads_per_update:
                self.apply(self._grads)
                self._grads = []

    # ----- the two separable halves -----------------------------------------------------------
    def indices(self, archs: Sequence[Any]) -> torch.Tensor:
        return torch.tensor([self.space.encode(self.space.from_arch(a)) for a in archs])

    def log_prob(self, archs: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probability and entropy of `archs` under the current controller."""
        with torch.no_grad(), single_thread():
            out = self.controller.score(self.indices(archs))
        return out.log_prob, out.entropy

    def gradient(self, archs: Sequence[Any], rewards: Sequence[float]) -> Gradient:
        """Gradient for one batch at the current parameters and baseline (changes nothing)."""
        rewards_t = torch.tensor(rewards, dtype=torch.float32)
        baseline = self.baseline if self.baseline is not None else float(rewards_t.mean())
        params = dict(self.controller.named_parameters())
        tensors = compute_gradient(
            self.controller,
            params,
            self.indices(archs),
            rewards_t,
            baseline,
            self.settings.entropy_weight,
        )
        return Gradient(self.version, tensors, len(archs))

    def apply(self, grads: Sequence[Gradient]) -> None:
        """Apply the mean of accumulated gradients with the optimizer; bump the version."""
        params = dict(self.controller.named_parameters())
        apply_mean_gradient(self.optimizer, params, [g.tensors for g in grads])
        self.version += 1

    def _update_baseline(self, rewards: Sequence[float]) -> None:
        self.baseline = moving_baseline(self.baseline, rewards, self.settings.baseline_decay)

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
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)  # the optimizer would otherwise share tensors with `state`
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"])
        self.baseline = state["baseline"]
        self.version = state["version"]
        self._buffer = [(dict(d), float(r)) for d, r in state["buffer"]]
        self._grads = [Gradient(v, t, b) for v, t, b in state["grads"]]


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
    optimizer.zero_grad(set_to_none=False)
    for name, p in params.items():
        p.grad = torch.stack([g[name] for g in grads]).mean(dim=0)
    optimizer.step()
