"""The layer-by-layer convolutional network of SPEC §3 as a validated, immutable value.

Layer i convolves the depth concatenation of its `inputs` (earlier layer indices; none means
the image) with an fh×fw kernel, `filters` output channels and `stride`. Every layer that no
other layer uses as input is concatenated into the final layer, which feeds the classifier.

Canonical JSON (fixed key order, compact separators)::

    {"kind":"conv_net","layers":[{"fh":3,"fw":5,"filters":36,"stride":1,"inputs":[]},...]}

Optional per-layer keys (:data:`LAYER_OPTIONS`, e.g. ``"pool"``, ``"batch_norm"``) follow
``inputs`` and are written only when they differ from their default, so a network that does not
use them has exactly the JSON above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pynas.arch.errors import ArchitectureError

KIND = "conv_net"
_REQUIRED = ("fh", "fw", "filters", "stride", "inputs")


@dataclass(frozen=True)
class LayerOption:
    """An optional per-layer setting: its default (omitted from JSON) and its allowed values."""

    name: str
    default: Any
    allowed: tuple[Any, ...]
    meaning: str


# Optional per-layer settings, in canonical key order. Adding one: a field on ConvLayer with the
# same name and default, an entry here, and its effect in pynas.children.conv_net.
LAYER_OPTIONS: dict[str, LayerOption] = {
    "pool": LayerOption(
        "pool", "none", ("none", "max", "avg"), "2x2 pooling with stride 2 after the ReLU"
    ),
    "batch_norm": LayerOption(
        "batch_norm", True, (True, False), "batch norm between the conv and the ReLU"
    ),
}
LAYER_KEYS: tuple[str, ...] = _REQUIRED + tuple(LAYER_OPTIONS)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive(field: str, value: Any, odd: bool = False) -> int:
    if not _is_int(value) or value < 1 or (odd and value % 2 == 0):
        kind = "an odd integer >= 1 (1, 3, 5, 7, ...)" if odd else "an integer >= 1"
        raise ArchitectureError(field, value, f"must be {kind}")
    return value


def _check_option(field: str, option: LayerOption, value: Any) -> Any:
    # `True in (1,)` would hold in Python: compare types as well so 1 is not accepted for True.
    if not any(value == a and type(value) is type(a) for a in option.allowed):
        raise ArchitectureError(field, value, f"must be one of {list(option.allowed)}")
    return value


@dataclass(frozen=True)
class ConvLayer:
    """One layer: conv fh×fw, `filters` channels, `stride`, over the concat of `inputs`.

    `index` is the layer's position in its network (set by :class:`ConvNet`); with it, `inputs`
    are checked to refer only to earlier layers. It is not part of the JSON.
    """

    fh: int
    fw: int
    filters: int
    stride: int
    inputs: tuple[int, ...] = ()
    pool: str = "none"
    batch_norm: bool = True
    index: int | None = None

    def __post_init__(self) -> None:
        at = "layer" if self.index is None else f"layers[{self.index}]"
        _check_positive(f"{at}.fh", self.fh, odd=True)
        _check_positive(f"{at}.fw", self.fw, odd=True)
        _check_positive(f"{at}.filters", self.filters)
        _check_positive(f"{at}.stride", self.stride)
        object.__setattr__(self, "inputs", _check_inputs(f"{at}.inputs", self.inputs, self.index))
        for name, option in LAYER_OPTIONS.items():
            _check_option(f"{at}.{name}", option, getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fh": self.fh,
            "fw": self.fw,
            "filters": self.filters,
            "stride": self.stride,
            "inputs": list(self.inputs),
        }
        for name, option in LAYER_OPTIONS.items():
            value = getattr(self, name)
            if value != option.default:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, index: int, depth: int | None = None) -> ConvLayer:
        """Validate one layer's JSON object; `depth` (the network's) sharpens input errors."""
        at = f"layers[{index}]"
        if not isinstance(data, dict):
            raise ArchitectureError(
                at,
                data,
                'expected an object like {"fh":3,"fw":3,"filters":36,"stride":1,"inputs":[]}',
            )
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ArchitectureError(f"{at}.{missing[0]}", None, "required field is missing")
        unknown = sorted(set(data) - set(LAYER_KEYS))
        if unknown:
            raise ArchitectureError(
                f"{at}.{unknown[0]}",
                data[unknown[0]],
                f"unknown field; allowed: {list(LAYER_KEYS)}",
            )
        if depth is not None:
            _check_inputs(f"{at}.inputs", data["inputs"], index, depth)
        return cls(index=index, **{k: data[k] for k in LAYER_KEYS if k in data})


def _check_inputs(
    field: str, inputs: Any, index: int | None, depth: int | None = None
) -> tuple[int, ...]:
    if not isinstance(inputs, (list, tuple)):
        raise ArchitectureError(field, inputs, "expected a list of earlier layer indices")
    for j in inputs:
        if not _is_int(j):
            raise ArchitectureError(field, j, "layer indices must be integers")
        if j < 0:
            raise ArchitectureError(field, j, "out of range: inputs are earlier layer indices >= 0")
        if depth is not None and j >= depth:
            raise ArchitectureError(
                field, j, f"out of range: the network has layers 0..{depth - 1}"
            )
        if index is None:
            continue
        if j == index:
            raise ArchitectureError(field, j, f"self-loop: layer {index} cannot be its own input")
        if j > index:
            raise ArchitectureError(
                field, j, f"forward reference: layer {index} may only use layers 0..{index - 1}"
            )
    if len(set(inputs)) != len(inputs):
        raise ArchitectureError(field, list(inputs), "each input layer may appear only once")
    return tuple(sorted(inputs))


def conv_output_size(size: int, stride: int) -> int:
    """Spatial size after a conv with odd kernel k, padding k//2 and `stride`: ceil(size/stride)."""
    return (size + stride - 1) // stride


