"""The recurrent-cell search space of SPEC §2 expressed as a DecisionSpace.

Decision order (SPEC §2): node 0..2N-2 (combine, then activation), then the cell inject
(combine, activation), then the cell indices (c_out, inject_at).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynas.arch.rnn_cell import ACTIVATIONS, COMBINES, RNNCell
from pynas.spaces.decision import Decision, Decisions, DecisionSpace, SpaceError


def _decisions(base: int) -> list[Decision]:
    num_nodes = 2 * base - 1
    out = []
    for k in range(num_nodes):
        out.append(Decision(f"node{k}.combine", COMBINES))
        out.append(Decision(f"node{k}.act", ACTIVATIONS))
    out.append(Decision("inject.combine", COMBINES))
    out.append(Decision("inject.act", ACTIVATIONS))
    out.append(Decision("c_out", tuple(range(num_nodes))))
    out.append(Decision("inject_at", tuple(range(num_nodes))))
    return out


class RNNCellSpace(DecisionSpace):
    """Base-N tree cells; architectures are :class:`pynas.arch.RNNCell` objects."""

    kind = "rnn_cell"
    family = "rnn"

    def __init__(self, base: int = 8) -> None:
        if isinstance(base, bool) or not isinstance(base, int) or base < 2 or base & (base - 1):
            raise SpaceError(f"base must be a power of two >= 2, got {base!r}")
        self.base = base
        super().__init__(_decisions(base))

    def __repr__(self) -> str:
        return f"RNNCellSpace(base={self.base})"

    def to_arch(self, decisions: Mapping[str, Any]) -> RNNCell:
        d = self.validate(decisions)
        nodes = tuple((d[f"node{k}.combine"], d[f"node{k}.act"]) for k in range(2 * self.base - 1))
        return RNNCell(
            base=self.base,
            nodes=nodes,
            inject=(d["inject.combine"], d["inject.act"]),
            c_out=d["c_out"],
            inject_at=d["inject_at"],
        )

    def from_arch(self, arch: Any) -> Decisions:
        if isinstance(arch, Mapping) and "nodes" not in arch:
            return self.validate(arch)  # already a decision dict
        if not isinstance(arch, RNNCell):
            arch = RNNCell.from_dict(arch)
        if arch.base != self.base:
            raise SpaceError(f"cell has base {arch.base}, this space has base {self.base}")
        out: Decisions = {}
        for k, (combine, act) in enumerate(arch.nodes):
            out[f"node{k}.combine"] = combine
            out[f"node{k}.act"] = act
        out["inject.combine"], out["inject.act"] = arch.inject
        out["c_out"] = arch.c_out
        out["inject_at"] = arch.inject_at
        return out

    def arch_to_json(self, arch: Any) -> str:
        return self.to_arch(self.from_arch(arch)).to_json()

    def arch_from_json(self, text: str) -> RNNCell:
        return RNNCell.from_json(text)

    def render(self, arch: Any) -> str:
        return self.to_arch(self.from_arch(arch)).render()
