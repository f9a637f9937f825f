import json
import random

import pytest

from pynas.arch import ACTIVATIONS, COMBINES, NAMED_CELLS, ArchitectureError, RNNCell, load_rnn_cell


def random_cell(base: int, rng: random.Random) -> RNNCell:
    n = 2 * base - 1
    return RNNCell(
        base=base,
        nodes=tuple((rng.choice(COMBINES), rng.choice(ACTIVATIONS)) for _ in range(n)),
        inject=(rng.choice(COMBINES), rng.choice(ACTIVATIONS)),
        c_out=rng.randrange(n),
        inject_at=rng.randrange(n),
    )


@pytest.mark.parametrize("base", [2, 4, 8, 16, 32])
def test_canonical_json_round_trips(base):
    rng = random.Random(base)
    for _ in range(20):
        cell = random_cell(base, rng)
        text = cell.to_json()
        again = RNNCell.from_json(text)
        assert again == cell
        assert again.to_json() == text


def test_canonical_json_has_spec_layout():
    data = json.loads(NAMED_CELLS["nas_cell"].to_json())
    assert list(data) == ["kind", "base", "nodes", "inject", "c_out", "inject_at"]
    assert data["kind"] == "rnn_cell"
    assert data["base"] == 8 and len(data["nodes"]) == 15
    assert data["nodes"][3] == ["elem_mult", "relu"]
    assert data["nodes"][14] == ["elem_mult", "tanh"]
    assert data["inject"] == ["add", "tanh"] and data["c_out"] == 12 and data["inject_at"] == 8


def test_tree_numbering_level_by_level():
    cell = NAMED_CELLS["nas_cell"]
    expected = {
        8: (0, 1),
        9: (2, 3),
        10: (4, 5),
        11: (6, 7),
        12: (8, 9),
        13: (10, 11),
        14: (12, 13),
    }
    assert {k: cell.children(k) for k in range(8, 15)} == expected
    assert cell.root == 14
    with pytest.raises(ValueError):
        cell.children(3)


def test_render_one_line_per_node():
    text = NAMED_CELLS["nas_cell"].render()
    lines = text.splitlines()
    assert "n12 = identity(n8 * n9)  -> c_t" in lines
    assert "n14 = tanh(n12 * n13)  -> h_t" in lines
    assert "n8 = tanh(n8 + c_prev)  (inject)" in lines
    assert lines[0] == "n0 = sigmoid(x·W0 + h·U0)"
    assert len(lines) == 15 + 1  # every node plus the inject line


def good_dict() -> dict:
    return json.loads(NAMED_CELLS["nas_cell"].to_json())


@pytest.mark.parametrize(
    "mutate, field, fragment",
    [
        (lambda d: d["nodes"].__setitem__(2, ["concat", "tanh"]), "nodes[2][0]", "add"),
        (lambda d: d["nodes"].__setitem__(5, ["add", "gelu"]), "nodes[5][1]", "sigmoid"),
        (lambda d: d.__setitem__("inject", ["add", "softplus"]), "inject[1]", "identity"),
        (lambda d: d.__setitem__("c_out", 15), "c_out", "0..14"),
        (lambda d: d.__setitem__("inject_at", -1), "inject_at", "0..14"),
        (lambda d: d.__setitem__("c_out", "12"), "c_out", "0..14"),
        (lambda d: d["nodes"].pop(), "nodes", "15 nodes"),
        (lambda d: d.__setitem__("base", 6), "base", "power of two"),
        (lambda d: d.__setitem__("base", 1), "base", "power of two"),
        (lambda d: d.__setitem__("kind", "conv_net"), "kind", "rnn_cell"),
        (lambda d: d.pop("inject"), "inject", "missing"),
        (lambda d: d.__setitem__("colour", 3), "colour", "unknown field"),
        (lambda d: d["nodes"].__setitem__(0, "add"), "nodes[0]", "pair"),
    ],
)
def test_malformed_architectures_name_field_value_and_allowed(mutate, field, fragment):
    data = good_dict()
    mutate(data)
    with pytest.raises(ArchitectureError) as info:
        RNNCell.from_json(json.dumps(data))
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["not json at all", "{", "[1, 2]", "null"])
def test_not_json_or_not_an_object(text):
    with pytest.raises(ArchitectureError) as info:
        RNNCell.from_json(text)
    assert "JSON" in str(info.value)


def test_load_rnn_cell_name_file_inline(tmp_path):
    cell = NAMED_CELLS["nas_cell"]
    assert load_rnn_cell("nas_cell") is cell
    path = tmp_path / "cell.json"
    path.write_text(cell.to_json())
    assert load_rnn_cell(str(path)) == cell
    assert load_rnn_cell(cell.to_json()) == cell
    with pytest.raises(ArchitectureError, match="nor an existing JSON file"):
        load_rnn_cell(str(tmp_path / "missing.json"))
