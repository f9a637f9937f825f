"""The retrain grid: every combination of the given training settings (SPEC §6).

A grid point is a plain dict such as ``{"lr": 20.0, "weight_decay": 0.0}``; its ``point_key``
(sorted JSON) identifies it in the results log.
"""

from __future__ import annotations

import itertools
import json

Point = dict[str, float]


def make_grid(axes: dict[str, list[float]]) -> list[Point]:
    """All combinations, in the order of `axes` and of each axis's values."""
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def point_key(point: Point) -> str:
    return json.dumps({k: float(v) for k, v in point.items()}, sort_keys=True)


def point_label(point: Point) -> str:
    """``lr 20, wd 0`` (short names for a table or a progress line)."""
    short = {"weight_decay": "wd", "bn_eps": "bn eps", "bn_momentum": "bn mom"}
    return ", ".join(f"{short.get(k, k)} {v:g}" for k, v in point.items())


def point_slug(point: Point) -> str:
    """``lr20-wd0`` (for file names)."""
    short = {"weight_decay": "wd", "bn_eps": "bneps", "bn_momentum": "bnmom"}
    return "-".join(f"{short.get(k, k)}{v:g}" for k, v in point.items())
