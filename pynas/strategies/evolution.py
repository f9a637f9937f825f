"""Regularized (aging) evolution, Real et al. 2019.

Keep a population of the `population_size` most recently told architectures. To propose one,
sample `sample_size` members at random, take the best of them and change one decision to a
different choice. A told architecture joins the population and the oldest member leaves.
Until the population is full, proposals are uniformly random. A failure (reward ``None``) never
joins the population, so it is never a parent and does not push a member out.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import Any

from pynas.spaces.decision import Decisions, DecisionSpace
from pynas.strategies.base import Strategy


class RegularizedEvolution(Strategy):
    name = "evolution"

    def __init__(
        self,
        space: DecisionSpace,
        population_size: int = 20,
        sample_size: int = 5,
        seed: int | None = None,
    ) -> None:
        super().__init__(space)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"need population_size >= 1 and 1 <= sample_size <= population_size, "
                f"got {population_size}, {sample_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.rng = random.Random(seed)
        self.population: deque[tuple[Decisions, float]] = deque()

    def project(self, decisions: Decisions) -> Decisions:
        """`decisions` as a dict of the space as it is now.

        A space can change during a search (the CNN space grows deeper): decisions the parent
        lacks are sampled at random, decisions the space no longer has are dropped.
        """
        return {
            d.name: decisions[d.name]
            if d.name in decisions and decisions[d.name] in d.choices
            else self.rng.choice(d.choices)
            for d in self.space.decisions
        }

    def mutate(self, decisions: Decisions) -> Decisions:
        """Copy of `decisions` with one decision (that has alternatives) changed."""
        mutable = [d for d in self.space.decisions if len(d.choices) > 1]
        child = self.project(decisions)
        if not mutable:
            return child
        d = self.rng.choice(mutable)
        child[d.name] = self.rng.choice([c for c in d.choices if c != child[d.name]])
        return child

    def _propose(self) -> Decisions:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        contestants = self.rng.sample(list(self.population), self.sample_size)
        parent = max(contestants, key=lambda member: member[1])[0]
        return self.mutate(parent)

    def ask(self, n: int = 1) -> list[Any]:
        self._check_n(n)
        return [self.space.to_arch(self._propose()) for _ in range(n)]

    def tell(self, archs: Sequence[Any], rewards: Sequence[float | None]) -> None:
        values = self._check_told(archs, rewards)
        for arch, reward in zip(archs, values, strict=True):
            if reward is None:
                continue
            self.population.append((self.space.from_arch(arch), reward))
            while len(self.population) > self.population_size:
                self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "population": list(self.population)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["rng"])
        self.population = deque((dict(d), float(r)) for d, r in state["population"])
