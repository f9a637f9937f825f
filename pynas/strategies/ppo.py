"""PPO (Schulman et al. 2017) with the LSTM controller, behind the same ask/tell interface.

Each architecture is a one-step episode whose reward is the child's. A batch of m told
architectures gives ``epochs`` Adam steps (default 4): the first is the plain policy gradient,
the later ones maximise PPO's clipped surrogate (ratio clip ε = 0.2) against the batch's
log-probabilities before the first step. Advantages are the rewards standardised in their batch
(PPO's advantage normalisation). The baseline: a one-step episode has no state for a value
function to condition on, so PPO's value baseline is a constant estimate of the mean reward —
the exponential moving average ``baseline`` this strategy keeps and logs — and a constant
baseline cancels in the per-batch standardisation; it is therefore not a separate setting.

This is :class:`Reinforce` with the ``"ppo"`` preset: the same controller, gradient code,
checkpoint (``state_dict``) and failure handling — a failure (reward ``None``) counts as
``failure_reward`` (default 0.0: below every reward of an accuracy or an inverse perplexity;
set it lower when rewards can be negative).
"""

from __future__ import annotations

from typing import Any

from pynas.controller import ControllerConfig
from pynas.spaces.decision import DecisionSpace
from pynas.strategies.presets import ReinforceSettings
from pynas.strategies.reinforce import Reinforce


class PPO(Reinforce):
    """Policy search with PPO; ``settings`` default to the ``"ppo"`` preset."""

    name = "ppo"

    def __init__(
        self,
        space: DecisionSpace,
        settings: str | ReinforceSettings = "ppo",
        batch_size: int = 8,
        grads_per_update: int = 1,
        seed: int | None = None,
        controller_config: ControllerConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(
            space, settings, batch_size, grads_per_update, seed, controller_config, **overrides
        )
