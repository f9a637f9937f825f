"""Uniform random search: the baseline every other strategy should beat."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pynas.spaces.decision import DecisionSpace
from pynas.strategies.base import Strategy


class RandomSearch(Strategy):
    """Samples every decision uniformly and independently; ``tell`` only counts (failures too)."""

    name = "random"

    def __init__(self, space: DecisionSpace, seed: int | None = None) -> None:
        super().__init__(space)
        self.rng = random.Random(seed)
        self.told = 0

    def ask(self, n: int = 1) -> list[Any]:
        self._check_n(n)
        return [self.space.to_arch(self.space.sample(self.rng)) for _ in range(n)]

    def tell(self, archs: Sequence[Any], rewards: Sequence[float | None]) -> None:
        self._check_told(archs, rewards)
        self.told += len(archs)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "told": self.told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["rng"])
        self.told = state["told"]
