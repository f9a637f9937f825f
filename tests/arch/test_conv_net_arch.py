"""The conv_net architecture: canonical JSON, validation errors, structure, rendering."""

import json

import pytest

from pynas.arch import (
    LAYER_OPTIONS,
    NAMED_CONV_NETS,
    ArchitectureError,
    ConvLayer,
    ConvNet,
    load_conv_net,
)

SPEC_EXAMPLE = (
    '{"kind":"conv_net","layers":['
    '{"fh":3,"fw":5,"filters":36,"stride":1,"inputs":[]},'
    '{"fh":1,"fw":7,"filters":24,"stride":2,"inputs":[0]},'
    '{"fh":3,"fw":5,"filters":36,"stride":1,"inputs":[0,1]}]}'
)


def layers(*specs):
    return {
        "kind": "conv_net",
        "layers": [
            {"fh": 3, "fw": 3, "filters": 24, "stride": 1, "inputs": list(inputs)}
            for inputs in specs
        ],
    }


def test_canonical_json_round_trips_exactly():
    net = ConvNet.from_json(SPEC_EXAMPLE)
    assert net.to_json() == SPEC_EXAMPLE
    assert ConvNet.from_json(net.to_json()) == net
    assert net.depth == 3 and net.layers[2].inputs == (0, 1)


def test_non_canonical_input_gives_canonical_output():
    data = json.loads(SPEC_EXAMPLE)
    data["layers"][2]["inputs"] = [1, 0]
    data["layers"][0] = dict(reversed(list(data["layers"][0].items())))  # key order
    text = json.dumps(data, indent=2)
    assert ConvNet.from_json(text).to_json() == SPEC_EXAMPLE


def test_optional_keys_only_when_not_default():
    data = json.loads(SPEC_EXAMPLE)
    data["layers"][0]["batch_norm"] = True  # the default: dropped from the canonical form
    data["layers"][1]["pool"] = "max"
    data["layers"][2]["batch_norm"] = False
    net = ConvNet.from_dict(data)
    out = json.loads(net.to_json())
    assert "batch_norm" not in out["layers"][0]
    assert out["layers"][1] == {
        "fh": 1, "fw": 7, "filters": 24, "stride": 2, "inputs": [0], "pool": "max",
    }  # fmt: skip
    assert list(out["layers"][2]) == ["fh", "fw", "filters", "stride", "inputs", "batch_norm"]
    assert ConvNet.from_json(net.to_json()) == net
    assert not net.layers[2].batch_norm and net.layers[1].pool == "max"
    assert set(LAYER_OPTIONS) == {"pool", "batch_norm"}


@pytest.mark.parametrize(
    "mutate, field, fragment",
    [
        (lambda d: d["layers"][2].update(inputs=[0, 2]), "layers[2].inputs", "self-loop"),
        (lambda d: d["layers"][1].update(inputs=[2]), "layers[1].inputs", "forward reference"),
        (lambda d: d["layers"][2].update(inputs=[-1]), "layers[2].inputs", "out of range"),
        (lambda d: d["layers"][1].update(inputs=[7]), "layers[1].inputs", "out of range"),
        (lambda d: d["layers"][2].update(inputs=[0, 0]), "layers[2].inputs", "only once"),
        (lambda d: d["layers"][2].update(inputs="0,1"), "layers[2].inputs", "list"),
        (lambda d: d["layers"][2].update(inputs=[0.0]), "layers[2].inputs", "integers"),
        (lambda d: d["layers"][0].update(fh=4), "layers[0].fh", "odd integer"),
        (lambda d: d["layers"][0].update(fw=0), "layers[0].fw", "odd integer"),
        (lambda d: d["layers"][1].update(filters="36"), "layers[1].filters", "integer >= 1"),
        (lambda d: d["layers"][1].update(stride=True), "layers[1].stride", "integer >= 1"),
        (lambda d: d["layers"][1].update(pool="median"), "layers[1].pool", "'max'"),
        (lambda d: d["layers"][1].update(batch_norm=1), "layers[1].batch_norm", "[True, False]"),
        (lambda d: d["layers"][1].update(dilation=2), "layers[1].dilation", "unknown field"),
        (lambda d: d["layers"][1].pop("stride"), "layers[1].stride", "missing"),
        (lambda d: d["layers"].__setitem__(1, [3, 3]), "layers[1]", "expected an object"),
        (lambda d: d.update(kind="rnn_cell"), "kind", "conv_net"),
        (lambda d: d.update(layers=[]), "layers", "non-empty"),
        (lambda d: d.update(extra=1), "extra", "unknown field"),
        (lambda d: d.pop("layers"), "layers", "missing"),
    ],
)
def test_invalid_architectures_name_field_value_and_rule(mutate, field, fragment):
    data = json.loads(SPEC_EXAMPLE)
    mutate(data)
    with pytest.raises(ArchitectureError) as info:
        ConvNet.from_dict(data)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert f"'{field}'" in str(info.value)


