"""pynas.io: the codec of every run file (non-finite numbers, escapes, architectures) and
the JSONL log (torn last lines, damaged lines set aside), atomic replacement."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynas.io import (
    DamagedFileError,
    DamagedLinesError,
    JsonlFile,
    decode,
    encode,
    finite_float,
    read_json,
    write_atomic,
    write_json,
)


def test_append_writes_complete_lines(tmp_path):
    log = JsonlFile(tmp_path / "children.jsonl")
    log.append({"index": 0, "arch": {"a": 1}, "reward": 0.5})
    log.append({"index": 1, "arch": {"a": 2}, "reward": 0.25})
    text = (tmp_path / "children.jsonl").read_text()
    assert text == (
        '{"index":0,"arch":{"a":1},"reward":0.5}\n{"index":1,"arch":{"a":2},"reward":0.25}\n'
    )
    assert [r["index"] for r in log.read().records] == [0, 1]


@pytest.mark.parametrize("cut", [1, 10, 39])
def test_torn_last_line_is_dropped_and_cut_off(tmp_path, cut):
    path = tmp_path / "children.jsonl"
    log = JsonlFile(path)
    log.append({"index": 0, "reward": 1.0})
    good = path.read_bytes()
    line = json.dumps({"index": 1, "arch": {"op": "conv3"}, "reward": 0.125}).encode() + b"\n"
    path.write_bytes(good + line[:cut])
    report = log.read()
    assert [r["index"] for r in report.records] == [0]
    assert report.torn_bytes == cut
    assert path.read_bytes() == good  # repaired: the next append starts on a fresh line
    log.append({"index": 1, "reward": 0.125})
    assert [r["index"] for r in log.read().records] == [0, 1]


def test_complete_json_without_newline_counts_as_torn(tmp_path):
    path = tmp_path / "children.jsonl"
    path.write_bytes(b'{"index":0}\n{"index":1}')
    assert [r["index"] for r in JsonlFile(path).read().records] == [0]


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "children.jsonl"
    path.write_bytes(b'{"index":0}\n{"ind\n{"index":2}\n')
    with pytest.raises(DamagedLinesError, match="line 2"):
        JsonlFile(path).read()
    assert path.read_bytes() == b'{"index":0}\n{"ind\n{"index":2}\n'  # left untouched


def test_missing_log_reads_empty(tmp_path):
    assert JsonlFile(tmp_path / "none.jsonl").read().records == []


# ----- the codec: non-finite numbers, escaped strings, architectures untouched ----------------
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 0.0]
RESERVED = ["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", "~NaN", "~~inf", "~", "~x"]


def same(a, b):
    """Equality with NaN equal to NaN (and exact types: 1 is not 1.0, True is not 1)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def strict_loads(text):
    """json.loads that refuses the NaN/Infinity tokens strict JSON does not have."""

    def refuse(token):
        raise ValueError(f"non-standard token {token}")

    return json.loads(text, parse_constant=refuse)


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.sampled_from([-(10**400), 0, -1]),
)
scalars = st.one_of(
    numbers, st.none(), st.booleans(), st.text(max_size=8), st.sampled_from(RESERVED)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=6).filter(lambda k: k != "arch"), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_value_that_can_be_written_reads_back_equal(value):
    text = encode(value)
    strict_loads(text)  # strict JSON: no NaN/Infinity tokens
    assert same(decode(text), value)
    assert same(decode(encode(value, indent=2)), value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=6).filter(lambda k: k != "arch"), values, max_size=6))
def test_a_record_reads_back_from_a_jsonl_file(tmp_path_factory, record):
    log = JsonlFile(tmp_path_factory.mktemp("log") / "x.jsonl")
    log.append(record)
    log.append_all([record, {"arch": {"k": "NaN"}}])
    got = log.read().records
    assert same(got[0], record) and same(got[1], record)
    assert got[2] == {"arch": {"k": "NaN"}}


