"""A drawing of a base-N tree cell (SPEC §2): leaves, combine/activation per node, the inject
of c_{t-1} and where c_t and h_t leave."""

from __future__ import annotations

import os
from typing import Any

from pynas.arch import RNNCell
from pynas.viz.backend import pyplot

SYMBOL = {"add": "+", "elem_mult": "×"}
LEAF, NODE, INJECT = "#dbeafe", "#f3f4f6", "#fed7aa"
C_COLOR, H_COLOR = "#15803d", "#1d4ed8"
SPACING = 1.25  # between neighbouring leaves (one level is 1.0 high)


def _positions(cell: RNNCell) -> dict[int, tuple[float, float]]:
    """Leaves on the bottom row, each internal node centred above its two children."""
    pos = {k: (SPACING * k, 0.0) for k in range(cell.base)}
    for k in range(cell.base, cell.num_nodes):
        (lx, ly), (rx, _) = (pos[c] for c in cell.children(k))
        pos[k] = ((lx + rx) / 2, ly + 1.0)
    return pos


def _toward_parent(cell: RNNCell, node: int) -> int:
    """+1 if the parent of `node` is to its right (a left child), -1 if to its left, 0: root."""
    if node == cell.root:
        return 0
    return 1 if node % 2 == 0 else -1


def _box(ax: Any, xy: tuple[float, float], text: str, color: str, edge: str = "#374151",
         width: float = 1.0) -> Any:  # fmt: skip
    return ax.text(
        *xy, text, ha="center", va="center", fontsize=9, zorder=3,
        bbox={"boxstyle": "round,pad=0.35", "fc": color, "ec": edge, "lw": width},
    )  # fmt: skip


def _arrow(ax: Any, src: Any, dst: Any, color: str = "#4b5563", **kw: Any) -> None:
    """An arrow from the top of artist `src` to the bottom of artist `dst` (or to points)."""
    src_xy, src_coords = ((0.5, 1.0), src) if not isinstance(src, tuple) else (src, "data")
    dst_xy, dst_coords = ((0.5, 0.0), dst) if not isinstance(dst, tuple) else (dst, "data")
    ax.annotate(
        "", xy=dst_xy, xycoords=dst_coords, xytext=src_xy, textcoords=src_coords, zorder=2,
        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2, "shrinkA": 4, "shrinkB": 4,
                    **kw},
    )  # fmt: skip


def draw_cell(cell: RNNCell, path: str | os.PathLike[str], title: str = "") -> None:
    """Write a PNG of `cell`: one box per node (``n8`` and ``× → tanh``: combine, activation)."""
    plt = pyplot()
    pos = _positions(cell)
    levels = int(max(y for _, y in pos.values())) + 1
    width = max(7.0, 1.45 * SPACING * cell.base + 2.5)
    fig, ax = plt.subplots(figsize=(width, 1.5 * levels + 2.2), dpi=110)
    boxes = {}
    for k, (combine, act) in enumerate(cell.nodes):
        leaf = k < cell.base
        label = f"n{k}\n{SYMBOL[combine]} → {act}"
        edge, width = (C_COLOR, 2.4) if k == cell.c_out else ("#374151", 1.0)
        boxes[k] = _box(ax, pos[k], label, LEAF if leaf else NODE, edge=edge, width=width)
        if leaf:  # the leaf's two projections
            x, y = pos[k]
            ax.text(x, y - 0.62, f"x·W{k}   h·U{k}", ha="center", va="top", fontsize=7.5,
                    color="#374151")  # fmt: skip
            _arrow(ax, (x - 0.2, y - 0.6), boxes[k])
            _arrow(ax, (x + 0.2, y - 0.6), boxes[k])
    # the output each parent reads: the node, or its inject box (drawn right above the node)
    out = dict(boxes)
    inj_x, inj_y = pos[cell.inject_at]
    inj_combine, inj_act = cell.inject
    inj_xy = (inj_x, inj_y + 0.52)
    inject_box = _box(ax, inj_xy, f"inject\n{SYMBOL[inj_combine]} → {inj_act}", INJECT,
                      edge="#c2410c")  # fmt: skip
    _arrow(ax, boxes[cell.inject_at], inject_box, color="#c2410c")
    # c_{t-1} comes in from the side away from the parent, unless c_t leaves there
    c_side = -(_toward_parent(cell, cell.inject_at) or 1)
    if cell.c_out == cell.inject_at:
        c_side = -c_side
    c_x = inj_x + 0.75 * c_side
    align = "left" if c_side > 0 else "right"
    ax.text(c_x + 0.03 * c_side, inj_xy[1] + 0.27, r"$c_{t-1}$", ha=align, va="center",
            fontsize=10, color="#c2410c", fontweight="bold")  # fmt: skip
    ax.annotate(
        "", xy=(0.0 if c_side > 0 else 1.0, 0.5), xycoords=inject_box,
        xytext=(c_x, inj_xy[1] + 0.25), textcoords="data", zorder=2,
        arrowprops={"arrowstyle": "-|>", "color": "#c2410c", "lw": 1.2, "shrinkA": 2, "shrinkB": 3},
    )  # fmt: skip
    out[cell.inject_at] = inject_box
    for k in range(cell.base, cell.num_nodes):
        for child in cell.children(k):
            _arrow(ax, out[child], boxes[k])
    # c_t (the pre-activation of c_out) leaves away from the parent; h_t leaves the root on top
    cx, cy = pos[cell.c_out]
    away = -(_toward_parent(cell, cell.c_out) or 1)
    c_label = r"$c_t$" + "\n(pre-activation)"
    ax.text(cx + 0.95 * away, cy + 0.4, c_label, ha="center", va="bottom", fontsize=9,
            color=C_COLOR, fontweight="bold")  # fmt: skip
    ax.annotate(
        "", xy=(cx + 0.8 * away, cy + 0.36), xycoords="data",
        xytext=(1.0 if away > 0 else 0.0, 0.5), textcoords=boxes[cell.c_out], zorder=2,
        arrowprops={"arrowstyle": "-|>", "color": C_COLOR, "lw": 2, "shrinkA": 2, "shrinkB": 2},
    )  # fmt: skip
    rx, ry = pos[cell.root]
    h_y = ry + (1.2 if cell.inject_at == cell.root else 0.65)
    ax.text(rx, h_y + 0.03, r"$h_t$", ha="center", va="bottom", fontsize=11, color=H_COLOR,
            fontweight="bold")  # fmt: skip
    _arrow(ax, out[cell.root], (rx, h_y), color=H_COLOR, lw=2)
    ax.set_xlim(-1.3, SPACING * (cell.base - 1) + 1.3)
    ax.set_ylim(-1.1, levels + (0.5 if cell.inject_at == cell.root else 0.0))
    ax.axis("off")
    ax.set_title(title or f"base-{cell.base} cell", fontsize=11)
    fig.text(
        0.01, 0.01,
        "box: node, combine (+ add, × elem_mult) → activation; leaf k combines x·W_k (input) with "
        "h·U_k (previous h); inject: act(combine(node output, c_{t-1})) replaces the node's output "
        "for its parent; c_t is the pre-activation of the green node, h_t the root's output",
        fontsize=7.5, color="#4b5563", wrap=True,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
