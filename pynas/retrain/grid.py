"""The retrain grid: every combination of the given training settings (SPEC §6).

A grid point is a plain dict such as ``{"lr": 20.0, "weight_decay": 0.0}``; its ``point_key``
(sorted JSON) identifies it in the results log.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from typing import Any

Point = dict[str, float]


def float_list(minimum: float, strict: bool) -> Any:
    """argparse type: comma-separated finite floats (> or >= `minimum`), duplicates dropped."""

    def parse(text: str) -> list[float]:
        values: list[float] = []
        for part in text.split(","):
            try:
                value = float(part)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated numbers like 20,10, got {text!r}"
                ) from None
            bad = value <= minimum if strict else value < minimum
            if not math.isfinite(value) or bad:
                bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
                raise argparse.ArgumentTypeError(f"every value must be finite and {bound}: {part}")
            if value not in values:
                values.append(value)
        return values

    return parse


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
