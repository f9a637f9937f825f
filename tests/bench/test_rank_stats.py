"""bench/rank_stats.py against worked examples and its definitions."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from rank_stats import average_ranks, kendall_tau, spearman_rho, top_overlap  # noqa: E402


def test_average_ranks_share_ties_and_put_inf_last():
    assert average_ranks([3.0, 1.0, 3.0, math.inf, 2.0]) == [3.5, 1.0, 3.5, 5.0, 2.0]


def test_perfect_reversed_and_known_values():
    x = [1, 2, 3, 4, 5]
    assert kendall_tau(x, x) == 1.0 and spearman_rho(x, x) == pytest.approx(1.0)
    assert kendall_tau(x, x[::-1]) == -1.0 and spearman_rho(x, x[::-1]) == pytest.approx(-1.0)
    # one swapped pair out of 10: tau = (9 - 1) / 10; rho = 1 - 6 * 2 / (5 * 24)
    y = [2, 1, 3, 4, 5]
    assert kendall_tau(x, y) == pytest.approx(0.8)
    assert spearman_rho(x, y) == pytest.approx(0.9)


def test_tau_b_with_ties_matches_its_formula():
    # x has one tied pair, y one: 10 pairs, C = 8, D = 0 -> 8 / sqrt(9 * 9)
    assert kendall_tau([1, 1, 2, 3, 4], [1, 2, 3, 3, 4]) == pytest.approx(8 / 9)


def test_spearman_without_ties_matches_the_rank_difference_formula():
    rng = random.Random(0)
    x = [rng.random() for _ in range(30)]
    y = [v + rng.gauss(0, 0.3) for v in x]
    rx, ry = average_ranks(x), average_ranks(y)
    d2 = sum((a - b) ** 2 for a, b in zip(rx, ry, strict=True))
    assert spearman_rho(x, y) == pytest.approx(1 - 6 * d2 / (30 * (30**2 - 1)))


def test_top_overlap_and_errors():
    assert top_overlap([1, 2, 3, 4], [1, 3, 2, 4], 2) == 1
    with pytest.raises(ValueError, match="equal length"):
        kendall_tau([1, 2], [1])
