"""The convolutional search space of SPEC §3 as a DecisionSpace.

Per layer i, in this order: one categorical decision per declared layer choice (by default
``fh``, ``fw``, ``filters``, ``stride``), then its anchor: one yes/no decision
``layer{i}.in{j}`` for every earlier layer j ("is j an input of i"). Decision names are
``layer{i}.{choice}``; every layer's ``fh`` decision shares the head ``fh`` and so on, and all
input decisions share the head :data:`ANCHOR_HEAD`. Each layer's input decisions are the links
of its :class:`~pynas.spaces.decision.AnchorPoint` (:meth:`ConvNetSpace.steps`), which the
controller answers with its attention ``P(j→i) = sigmoid(vᵀ tanh(W_prev h_j + W_curr h_i))``.

Adding a per-layer choice is one declaration: pass it in ``layer_choices`` (any optional
:class:`pynas.arch.ConvLayer` field, e.g. ``{"pool": ("none", "max")}``). A choice with a single
value is a constant, not a decision: ``stride=(1,)`` is the paper's stride-1 variant.

The depth can grow during a search (:meth:`ConvNetSpace.set_depth`); decision dicts, index rows
and architectures of any depth are still understood (the depth is read from them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pynas.arch.conv_net import LAYER_OPTIONS, ConvLayer, ConvNet
from pynas.spaces.decision import AnchorPoint, Decision, Decisions, DecisionSpace, SpaceError, Step

ANCHOR_HEAD = "anchor"
INPUT_CHOICES = (0, 1)
# SPEC §3: filter height, filter width, number of filters, stride.
PAPER_CHOICES: dict[str, tuple[Any, ...]] = {
    "fh": (1, 3, 5, 7),
    "fw": (1, 3, 5, 7),
    "filters": (24, 36, 48, 64),
    "stride": (1, 2, 3),
}
STRIDE1_CHOICES: dict[str, tuple[Any, ...]] = {**PAPER_CHOICES, "stride": (1,)}
_REQUIRED = ("fh", "fw", "filters", "stride")
_CHOOSABLE = _REQUIRED + tuple(LAYER_OPTIONS)
_NAME = re.compile(r"^layer(\d+)\.")


def _depth_of_names(names: Sequence[str]) -> int:
    layers = [int(m.group(1)) for m in map(_NAME.match, names) if m]
    return max(layers) + 1 if layers else 0


class ConvNetSpace(DecisionSpace):
    """CNNs of `depth` layers; architectures are :class:`pynas.arch.ConvNet` objects."""

    kind = "conv_net"
    family = "cnn"
    layered = True

    def __init__(
        self,
        depth: int,
        layer_choices: Mapping[str, Sequence[Any]] | None = None,
        anchors: bool = True,
    ) -> None:
        choices = dict(PAPER_CHOICES if layer_choices is None else layer_choices)
        unknown = sorted(set(choices) - set(_CHOOSABLE))
        if unknown:
            raise SpaceError(
                f"unknown layer choices {unknown}; a layer has {list(_CHOOSABLE)} "
                "(a new option needs a ConvLayer field and a child that uses it)"
            )
        missing = [k for k in _REQUIRED if k not in choices]
        if missing:
            raise SpaceError(f"layer choices must include {list(_REQUIRED)}; missing {missing}")
        ordered = {k: tuple(choices[k]) for k in _CHOOSABLE if k in choices}
        for name, values in ordered.items():
            if not values:
                raise SpaceError(f"layer choice {name!r} needs at least one value")
            for value in values:  # every value must make a valid layer
                probe = {"fh": 1, "fw": 1, "filters": 1, "stride": 1, name: value}
                try:
                    ConvLayer(**probe)
                except ValueError as exc:
                    raise SpaceError(f"layer choice {name!r}: {exc}") from None
        self.layer_choices: dict[str, tuple[Any, ...]] = ordered
        self.anchors = anchors
        self._by_depth: dict[int, ConvNetSpace] = {}
        self.set_depth(depth)

    # ----- depth ------------------------------------------------------------------------------
    def set_depth(self, depth: int) -> None:
        """Change the number of layers in place (progressive depth, SPEC §6)."""
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise SpaceError(f"depth must be an integer >= 1, got {depth!r}")
        self.depth = depth
        DecisionSpace.__init__(self, self._decisions(depth))

    def at_depth(self, depth: int) -> ConvNetSpace:
        """The same space with `depth` layers (self if equal; cached)."""
        if depth == self.depth:
            return self
        if depth not in self._by_depth:
            self._by_depth[depth] = ConvNetSpace(depth, self.layer_choices, self.anchors)
        return self._by_depth[depth]

    def _decisions(self, depth: int) -> list[Decision]:
        out = []
        for i in range(depth):
            for name, values in self.layer_choices.items():
                if len(values) > 1:
                    out.append(Decision(f"layer{i}.{name}", values, head=name))
            if self.anchors:
                for j in range(i):
                    out.append(Decision(f"layer{i}.in{j}", INPUT_CHOICES, head=ANCHOR_HEAD))
        return out

    def steps(self) -> tuple[Step, ...]:
        """Per layer: its categorical decisions, then (with anchors) its anchor point, whose
        links are the layer's input decisions ``layer{i}.in0 .. in{i-1}``."""
        out: list[Step] = []
        for i in range(self.depth):
            out += [self[f"layer{i}.{name}"] for name in self.steps_per_layer()]
            if self.anchors:
                out.append(AnchorPoint(i, tuple(f"layer{i}.in{j}" for j in range(i))))
        return tuple(out)

    def for_length(self, length: int) -> ConvNetSpace:
        """The space at the depth whose architectures have `length` decisions."""
        return self.at_depth(self.depth_for_steps(length))

    def steps_per_layer(self) -> tuple[str, ...]:
        """Names (without the layer prefix) of one layer's categorical decisions, in order."""
        return tuple(n for n, v in self.layer_choices.items() if len(v) > 1)

    def depth_for_steps(self, steps: int) -> int:
        """The depth whose decision count is `steps` (SpaceError if none)."""
        k = len(self.steps_per_layer())
        depth = 0
        while True:
            count = depth * k + (depth * (depth - 1) // 2 if self.anchors else 0)
            if count == steps and depth > 0:
                return depth
            if count > steps or (k == 0 and not self.anchors):
                raise SpaceError(f"{steps} decisions match no depth of {self!r}")
            depth += 1

    def __repr__(self) -> str:
        choices = ", ".join(f"{k}={list(v)}" for k, v in self.layer_choices.items())
        return f"ConvNetSpace(depth={self.depth}, {choices}, anchors={self.anchors})"

    # ----- decision dicts of any depth ---------------------------------------------------------
    def validate(self, decisions: Mapping[str, Any]) -> Decisions:
        if isinstance(decisions, Mapping):
            depth = _depth_of_names(list(decisions))
            if depth and depth != self.depth:
                return self.at_depth(depth).validate(decisions)
        return super().validate(decisions)

    def encode(self, decisions: Mapping[str, Any]) -> list[int]:
        checked = self.validate(decisions)
        depth = _depth_of_names(list(checked))
        if depth and depth != self.depth:
            return self.at_depth(depth).encode(checked)
        return super().encode(checked)

    def decode(self, indices: Sequence[int]) -> Decisions:
        if len(indices) != len(self.decisions):
            return self.at_depth(self.depth_for_steps(len(indices))).decode(indices)
        return super().decode(indices)

    # ----- architectures ----------------------------------------------------------------------
    def to_arch(self, decisions: Mapping[str, Any]) -> ConvNet:
        d = self.validate(decisions)
        depth = _depth_of_names(list(d)) or self.depth
        layers = []
        for i in range(depth):
            fields = {
                name: d[f"layer{i}.{name}"] if len(values) > 1 else values[0]
                for name, values in self.layer_choices.items()
            }
            if self.anchors:
                inputs = [j for j in range(i) if d[f"layer{i}.in{j}"]]
            else:
                inputs = [i - 1] if i else []
            layers.append(ConvLayer(inputs=tuple(inputs), index=i, **fields))
        return ConvNet(tuple(layers))

    def from_arch(self, arch: Any) -> Decisions:
        if isinstance(arch, Mapping) and "layers" not in arch:
            return self.validate(arch)  # already a decision dict
        if not isinstance(arch, ConvNet):
            arch = ConvNet.from_dict(arch)
        out: Decisions = {}
        fixed = {n: o.default for n, o in LAYER_OPTIONS.items() if n not in self.layer_choices}
        for i, layer in enumerate(arch.layers):
            for name, values in self.layer_choices.items():
                value = getattr(layer, name)
                if len(values) > 1:
                    out[f"layer{i}.{name}"] = value
                elif value != values[0]:
                    raise SpaceError(f"layer {i}: {name}={value!r}, this space fixes {values[0]!r}")
            for name, default in fixed.items():
                if getattr(layer, name) != default:
                    raise SpaceError(f"layer {i}: {name} is not a choice of this space")
            if self.anchors:
                for j in range(i):
                    out[f"layer{i}.in{j}"] = int(j in layer.inputs)
            elif layer.inputs != ((i - 1,) if i else ()):
                raise SpaceError(f"layer {i}: skip connections are not part of this space")
        return self.at_depth(arch.depth).validate(out)

    def arch_to_json(self, arch: Any) -> str:
        return self.to_arch(self.from_arch(arch)).to_json()

    def arch_from_json(self, text: str) -> ConvNet:
        return ConvNet.from_json(text)

    def render(self, arch: Any) -> str:
        return self.to_arch(self.from_arch(arch)).render()
