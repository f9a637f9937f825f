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
    """

    name = "strategy"

    def __init__(self, space: DecisionSpace) -> None:
        self.space = space

    @abstractmethod
    def ask(self, n: int = 1) -> list[Any]:
        """Propose `n` architectures."""

    @abstractmethod
    def tell(self, archs: Sequence[Any], rewards: Sequence[float]) -> None:
        """Report the rewards of architectures (usually ones returned by ``ask``)."""

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

    def _check_told(self, archs: Sequence[Any], rewards: Sequence[float]) -> list[float]:
        if len(archs) != len(rewards):
            raise ValueError(f"got {len(archs)} architectures but {len(rewards)} rewards")
        out = [float(r) for r in rewards]
        bad = [r for r in out if not math.isfinite(r)]
        if bad:
            raise ValueError(f"rewards must be finite, got {bad[:3]}")
        return out
