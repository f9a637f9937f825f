"""The CNN search space: decision order, round trips, depth changes, extra per-layer choices."""

import random

import pytest
import torch

from pynas.arch import NAMED_CONV_NETS, ConvNet
from pynas.children.conv_net import ConvChild
from pynas.spaces.conv_space import (
    ANCHOR_HEAD,
    PAPER_CHOICES,
    STRIDE1_CHOICES,
    ConvNetSpace,
)
from pynas.spaces.decision import SpaceError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_decision_order_follows_spec():
    space = ConvNetSpace(3)
    assert space.names == (
        "layer0.fh", "layer0.fw", "layer0.filters", "layer0.stride",
        "layer1.fh", "layer1.fw", "layer1.filters", "layer1.stride", "layer1.in0",
        "layer2.fh", "layer2.fw", "layer2.filters", "layer2.stride", "layer2.in0", "layer2.in1",
    )  # fmt: skip
    assert space["layer2.fh"].head == "fh" and space["layer2.fh"].choices == (1, 3, 5, 7)
    assert space["layer2.in1"].head == ANCHOR_HEAD and space["layer2.in1"].choices == (0, 1)
    assert space.family == "cnn" and space.kind == "conv_net"
    assert space.size == (4 * 4 * 4 * 3) ** 3 * 2**3


def test_random_decisions_round_trip_through_architectures():
    space = ConvNetSpace(6)
    rng = random.Random(0)
    for _ in range(20):
        decisions = space.sample(rng)
        arch = space.to_arch(decisions)
        assert isinstance(arch, ConvNet) and arch.depth == 6
        assert space.from_arch(arch) == decisions
        assert space.decode(space.encode(decisions)) == decisions
        assert space.arch_from_json(space.arch_to_json(arch)) == arch
        for i, layer in enumerate(arch.layers):
            assert layer.inputs == tuple(j for j in range(i) if decisions[f"layer{i}.in{j}"])


def test_stride1_variant_has_no_stride_decision():
    space = ConvNetSpace(4, STRIDE1_CHOICES)
    assert not any(n.endswith(".stride") for n in space.names)
    arch = space.to_arch(space.sample(random.Random(1)))
    assert all(layer.stride == 1 for layer in arch.layers)
    strided = ConvNetSpace(4).to_arch(ConvNetSpace(4).sample(random.Random(3)))
    if any(layer.stride != 1 for layer in strided.layers):
        with pytest.raises(SpaceError, match="stride"):
            space.from_arch(strided)


def test_depth_grows_in_place_and_old_architectures_still_decode():
    space = ConvNetSpace(2)
    old = space.sample(random.Random(0))
    old_row = space.encode(old)
    space.set_depth(4)
    assert space.depth == 4 and len(space) == 4 * 4 + 6
    assert space.decode(old_row) == old  # depth read from the row length
    assert space.encode(old) == old_row
    assert space.to_arch(old).depth == 2
    assert space.from_arch(NAMED_CONV_NETS["skip15"])["layer14.in13"] == 1
    assert space.depth_for_steps(len(old_row)) == 2
    with pytest.raises(SpaceError, match="match no depth"):
        space.depth_for_steps(len(old_row) + 1)


def test_adding_a_per_layer_choice_is_one_declaration():
    # One more entry in the declaration: every layer gets a batch-norm on/off and a pooling
    # decision; controller heads, architectures and children follow without other changes.
    space = ConvNetSpace(3, {**PAPER_CHOICES, "batch_norm": (True, False), "pool": ("none", "max")})
    assert "layer2.batch_norm" in space.names and "layer0.pool" in space.names
    assert space["layer1.batch_norm"].head == "batch_norm"
    rng = random.Random(2)
    seen_bn, seen_pool = set(), set()
    for _ in range(10):
        decisions = space.sample(rng)
        arch = space.to_arch(decisions)
        seen_bn |= {layer.batch_norm for layer in arch.layers}
        seen_pool |= {layer.pool for layer in arch.layers}
        assert space.from_arch(ConvNet.from_json(arch.to_json())) == decisions
    assert seen_bn == {True, False} and seen_pool == {"none", "max"}
    logits = ConvChild(arch)(torch.randn(1, 3, 8, 8))
    assert logits.shape == (1, 10)
    # The plain space refuses an architecture that uses an option it does not choose.
    no_bn = ConvNet.from_dict(
        {"layers": [{"fh": 3, "fw": 3, "filters": 24, "stride": 1, "inputs": [],
                     "batch_norm": False}]}
    )  # fmt: skip
    with pytest.raises(SpaceError, match="batch_norm is not a choice"):
        ConvNetSpace(1).from_arch(no_bn)


def test_without_anchors_layers_form_a_chain():
    space = ConvNetSpace(3, anchors=False)
    assert not any(".in" in n for n in space.names)
    arch = space.to_arch(space.sample(random.Random(0)))
    assert [layer.inputs for layer in arch.layers] == [(), (0,), (1,)]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"depth": 0}, "depth must be an integer >= 1"),
        ({"depth": 2, "layer_choices": {**PAPER_CHOICES, "dilation": (1, 2)}}, "dilation"),
        ({"depth": 2, "layer_choices": {"fh": (3,), "fw": (3,)}}, "missing"),
        ({"depth": 2, "layer_choices": {**PAPER_CHOICES, "fh": (2, 3)}}, "odd integer"),
        ({"depth": 2, "layer_choices": {**PAPER_CHOICES, "pool": ("none", "lp")}}, "'pool'"),
    ],
)
def test_bad_declarations(kwargs, fragment):
    with pytest.raises(SpaceError, match=fragment):
        ConvNetSpace(**kwargs)
