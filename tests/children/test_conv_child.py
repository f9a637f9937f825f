"""The CNN child: layer wiring, padding of skip inputs, strides, final concat, options."""

import random

import pytest
import torch
from torch import nn

from pynas.arch import NAMED_CONV_NETS, ConvNet
from pynas.children.conv_net import ConvChild, count_parameters

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


def net(*layers):
    """layers: (fh, fw, filters, stride, inputs[, extra dict])."""
    out = []
    for spec in layers:
        fh, fw, filters, stride, inputs, *extra = spec
        d = {"fh": fh, "fw": fw, "filters": filters, "stride": stride, "inputs": list(inputs)}
        if extra:
            d.update(extra[0])
        out.append(d)
    return ConvNet.from_dict({"kind": "conv_net", "layers": out})


def capture_block_inputs(model):
    seen = {}
    for i, block in enumerate(model.blocks):
        block.register_forward_pre_hook(lambda mod, args, i=i: seen.__setitem__(i, args[0]))
    return seen


def capture_block_outputs(model):
    seen = {}
    for i, block in enumerate(model.blocks):
        block.register_forward_hook(lambda mod, args, out, i=i: seen.__setitem__(i, out))
    return seen


def test_skip15_classifies_and_backpropagates():
    torch.manual_seed(0)
    model = ConvChild(NAMED_CONV_NETS["skip15"])
    images = torch.randn(2, 3, 16, 16)
    logits = model(images)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_smaller_inputs_are_zero_padded_bottom_right_before_concat():
    # L0: 8x8, L1 (stride 2): 4x4, L2 concatenates L0 (6 ch) and L1 (4 ch).
    arch = net((3, 3, 6, 1, ()), (3, 3, 4, 2, (0,)), (1, 1, 5, 1, (0, 1)))
    model = ConvChild(arch).eval()
    ins, outs = capture_block_inputs(model), capture_block_outputs(model)
    model(torch.randn(2, 3, 8, 8))
    concat = ins[2]
    assert concat.shape == (2, 10, 8, 8)
    torch.testing.assert_close(concat[:, :6], outs[0], rtol=0, atol=0)
    small = concat[:, 6:]
    torch.testing.assert_close(small[:, :, :4, :4], outs[1], rtol=0, atol=0)  # top-left
    assert (small[:, :, 4:, :] == 0).all() and (small[:, :, :, 4:] == 0).all()  # bottom, right
    assert (outs[1] != 0).any()


def test_padding_is_on_the_larger_side_for_unequal_heights_and_widths():
    # A 1x7 kernel with stride 3 on an 8x8 map gives 3x3; concat with an 8x8 map.
    arch = net((3, 3, 2, 1, ()), (1, 7, 3, 3, (0,)), (3, 3, 2, 1, (0, 1)))
    model = ConvChild(arch).eval()
    ins, outs = capture_block_inputs(model), capture_block_outputs(model)
    model(torch.randn(1, 3, 8, 8))
    assert outs[1].shape[2:] == (3, 3)
    torch.testing.assert_close(ins[2][:, 2:, :3, :3], outs[1], rtol=0, atol=0)
    assert ins[2][:, 2:].abs().sum() == outs[1].abs().sum()  # nothing else is non-zero


def test_layers_without_inputs_read_the_image():
    arch = net((3, 3, 4, 1, ()), (5, 1, 4, 2, ()), (3, 3, 4, 1, (0, 1)))
    model = ConvChild(arch)
    ins = capture_block_inputs(model)
    images = torch.randn(2, 3, 8, 8)
    model(images)
    assert ins[0] is images and ins[1] is images
    assert model.blocks[1][0].in_channels == 3


def test_unused_layers_are_concatenated_into_the_final_layer():
    # Layers 1 and 3 are nobody's input; layer 1 is 4x4, layer 3 is 8x8.
    arch = net((3, 3, 4, 1, ()), (3, 3, 5, 2, (0,)), (3, 3, 6, 1, (0,)), (3, 3, 7, 1, (2,)))
    assert arch.outputs == (1, 3)
    model = ConvChild(arch).eval()
    outs = capture_block_outputs(model)
    images = torch.randn(2, 3, 8, 8)
    final = model.features(images)
    assert final.shape == (2, 12, 8, 8)
    torch.testing.assert_close(final[:, :5, :4, :4], outs[1], rtol=0, atol=0)
    torch.testing.assert_close(final[:, 5:], outs[3], rtol=0, atol=0)
    assert model.classifier.in_features == 12
    expected = model.classifier(final.mean(dim=(2, 3)))
    torch.testing.assert_close(model(images), expected)


def test_stride_one_keeps_size_and_sizes_match_the_architecture():
    rng = random.Random(0)
    for _ in range(12):
        depth = rng.randint(1, 6)
        layers = []
        for i in range(depth):
            inputs = tuple(j for j in range(i) if rng.random() < 0.4)
            extra = {"pool": rng.choice(["none", "none", "max", "avg"])}
            layers.append(
                (rng.choice([1, 3, 5, 7]), rng.choice([1, 3, 5, 7]), rng.choice([2, 3]),
                 rng.choice([1, 2, 3]), inputs, extra)
            )  # fmt: skip
        arch = net(*layers)
        size = rng.choice([5, 8, 11])
        model = ConvChild(arch).eval()
        outs = capture_block_outputs(model)
        model(torch.randn(1, 3, size, size))
        sizes = arch.output_sizes(size)
        for i, layer in enumerate(arch.layers):
            assert outs[i].shape[1:] == (layer.filters, sizes[i], sizes[i]), arch.to_json()
    stride1 = ConvChild(net((7, 1, 2, 1, ()), (1, 5, 2, 1, (0,))))
    outs = capture_block_outputs(stride1)
    stride1(torch.randn(1, 3, 9, 6))
    assert outs[0].shape[2:] == (9, 6) and outs[1].shape[2:] == (9, 6)


def test_compiled_op_and_reference_give_the_same_network():
    arch = NAMED_CONV_NETS["skip15"]
    torch.manual_seed(1)
    op_model = ConvChild(arch, concat="op")
    ref_model = ConvChild(arch, concat="reference")
    ref_model.load_state_dict(op_model.state_dict())
    images = torch.randn(3, 3, 12, 12)
    out_op, out_ref = op_model(images), ref_model(images)
    torch.testing.assert_close(out_op, out_ref, rtol=0, atol=0)
    out_op.square().sum().backward()
    out_ref.square().sum().backward()
    for (name, p), q in zip(op_model.named_parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-6, msg=name)


def test_layer_options_change_the_block():
    arch = net(
        (3, 3, 4, 1, (), {"batch_norm": False}),
        (3, 3, 4, 1, (0,), {"pool": "max"}),
        (3, 3, 4, 1, (1,), {"pool": "avg"}),
    )
    model = ConvChild(arch)
    kinds = [[type(m) for m in block] for block in model.blocks]
    assert kinds[0] == [nn.Conv2d, nn.ReLU] and model.blocks[0][0].bias is not None
    assert kinds[1] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert model.blocks[1][0].bias is None
    assert kinds[2][-1] is nn.AvgPool2d
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_parameter_count_and_bad_concat_name():
    arch = net((3, 5, 4, 1, ()), (1, 1, 6, 1, (0,)))
    model = ConvChild(arch, num_classes=7)
    conv = 3 * 4 * 15 + 4 * 6  # no conv bias with batch norm
    bn = 2 * 4 + 2 * 6
    assert count_parameters(model) == conv + bn + 6 * 7 + 7
    with pytest.raises(ValueError, match="concat must be one of"):
        ConvChild(arch, concat="cuda")