def test_error_message_reads_well():
    data = json.loads(SPEC_EXAMPLE)
    data["layers"][1]["inputs"] = [2]
    with pytest.raises(ArchitectureError, match=r"layers\[1\]\.inputs' has invalid value 2: "
                       r"forward reference: layer 1 may only use layers 0\.\.0"):  # fmt: skip
        ConvNet.from_dict(data)


def test_not_json_and_not_an_object():
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        ConvNet.from_json("{layers: oops")
    with pytest.raises(ArchitectureError, match="expected a JSON object"):
        ConvNet.from_json("[1, 2]")


def test_constructed_layers_are_checked_at_their_position():
    free = ConvLayer(3, 3, 24, 1, (1,))  # no position yet: only basic checks
    assert free.inputs == (1,) and free.index is None
    with pytest.raises(ArchitectureError, match="self-loop"):
        ConvNet((ConvLayer(3, 3, 24, 1), free))
    with pytest.raises(ArchitectureError, match="forward reference"):
        ConvNet((free, ConvLayer(3, 3, 24, 1)))
    net = ConvNet((ConvLayer(3, 3, 24, 1), ConvLayer(3, 3, 24, 1), free))
    assert net.layers[2].index == 2
    with pytest.raises(ArchitectureError, match="out of range"):
        ConvLayer(3, 3, 24, 1, (-2,))


def test_outputs_are_layers_nobody_uses():
    net = ConvNet.from_dict(layers((), (0,), (0,), (1,)))
    assert net.outputs == (2, 3)
    assert net.in_channels() == (3, 24, 24, 24)
    assert ConvNet.from_dict(layers((), (0,), (0, 1))).outputs == (2,)


def test_output_sizes_follow_stride_and_padding_to_largest():
    data = layers((), (0,), (1,), (0, 2))
    data["layers"][1]["stride"] = 2
    data["layers"][2]["stride"] = 3
    data["layers"][3]["pool"] = "avg"
    net = ConvNet.from_dict(data)
    # 32 -> 32 -> ceil(32/2)=16 -> ceil(16/3)=6; layer 3 sees max(32, 6)=32, pools to 16.
    assert net.output_sizes(32) == (32, 16, 6, 16)
    assert net.output_sizes(7) == (7, 4, 2, 4)


def test_render_names_every_layer_and_the_final_concat():
    net = ConvNet.from_json(SPEC_EXAMPLE)
    text = net.render()
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("L0: conv 3x5 x36 /1 <- image") and "36x32x32" in lines[0]
    assert "L1: conv 1x7 x24 /2 <- L0" in lines[1] and "24x16x16" in lines[1]
    assert "<- L0+L1" in lines[2]
    assert lines[3].startswith("final: concat(L2) -> 36x32x32")
    assert str(net) == text


def test_named_skip15_and_loader(tmp_path):
    net = NAMED_CONV_NETS["skip15"]
    assert net.depth == 15 and net.num_skip_connections >= 10
    assert load_conv_net("skip15") is net
    assert load_conv_net(SPEC_EXAMPLE).depth == 3
    path = tmp_path / "arch.json"
    path.write_text(net.to_json())
    assert load_conv_net(str(path)) == net
    with pytest.raises(ArchitectureError, match="nor an existing JSON file"):
        load_conv_net(str(tmp_path / "missing.json"))