@dataclass(frozen=True)
class ConvNet:
    """A layer-by-layer CNN. Construct with :meth:`from_dict` / :meth:`from_json` to validate."""

    layers: tuple[ConvLayer, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.layers, (list, tuple)) or len(self.layers) == 0:
            raise ArchitectureError("layers", self.layers, "expected a non-empty list of layers")
        layers = []
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, ConvLayer):
                layer = ConvLayer.from_dict(layer, i)
            elif layer.index != i:
                # Re-validate at its real position (inputs must be earlier layers).
                layer = replace(layer, index=i)
            layers.append(layer)
        object.__setattr__(self, "layers", tuple(layers))

    # ----- structure -------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def outputs(self) -> tuple[int, ...]:
        """Layers no other layer uses as input: they are concatenated into the final layer."""
        used = {j for layer in self.layers for j in layer.inputs}
        return tuple(i for i in range(self.depth) if i not in used)

    @property
    def num_skip_connections(self) -> int:
        """Inputs other than the immediately preceding layer."""
        return sum(1 for i, layer in enumerate(self.layers) for j in layer.inputs if j != i - 1)

    def in_channels(self, image_channels: int = 3) -> tuple[int, ...]:
        """Channels each layer convolves (the sum over its inputs; the image if none)."""
        return tuple(
            sum(self.layers[j].filters for j in layer.inputs) if layer.inputs else image_channels
            for layer in self.layers
        )

    def output_sizes(self, image_size: int = 32) -> tuple[int, ...]:
        """Spatial size (height = width) of every layer's output for a square image.

        A layer's input is padded to its largest input, so its output is
        ceil(max input size / stride), then halved (rounding up) if it pools.
        """
        sizes: list[int] = []
        for layer in self.layers:
            size = max((sizes[j] for j in layer.inputs), default=image_size)
            size = conv_output_size(size, layer.stride)
            if layer.pool != "none":
                size = conv_output_size(size, 2)
            sizes.append(size)
        return tuple(sizes)

    # ----- canonical form --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self) -> str:
        """The canonical JSON form: fixed key order, compact separators, sorted inputs."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> ConvNet:
        if not isinstance(data, dict):
            raise ArchitectureError("<root>", type(data).__name__, "expected a JSON object")
        if data.get("kind", KIND) != KIND:
            raise ArchitectureError("kind", data.get("kind"), f"must be '{KIND}'")
        if "layers" not in data:
            raise ArchitectureError("layers", None, "required field is missing")
        unknown = sorted(set(data) - {"kind", "layers"})
        if unknown:
            raise ArchitectureError(
                unknown[0], data[unknown[0]], "unknown field; allowed: ['kind', 'layers']"
            )
        layers = data["layers"]
        if not isinstance(layers, list) or not layers:
            raise ArchitectureError("layers", layers, "expected a non-empty list of layers")
        return cls(
            layers=tuple(ConvLayer.from_dict(d, i, len(layers)) for i, d in enumerate(layers))
        )

    @classmethod
    def from_json(cls, text: str) -> ConvNet:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ArchitectureError("<json>", str(text)[:40], f"not valid JSON ({exc})") from None
        return cls.from_dict(data)

    # ----- text rendering --------------------------------------------------------------------
    def render(self, image_size: int = 32, image_channels: int = 3) -> str:
        """One line per layer with its output shape, then the final layer, e.g.

        ``L2: conv 3x5 x36 /1 <- L0+L1        -> 36x32x32``
        """
        sizes = self.output_sizes(image_size)
        lines = []
        for i, layer in enumerate(self.layers):
            src = "+".join(f"L{j}" for j in layer.inputs) if layer.inputs else "image"
            desc = f"conv {layer.fh}x{layer.fw} x{layer.filters} /{layer.stride}"
            if not layer.batch_norm:
                desc += " no-bn"
            if layer.pool != "none":
                desc += f" {layer.pool}pool"
            shape = f"{layer.filters}x{sizes[i]}x{sizes[i]}"
            lines.append(f"L{i}: {desc} <- {src}".ljust(40) + f" -> {shape}")
        outputs = self.outputs
        channels = sum(self.layers[i].filters for i in outputs)
        size = max(sizes[i] for i in outputs)
        lines.append(
            f"final: concat({'+'.join(f'L{i}' for i in outputs)}) -> {channels}x{size}x{size}"
            " -> global avg pool -> linear"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _layer(fh: int, fw: int, filters: int, stride: int, inputs: tuple[int, ...]) -> dict:
    return {"fh": fh, "fw": fw, "filters": filters, "stride": stride, "inputs": list(inputs)}


def _skip15() -> ConvNet:
    """A hand-written 15-layer example with skip connections (not the paper's network).

    Three stages (32, 16, 8 pixels for a 32-pixel image); skips stay inside a stage or enter the
    stride-2 layer that starts the next one, so no small map is zero-padded up to a large one.
    """
    spec = [
        (3, 3, 36, 1, ()), (3, 3, 36, 1, (0,)), (3, 5, 36, 1, (0, 1)),
        (5, 3, 36, 1, (1, 2)), (3, 3, 48, 2, (0, 2, 3)),
        (3, 3, 48, 1, (4,)), (5, 5, 48, 1, (4, 5)), (3, 3, 48, 1, (5, 6)),
        (1, 3, 48, 1, (4, 6, 7)), (3, 3, 64, 2, (7, 8)),
        (3, 3, 64, 1, (9,)), (3, 5, 64, 1, (9, 10)), (5, 3, 64, 1, (10, 11)),
        (3, 3, 64, 1, (9, 11, 12)), (1, 1, 64, 1, (12, 13)),
    ]  # fmt: skip
    return ConvNet.from_dict({"kind": KIND, "layers": [_layer(*row) for row in spec]})


NAMED_CONV_NETS: dict[str, ConvNet] = {"skip15": _skip15()}


def load_conv_net(spec: str) -> ConvNet:
    """A named network (``skip15``), a path to a JSON file, or inline JSON."""
    if spec in NAMED_CONV_NETS:
        return NAMED_CONV_NETS[spec]
    if spec.lstrip().startswith("{"):
        return ConvNet.from_json(spec)
    path = Path(spec)
    if not path.is_file():
        raise ArchitectureError(
            "--arch",
            spec,
            f"not a named architecture ({sorted(NAMED_CONV_NETS)}) nor an existing JSON file",
        )
    return ConvNet.from_json(path.read_text())
