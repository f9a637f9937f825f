"""The base-N tree recurrent cell of SPEC §2 as a validated, immutable value.

Nodes 0..N-1 are leaves (each combines one input projection with one recurrent projection);
nodes N..2N-2 form a complete binary tree numbered level by level, so internal node k has
children 2(k-N) and 2(k-N)+1 and node 2N-2 is the root, whose activation is h_t.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynas.arch.errors import ArchitectureError

COMBINES: tuple[str, ...] = ("add", "elem_mult")
ACTIVATIONS: tuple[str, ...] = ("identity", "tanh", "sigmoid", "relu")
KIND = "rnn_cell"
_KEYS = ("kind", "base", "nodes", "inject", "c_out", "inject_at")


def _check_op_pair(field: str, pair: Any) -> tuple[str, str]:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ArchitectureError(field, pair, "expected a pair [combine, activation]")
    combine, activation = pair
    if combine not in COMBINES:
        raise ArchitectureError(f"{field}[0]", combine, f"combine must be one of {list(COMBINES)}")
    if activation not in ACTIVATIONS:
        raise ArchitectureError(
            f"{field}[1]", activation, f"activation must be one of {list(ACTIVATIONS)}"
        )
    return (combine, activation)


def _check_index(field: str, value: Any, num_nodes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < num_nodes:
        raise ArchitectureError(field, value, f"must be a node index in 0..{num_nodes - 1}")
    return value


@dataclass(frozen=True)
class RNNCell:
    """A base-N tree cell. Construct with :meth:`from_dict` / :meth:`from_json` to validate."""

    base: int
    nodes: tuple[tuple[str, str], ...]
    inject: tuple[str, str]
    c_out: int
    inject_at: int

    def __post_init__(self) -> None:
        base = self.base
        if isinstance(base, bool) or not isinstance(base, int) or base < 2 or base & (base - 1):
            raise ArchitectureError("base", base, "must be a power of two >= 2 (2, 4, 8, 16, ...)")
        num_nodes = 2 * base - 1
        if not isinstance(self.nodes, (list, tuple)):
            raise ArchitectureError("nodes", self.nodes, "expected a list of [combine, activation]")
        if len(self.nodes) != num_nodes:
            raise ArchitectureError(
                "nodes",
                f"<{len(self.nodes)} nodes>",
                f"base {base} needs exactly 2*base-1 = {num_nodes} nodes",
            )
        nodes = tuple(_check_op_pair(f"nodes[{i}]", p) for i, p in enumerate(self.nodes))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "inject", _check_op_pair("inject", self.inject))
        _check_index("c_out", self.c_out, num_nodes)
        _check_index("inject_at", self.inject_at, num_nodes)

    # ----- structure -------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return 2 * self.base - 1

    @property
    def root(self) -> int:
        return 2 * self.base - 2

    def children(self, node: int) -> tuple[int, int]:
        """Left and right child of internal node `node`."""
        if not self.base <= node < self.num_nodes:
            raise ValueError(
                f"node {node} is a leaf or out of range (internal: {self.base}..{self.root})"
            )
        left = 2 * (node - self.base)
        return left, left + 1

    # ----- canonical form --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "base": self.base,
            "nodes": [list(p) for p in self.nodes],
            "inject": list(self.inject),
            "c_out": self.c_out,
            "inject_at": self.inject_at,
        }

    def to_json(self) -> str:
        """The canonical JSON form: fixed key order, compact separators."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> RNNCell:
        if not isinstance(data, dict):
            raise ArchitectureError("<root>", type(data).__name__, "expected a JSON object")
        if data.get("kind", KIND) != KIND:
            raise ArchitectureError("kind", data.get("kind"), f"must be '{KIND}'")
        missing = [k for k in _KEYS[1:] if k not in data]
        if missing:
            raise ArchitectureError(missing[0], None, "required field is missing")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ArchitectureError(
                unknown[0], data[unknown[0]], f"unknown field; allowed: {list(_KEYS)}"
            )
        return cls(
            base=data["base"],
            nodes=tuple(data["nodes"]) if isinstance(data["nodes"], list) else data["nodes"],
            inject=data["inject"],
            c_out=data["c_out"],
            inject_at=data["inject_at"],
        )

    @classmethod
    def from_json(cls, text: str) -> RNNCell:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ArchitectureError("<json>", str(text)[:40], f"not valid JSON ({exc})") from None
        return cls.from_dict(data)

    # ----- text rendering --------------------------------------------------------------------
    def render(self) -> str:
        """One line per node, e.g. ``n12 = identity(n8 * n9)  -> c_t``.

        Leaves read ``x·W0 + h·U0``; the inject gets a line of its own after its node.
        """
        symbol = {"add": "+", "elem_mult": "*"}
        lines = []
        for k, (combine, act) in enumerate(self.nodes):
            if k < self.base:
                operands = (f"x·W{k}", f"h·U{k}")
            else:
                operands = tuple(f"n{c}" for c in self.children(k))
            line = f"n{k} = {act}({operands[0]} {symbol[combine]} {operands[1]})"
            notes = []
            if k == self.c_out:
                notes.append("-> c_t")
            if k == self.root:
                notes.append("-> h_t")
            if notes:
                line += "  " + ", ".join(notes)
            lines.append(line)
            if k == self.inject_at:
                inj_comb, inj_act = self.inject
                lines.append(f"n{k} = {inj_act}(n{k} {symbol[inj_comb]} c_prev)  (inject)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _nas_cell() -> RNNCell:
    leaves = [
        ("add", "sigmoid"), ("add", "relu"), ("add", "sigmoid"), ("elem_mult", "relu"),
        ("add", "tanh"), ("add", "sigmoid"), ("add", "tanh"), ("add", "sigmoid"),
    ]  # fmt: skip
    internal = [
        ("elem_mult", "tanh"), ("add", "tanh"), ("elem_mult", "tanh"), ("add", "sigmoid"),
        ("elem_mult", "identity"), ("add", "tanh"), ("elem_mult", "tanh"),
    ]  # fmt: skip
    return RNNCell(
        base=8, nodes=tuple(leaves + internal), inject=("add", "tanh"), c_out=12, inject_at=8
    )


NAMED_CELLS: dict[str, RNNCell] = {"nas_cell": _nas_cell()}


def load_rnn_cell(spec: str) -> RNNCell:
    """A named cell (``nas_cell``), a path to a JSON file, or inline JSON."""
    if spec in NAMED_CELLS:
        return NAMED_CELLS[spec]
    if spec.lstrip().startswith("{"):
        return RNNCell.from_json(spec)
    path = Path(spec)
    if not path.is_file():
        raise ArchitectureError(
            "--arch",
            spec,
            f"not a named architecture ({sorted(NAMED_CELLS)}) nor an existing JSON file",
        )
    return RNNCell.from_json(path.read_text())
