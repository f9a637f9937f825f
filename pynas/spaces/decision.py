"""Declared search spaces: an ordered set of named categorical decisions.

An architecture of a :class:`DecisionSpace` is a plain dict ``{name: choice}`` in declaration
order. Richer spaces (the recurrent cell, later the CNN) subclass it and map those dicts to and
from their own architecture objects with :meth:`to_arch` / :meth:`from_arch`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Choice = Hashable
Decisions = dict[str, Any]


class SpaceError(ValueError):
    """A space declaration or an architecture that does not belong to a space."""


@dataclass(frozen=True)
class Decision:
    """One categorical decision: a name, its ordered choices and the controller head it uses.

    Decisions that share a ``head`` share one softmax head and one embedding table in the
    controller (they must then have the same choices); by default every decision has its own.
    """

    name: str
    choices: tuple[Any, ...]
    head: str = field(default="")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpaceError(f"a decision name must be a non-empty string, got {self.name!r}")
        choices = tuple(self.choices)
        if len(choices) < 1:
            raise SpaceError(f"decision {self.name!r} needs at least one choice")
        try:
            unique = len(set(choices)) == len(choices)
        except TypeError:
            raise SpaceError(f"decision {self.name!r}: choices must be hashable") from None
        if not unique:
            raise SpaceError(f"decision {self.name!r} has duplicate choices: {list(choices)}")
        object.__setattr__(self, "choices", choices)
        if not self.head:
            object.__setattr__(self, "head", self.name)

    def index(self, choice: Any) -> int:
        """Position of `choice` among the choices (raises SpaceError if it is not one)."""
        try:
            return self.choices.index(choice)
        except ValueError:
            raise SpaceError(
                f"decision {self.name!r}: {choice!r} is not one of {list(self.choices)}"
            ) from None


@dataclass(frozen=True)
class AnchorPoint:
    """A step of the controller between decisions that makes no categorical choice: layer
    `layer`'s anchor point (SPEC §3). Its `links` are the yes/no decisions "is the anchor of
    layer j an input of this layer", one per earlier anchor point, in order; a learner answers
    them by attention over the earlier anchor points (the controller's anchor attention)."""

    layer: int
    links: tuple[str, ...]


Step = Decision | AnchorPoint


class DecisionSpace:
    """An ordered set of named categorical decisions.

    >>> space = DecisionSpace({"op0": ["conv3", "conv5", "pool"], "op1": ["conv3", "pool"]})
    >>> space.size
    6
    """

    kind = "decisions"
    family = "generic"
    #: True for a space whose decisions repeat per layer and whose number of layers can change
    #: (see :meth:`for_length`): a learner keeps one set of parameters per head, named by it.
    layered = False

    def __init__(self, decisions: Mapping[str, Sequence[Any]] | Iterable[Decision]) -> None:
        if isinstance(decisions, Mapping):
            items = [Decision(name, tuple(choices)) for name, choices in decisions.items()]
        else:
            items = list(decisions)
        if not items:
            raise SpaceError("a space needs at least one decision")
        names = [d.name for d in items]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SpaceError(f"duplicate decision names: {duplicated}")
        heads: dict[str, tuple[Any, ...]] = {}
        for d in items:
            if heads.setdefault(d.head, d.choices) != d.choices:
                raise SpaceError(
                    f"decision {d.name!r} shares head {d.head!r} but has different choices"
                )
        self.decisions: tuple[Decision, ...] = tuple(items)
        self._by_name = {d.name: d for d in items}

    # ----- structure --------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def __getitem__(self, name: str) -> Decision:
        return self._by_name[name]

    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        total = 1
        for d in self.decisions:
            total *= len(d.choices)
        return total

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} decisions, {self.size:.3g} architectures)"

    def steps(self) -> tuple[Step, ...]:
        """The order in which a controller makes this space's decisions: every decision, and
        the anchor points between them (none here: every decision is categorical)."""
        return self.decisions

    def for_length(self, length: int) -> DecisionSpace:
        """The space whose architectures have `length` decisions: this one (SpaceError if its
        length differs); a layered space answers with its version at the matching depth."""
        if length != len(self):
            raise SpaceError(f"expected {len(self)} decisions, got {length}")
        return self

    # ----- decision dicts ---------------------------------------------------------------------
    def validate(self, decisions: Mapping[str, Any]) -> Decisions:
        """Check a decision dict; return it as a new dict in declaration order."""
        if not isinstance(decisions, Mapping):
            raise SpaceError(f"expected a dict of decisions, got {type(decisions).__name__}")
        missing = [n for n in self.names if n not in decisions]
        if missing:
            raise SpaceError(f"missing decisions: {missing}")
        unknown = sorted(set(decisions) - set(self.names))
        if unknown:
            raise SpaceError(f"unknown decisions: {unknown}; this space has {list(self.names)}")
        out = {}
        for d in self.decisions:
            d.index(decisions[d.name])
            out[d.name] = decisions[d.name]
        return out

    def encode(self, decisions: Mapping[str, Any]) -> list[int]:
        """Decision dict -> choice indices in declaration order."""
        checked = self.validate(decisions)
        return [d.index(checked[d.name]) for d in self.decisions]

    def decode(self, indices: Sequence[int]) -> Decisions:
        """Choice indices in declaration order -> decision dict."""
        if len(indices) != len(self.decisions):
            raise SpaceError(f"expected {len(self.decisions)} indices, got {len(indices)}")
        out = {}
        for d, i in zip(self.decisions, indices, strict=True):
            i = int(i)
            if not 0 <= i < len(d.choices):
                raise SpaceError(f"decision {d.name!r}: index {i} out of range")
            out[d.name] = d.choices[i]
        return out

    def sample(self, rng: random.Random) -> Decisions:
        """A uniformly random decision dict."""
        return {d.name: rng.choice(d.choices) for d in self.decisions}

    # ----- architecture objects (identity for plain decision spaces) --------------------------
    def to_arch(self, decisions: Mapping[str, Any]) -> Any:
        """Decision dict -> architecture object (here: the validated dict itself)."""
        return self.validate(decisions)

    def from_arch(self, arch: Any) -> Decisions:
        """Architecture object -> decision dict."""
        return self.validate(arch)

    def arch_to_json(self, arch: Any) -> str:
        """Canonical JSON of an architecture: compact, keys in declaration order."""
        return json.dumps(self.from_arch(arch), separators=(",", ":"))

    def arch_from_json(self, text: str) -> Any:
        return self.to_arch(json.loads(text))

    def render(self, arch: Any) -> str:
        """Human-readable text of an architecture."""
        return ", ".join(f"{k}={v}" for k, v in self.from_arch(arch).items())
