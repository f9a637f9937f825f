"""A drawing of a CNN child's layer graph (SPEC §3): layers, skip connections, final concat."""

from __future__ import annotations

import os
from typing import Any

from pynas.arch import ConvNet
from pynas.viz.backend import pyplot

LAYER, IMAGE, FINAL = "#dbeafe", "#fef3c7", "#dcfce7"


def _box(ax: Any, xy: tuple[float, float], text: str, color: str) -> Any:
    return ax.text(
        *xy, text, ha="center", va="center", fontsize=8.5, zorder=3,
        bbox={"boxstyle": "round,pad=0.35", "fc": color, "ec": "#374151"},
    )  # fmt: skip


def _edge(ax: Any, src: Any, dst: Any, gap: int, color: str, below: bool = False) -> None:
    """Neighbours: a straight arrow; longer hops arc above (or below) from the box tops."""
    if gap <= 1:
        start, end, rad = (1.0, 0.5), (0.0, 0.5), 0.0
    elif below:
        start, end, rad = (0.5, 0.0), (0.5, 0.0), min(0.45, 0.55 / gap**0.5)
    else:
        start, end, rad = (0.5, 1.0), (0.5, 1.0), -min(0.45, 0.55 / gap**0.5)
    ax.annotate(
        "", xy=end, xycoords=dst, xytext=start, textcoords=src, zorder=2,
        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.1, "shrinkA": 3, "shrinkB": 3,
                    "connectionstyle": f"arc3,rad={rad}"},
    )  # fmt: skip


def draw_conv_net(
    net: ConvNet, path: str | os.PathLike[str], title: str = "", image_size: int = 32
) -> None:
    """Write a PNG of `net`: image → layers left to right → final concat → classifier.

    Arrows into a layer are its inputs (depth-concatenated, zero-padded to the largest map);
    an arrow that skips layers arcs above the row. Every layer nobody reads feeds the final
    concatenation.
    """
    plt = pyplot()
    sizes = net.output_sizes(image_size)
    n = net.depth
    fig, ax = plt.subplots(figsize=(max(7.0, 1.55 * (n + 2)), 4.6), dpi=110)
    image = _box(ax, (0.0, 0.0), f"image\n3×{image_size}×{image_size}", IMAGE)
    boxes = []
    for i, layer in enumerate(net.layers):
        text = f"L{i}\n{layer.fh}×{layer.fw} ×{layer.filters} /{layer.stride}"
        if layer.pool != "none":
            text += f"\n{layer.pool} pool"
        if not layer.batch_norm:
            text += "\nno BN"
        text += f"\n→ {layer.filters}×{sizes[i]}×{sizes[i]}"
        boxes.append(_box(ax, (float(i + 1), 0.0), text, LAYER))
    outputs = net.outputs
    channels = sum(net.layers[i].filters for i in outputs)
    size = max(sizes[i] for i in outputs)
    final = _box(ax, (float(n + 1), 0.0), f"concat\n{channels}×{size}×{size}\n→ avg pool\n→ linear",
                 FINAL)  # fmt: skip
    for i, layer in enumerate(net.layers):
        for j in layer.inputs or (-1,):
            src = image if j < 0 else boxes[j]
            gap = i - j
            _edge(ax, src, boxes[i], gap, "#4b5563" if gap == 1 or j < 0 else "#7c3aed")
    for i in outputs:
        _edge(ax, boxes[i], final, n - i, "#15803d", below=True)
    ax.set_xlim(-0.7, n + 1.7)
    ax.set_ylim(-1.6, 1.6)
    ax.axis("off")
    ax.set_title(title or f"{n}-layer network", fontsize=11)
    fig.text(
        0.01, 0.01,
        "layer: fh×fw kernel ×filters /stride → output channels×size×size; purple: skip "
        "connection (above); green: into the final concat (below); inputs are zero-padded to "
        "the largest map and depth-concatenated",
        fontsize=7.5, color="#4b5563", wrap=True,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path)
    plt.close(fig)
