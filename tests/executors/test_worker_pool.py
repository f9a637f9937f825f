"""The local worker pool: results, a worker killed mid-item, retries exhausted, clean shutdown."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pynas.executors.base import WorkerError, death_reason
from pynas.executors.pool import WorkerPool


def square(x):
    return x, x * x, os.getpid()


class Slow:
    """Marks `dir/started-<item>-<pid>` when it starts an item, then sleeps `seconds`."""

    def __init__(self, directory, seconds):
        self.directory = str(directory)
        self.seconds = seconds

    def __call__(self, item):
        Path(self.directory, f"started-{item}-{os.getpid()}").touch()
        time.sleep(self.seconds)
        return item

    def failed(self, item, reason, attempts):
        return ("failed", item, reason, attempts)

    def retried(self, result, attempts):
        return ("retried", result, attempts)


class KillsItself:
    """Item 2 kills its own worker every time; the others return normally."""

    def __call__(self, item):
        if item == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return item

    def failed(self, item, reason, attempts):
        return ("failed", item, reason, attempts)


def boom(item):
    raise ValueError(f"bad item {item}")


@pytest.fixture(scope="module")
def pool():
    """One pool for the module: a worker start costs a torch import (seconds when loaded)."""
    with WorkerPool(2, retries=2) as shared:
        yield shared


def test_map_runs_items_in_worker_processes(pool):
    got = sorted(pool.map(square, range(6)))
    assert [(x, y) for x, y, _ in got] == [(x, x * x) for x in range(6)]
    pids = {pid for _, _, pid in got}
    assert os.getpid() not in pids and pids <= set(pool.pids())
    # workers persist between calls
    assert {pid for _, _, pid in pool.map(square, range(4))} <= set(pool.pids())


def test_close_stops_the_workers():
    pool = WorkerPool(1)
    assert list(pool.map(square, [2]))[0][:2] == (2, 4)
    (pid,) = pool.pids()
    pool.close()
    assert pool.pids() == [] and not Path(f"/proc/{pid}").exists()


def test_worker_killed_mid_item_is_retried_once_and_reported_once(pool, tmp_path):
    fn = Slow(tmp_path, 0.6)
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            hits = list(tmp_path.glob("started-3-*"))
            if hits:
                pid = int(hits[0].name.rsplit("-", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    got = list(pool.map(fn, range(6)))
    thread.join()
    assert killed
    assert sorted(r if isinstance(r, int) else r[1] for r in got) == list(range(6))
    assert [r for r in got if not isinstance(r, int)] == [("retried", 3, 2)]
    assert len(list(tmp_path.glob("started-3-*"))) == 2  # ran twice, reported once


def test_item_whose_worker_always_dies_is_failed_after_the_retries(pool):
    pool.retries = 1
    try:
        got = list(pool.map(KillsItself(), range(5)))
    finally:
        pool.retries = 2
    failed = [r for r in got if isinstance(r, tuple)]
    assert sorted(r for r in got if isinstance(r, int)) == [0, 1, 3, 4]
    assert len(failed) == 1
    kind, item, reason, attempts = failed[0]
    assert (kind, item, attempts) == ("failed", 2, 2)
    assert "killed by SIGKILL" in reason and "2 attempts" in reason


def test_death_without_a_failed_hook_and_exceptions_raise(pool):
    pool.retries = 0
    try:
        with pytest.raises(WorkerError, match="killed by SIGKILL"):
            list(pool.map(KillsItself().__call__, [2]))
    finally:
        pool.retries = 2
    with pytest.raises(WorkerError, match="bad item 7"):
        list(pool.map(boom, [7]))
    assert list(pool.map(square, [3]))[0][:2] == (3, 9)  # still usable


def test_death_reason_names_the_signal():
    assert death_reason(-9) == "worker process killed by SIGKILL"
    assert death_reason(3) == "worker process exited with code 3"


def test_bad_sizes():
    with pytest.raises(ValueError):
        WorkerPool(0)
    with pytest.raises(ValueError):
        WorkerPool(1, retries=-1)


def test_workers_die_with_the_process_that_owns_the_pool(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_worker_pool import Slow
        from pynas.executors.pool import WorkerPool
        pool = WorkerPool(1)
        for _ in pool.map(Slow({str(tmp_path)!r}, 60), [0]):
            pass
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("started-0-*")):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        worker = int(next(tmp_path.glob("started-0-*")).name.rsplit("-", 1)[1])
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and _state(worker) != "Z":
        assert time.monotonic() < deadline, "the worker outlived the killed owner"
        time.sleep(0.05)


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_death_reason_of_an_exception_names_its_type_and_first_line():
    reason = death_reason(RuntimeError("boom\nmore"), "Ray worker")
    assert reason == "Ray worker died (RuntimeError: boom)"
    assert death_reason(RuntimeError(""), "replica 1") == "replica 1 died (RuntimeError)"


def test_retries_rule_hooks_and_error():
    from pynas.executors.base import Retries

    def bare(item):
        return item

    rule = Retries(bare, 1)
    assert rule.again(1) and not rule.again(2)
    assert rule.result("r", 2) == "r"  # no hook: the result as it is
    with pytest.raises(WorkerError, match=r"item 7: gone \(on each of 2 attempts\)"):
        rule.died_every_time("x", "gone", 2, label=7)

    class Hooked:
        def __call__(self, item):
            return item

        def retried(self, result, attempts):
            return (result, attempts)

        def failed(self, item, reason, attempts):
            return ("failed", item, reason, attempts)

    rule = Retries(Hooked(), 0)
    assert rule.result("r", 1) == "r" and rule.result("r", 3) == ("r", 3)
    outcome = rule.died_every_time("x", "gone", 1)
    assert outcome == ("failed", "x", "gone (on each of 1 attempts)", 1)
