"""The ask/tell interface every search strategy implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pynas.spaces.decision import DecisionSpace


class Strategy(ABC):
    """Proposes architectures of `space` (``ask``) and learns from their rewards (``tell``).

    Architectures are the space's architecture objects (``space.to_arch``): plain decision
    dicts for a :class:`DecisionSpace`, :class:`pynas.arch.RNNCell` for an ``RNNCellSpace``.
    ``state_dict`` / ``load_state_dict`` capture everything, RNG included, so a restored
    strategy continues exactly where the saved one was.

    **Rewards and failures.** ``tell`` takes one reward per architecture: a finite number
    (higher is better) or ``None`` for a failure (an invalid architecture, a child that crashed
    or diverged). A failure is data, not an error: every strategy accepts it and documents what
    it does with it (random search only counts it; evolution never makes it a parent;
    REINFORCE and PPO give it the worst advantage of its batch). NaN and infinities are refused
    (a caller that means "failed" says ``None``).
    """

    name = "strategy"

    def __init__(self, space: DecisionSpace) -> None:
        self.space = space

    @abstractmethod
    def ask(self, n: int = 1) -> list[Any]:
        """Propose `n` architectures."""

    @abstractmethod
    def tell(self, archs: Sequence[Any], rewards: Sequence[float | None]) -> None:
        """Report the rewards of architectures (usually ones returned by ``ask``); ``None``
        reports a failure."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue, as picklable data."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    # ----- helpers for subclasses -------------------------------------------------------------
    @staticmethod
    def _check_n(n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")

    def _check_told(
        self, archs: Sequence[Any], rewards: Sequence[float | None]
    ) -> list[float | None]:
        """The rewards as floats (``None`` kept: a failure); refuses NaN, infinities, junk."""
        if len(archs) != len(rewards):
            raise ValueError(f"got {len(archs)} architectures but {len(rewards)} rewards")
        out: list[float | None] = []
        for r in rewards:
            if r is None:
                out.append(None)
                continue
            try:
                if isinstance(r, (str, bytes)):
                    raise TypeError
                value = float(r)
            except (TypeError, ValueError):
                raise ValueError(
                    f"a reward must be a number or None (a failure), got {r!r}"
                ) from None
            if not math.isfinite(value):
                raise ValueError(f"rewards must be finite, got {value}; tell a failure as None")
            out.append(value)
        return out
