import json

import pytest

from pynas.search.childlog import ChildLog, ChildLogError


def test_append_writes_complete_lines(tmp_path):
    log = ChildLog(tmp_path / "children.jsonl")
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
    log = ChildLog(path)
    log.append({"index": 0, "reward": 1.0})
    good = path.read_bytes()
    line = json.dumps({"index": 1, "arch": {"op": "conv3"}, "reward": 0.125}).encode() + b"\n"
    path.write_bytes(good + line[:cut])
    report = log.read()
    assert [r["index"] for r in report.records] == [0]
    assert report.dropped_bytes == cut
    assert path.read_bytes() == good  # repaired: the next append starts on a fresh line
    log.append({"index": 1, "reward": 0.125})
    assert [r["index"] for r in log.read().records] == [0, 1]


def test_complete_json_without_newline_counts_as_torn(tmp_path):
    path = tmp_path / "children.jsonl"
    path.write_bytes(b'{"index":0}\n{"index":1}')
    assert [r["index"] for r in ChildLog(path).read().records] == [0]


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "children.jsonl"
    path.write_bytes(b'{"index":0}\n{"ind\n{"index":2}\n')
    with pytest.raises(ChildLogError, match="line 2"):
        ChildLog(path).read()
    assert path.read_bytes() == b'{"index":0}\n{"ind\n{"index":2}\n'  # left untouched


def test_missing_log_reads_empty(tmp_path):
    assert ChildLog(tmp_path / "none.jsonl").read().records == []
