import random

import pytest

from pynas.arch import NAMED_CELLS, RNNCell
from pynas.spaces import RNNCellSpace, SpaceError


def test_decision_order_follows_spec():
    space = RNNCellSpace(base=8)
    names = space.names
    assert names[:4] == ("node0.combine", "node0.act", "node1.combine", "node1.act")
    assert names[28:30] == ("node14.combine", "node14.act")
    assert names[30:] == ("inject.combine", "inject.act", "c_out", "inject_at")
    assert space["c_out"].choices == tuple(range(15))
    # SPEC §2: (2·4)^15 · 8 · 15² architectures for N = 8
    assert space.size == 8**15 * 8 * 15**2


def test_round_trip_with_the_paper_cell():
    space = RNNCellSpace(8)
    cell = NAMED_CELLS["nas_cell"]
    decisions = space.from_arch(cell)
    assert decisions["node12.act"] == "identity" and decisions["c_out"] == 12
    assert space.to_arch(decisions) == cell
    assert space.arch_to_json(cell) == cell.to_json()
    assert space.arch_from_json(cell.to_json()) == cell


def test_random_decisions_give_valid_cells_for_other_bases():
    space = RNNCellSpace(4)
    cell = space.to_arch(space.sample(random.Random(0)))
    assert isinstance(cell, RNNCell) and cell.base == 4 and len(cell.nodes) == 7
    assert space.from_arch(cell.to_dict()) == space.from_arch(cell)


def test_base_mismatch_and_bad_base_are_rejected():
    with pytest.raises(SpaceError, match="base"):
        RNNCellSpace(4).from_arch(NAMED_CELLS["nas_cell"])
    with pytest.raises(SpaceError, match="power of two"):
        RNNCellSpace(6)
