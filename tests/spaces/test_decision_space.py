import json
import random

import pytest

from pynas.spaces import Decision, DecisionSpace, SpaceError

SPACE = {"op0": ["conv3", "conv5", "pool"], "op1": ["conv3", "pool"], "width": [16, 32]}


def test_declared_space_is_ordered_and_counts_architectures():
    space = DecisionSpace(SPACE)
    assert space.names == ("op0", "op1", "width")
    assert space.size == 3 * 2 * 2
    assert space["op0"].choices == ("conv3", "conv5", "pool")


def test_encode_decode_round_trip_and_plain_dict_archs():
    space = DecisionSpace(SPACE)
    arch = {"width": 32, "op0": "pool", "op1": "conv3"}
    assert space.encode(arch) == [2, 0, 1]
    assert space.decode([2, 0, 1]) == arch
    assert list(space.to_arch(arch)) == ["op0", "op1", "width"]  # declaration order
    assert space.from_arch(arch) == arch


def test_canonical_json_uses_declaration_order():
    space = DecisionSpace(SPACE)
    text = space.arch_to_json({"width": 16, "op1": "pool", "op0": "conv5"})
    assert text == '{"op0":"conv5","op1":"pool","width":16}'
    assert space.arch_from_json(text) == json.loads(text)


@pytest.mark.parametrize(
    "arch, message",
    [
        ({"op0": "conv3", "op1": "conv3"}, "missing"),
        ({"op0": "conv3", "op1": "conv3", "width": 16, "extra": 1}, "unknown"),
        ({"op0": "conv7", "op1": "conv3", "width": 16}, "not one of"),
    ],
)
def test_invalid_architectures_are_rejected(arch, message):
    with pytest.raises(SpaceError, match=message):
        DecisionSpace(SPACE).validate(arch)


def test_bad_declarations_are_rejected():
    with pytest.raises(SpaceError, match="duplicate choices"):
        DecisionSpace({"a": [1, 1]})
    with pytest.raises(SpaceError, match="at least one"):
        DecisionSpace({"a": []})
    with pytest.raises(SpaceError, match="different choices"):
        DecisionSpace([Decision("a", (1, 2), head="h"), Decision("b", (1, 3), head="h")])


def test_sample_covers_choices_and_is_seeded():
    space = DecisionSpace(SPACE)
    a = [space.sample(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]
    seen = {space.sample(rng)["op0"] for rng in [random.Random(i) for i in range(50)]}
    assert seen == {"conv3", "conv5", "pool"}