def test_the_documented_convention():
    record = {"ppl": math.inf, "metrics": {"epoch_ppl": [1.5, math.inf, -math.inf, math.nan]}}
    assert encode(record) == (
        '{"ppl":"Infinity","metrics":{"epoch_ppl":[1.5,"Infinity","-Infinity","NaN"]}}'
    )
    # a string that would read as a number is escaped, and unescaped on reading
    assert encode({"reason": "NaN", "note": "~inf"}) == '{"reason":"~NaN","note":"~~inf"}'
    assert decode('{"reason":"~NaN","note":"~~inf"}') == {"reason": "NaN", "note": "~inf"}
    # what earlier versions wrote: "nan"/"inf" strings (ChildResult.to_dict), bare tokens
    old = decode('{"ppl":"inf","x":"-inf","y":"nan","z":NaN,"w":-Infinity}')
    assert old["ppl"] == math.inf and old["x"] == -math.inf and math.isnan(old["y"])
    assert math.isnan(old["z"]) and old["w"] == -math.inf


def test_architectures_are_never_transformed():
    arch = {"op": "NaN", "width": "Infinity", "list": ["inf", "~x"]}
    text = encode({"index": 0, "arch": arch, "top": [{"arch": arch, "ppl": math.nan}]})
    assert '"arch":{"op":"NaN","width":"Infinity","list":["inf","~x"]}' in text
    got = decode(text)
    assert got["arch"] == arch and got["top"][0]["arch"] == arch
    assert math.isnan(got["top"][0]["ppl"])
    with pytest.raises(ValueError):  # an architecture is canonical JSON: no NaN inside
        encode({"arch": {"x": math.nan}})


def test_numpy_numbers_are_written_as_numbers():
    np = pytest.importorskip("numpy")
    text = encode({"a": np.float32(0.5), "b": np.int64(3), "c": np.float64("inf")})
    assert decode(text) == {"a": 0.5, "b": 3, "c": math.inf}


def test_finite_float():
    assert finite_float(3) == 3.0 and finite_float(-1e308) == -1e308
    for value in (math.nan, math.inf, 10**400, True, None, "1", [1]):
        assert finite_float(value) is None


def test_write_atomic_keeps_the_previous_content(tmp_path):
    path, prev = tmp_path / "state", tmp_path / "state.prev"
    write_atomic(path, b"one", keep_previous=prev)
    assert path.read_bytes() == b"one" and not prev.exists()
    write_atomic(path, b"two", keep_previous=prev)
    assert path.read_bytes() == b"two" and prev.read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state", "state.prev"]


def test_read_json_names_a_damaged_file(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"ppl": math.inf})
    assert read_json(path) == {"ppl": math.inf}
    for data in (b"", b'{"ppl": 1', b"\xff\xfe"):
        path.write_bytes(data)
        with pytest.raises(DamagedFileError, match="summary.json is damaged"):
            read_json(path)


def test_damaged_lines_are_set_aside_with_their_exact_bytes(tmp_path):
    path = tmp_path / "log.jsonl"
    bad1, bad2 = b'{"index":1,"ar\xff', b"garbage"
    path.write_bytes(b'{"index":0}\n' + bad1 + b"\n" + bad2 + b'\n{"index":3}\n{"ind')
    with pytest.raises(DamagedLinesError, match=r"2 line\(s\).*line 2.*line 3"):
        JsonlFile(path).read(repair=False)
    read = JsonlFile(path).read(repair=False, allow_damaged=True)
    assert [r["index"] for r in read.records] == [0, 3] and read.torn_bytes == 5
    assert [(d.number, d.data) for d in read.damaged] == [(2, bad1), (3, bad2)]
    aside = JsonlFile(path).set_aside(read.damaged, [{"index": 9, "ppl": math.inf}])
    assert path.read_bytes() == b'{"index":0}\n{"index":3}\n{"index":9,"ppl":"Infinity"}\n'
    moved = JsonlFile(aside).read().records
    assert [m["line"] for m in moved] == [2, 3]
    assert [m["text"].encode("utf-8", "surrogateescape") for m in moved] == [bad1, bad2]
