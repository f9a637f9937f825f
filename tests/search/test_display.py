import io

from pynas.search.display import SearchDisplay, sparkline


class TTY(io.StringIO):
    def isatty(self):
        return True


def record(index, reward, ppl=None, status="ok"):
    return {"index": index, "reward": reward, "ppl": ppl, "status": status}


def test_tty_updates_one_line_and_prints_new_bests():
    stream = TTY()
    d = SearchDisplay(10, stream=stream)
    d.child(record(0, 0.5, 12.0), "CELL-A")
    d.child(record(1, 0.1, status="failed"), "CELL-B")
    d.batch(0.3)
    d.close()
    text = stream.getvalue()
    assert "\r" in text and "CELL-A" in text and "CELL-B" not in text
    last = text.rstrip("\n").split("\r")[-1]
    assert "children 2/10 (1 failed)" in last and "best 0.5 (ppl 12.0) (child 0)" in last
    assert "batch mean reward 0.3 -> 0.3" in last and "ETA" in last


def test_a_failure_is_never_the_best():
    stream = TTY()
    d = SearchDisplay(10, stream=stream)
    d.child(record(0, 0.0, 19379.2, status="failed"), "CELL-A")
    assert d.best is None and "CELL-A" not in stream.getvalue()
    d.child(record(1, 1e-6, 8000.0), "CELL-B")
    assert d.best["index"] == 1 and "CELL-B" in stream.getvalue()


def test_plain_lines_when_not_a_tty():
    stream = io.StringIO()
    d = SearchDisplay(4, stream=stream, plain_interval=1e9)
    for i in range(4):
        d.child(record(i, i / 10))
    d.batch(0.15)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("children 4/4 |")


def test_eta_respects_the_time_limit():
    d = SearchDisplay(1000, enabled=False, time_limit=60.0, elapsed_before=50.0)
    d.child(record(0, 0.1))
    assert d.eta_seconds() <= 10.0


def test_sparkline():
    assert sparkline([0.0, 1.0, 0.5]) == "▁█▄"
    assert sparkline([]) == ""
