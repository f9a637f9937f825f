"""`--workers N`: same records as in-process; a worker killed mid-child; bad input exits 2."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pynas.search.cli import main

ARGS = ["--task", "toy", "--seed", "4", "--quiet", "--batch-size", "4"]


def records(run):
    return [json.loads(line) for line in (run / "children.jsonl").read_text().splitlines()]


def comparable(recs):
    drop = {"seconds", "metrics"}
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in recs),
                  key=lambda r: r["index"])  # fmt: skip


def test_workers_fault_tolerant_and_equal_to_in_process(tmp_path, run_cli, killer):
    ref = tmp_path / "ref"
    assert run_cli(main, [*ARGS, "--children", "12", "--run-dir", str(ref)])[0] == 0
    # child 5's worker is killed once (re-run, ok); child 9's on every attempt (failed after 2)
    kill = killer({"pynas-c5": 1, "pynas-c9": 99})
    run = tmp_path / "run"
    argv = [*ARGS, "--children", "12", "--run-dir", str(run), "--workers", "2",
            "--child-delay", "0.4", "--child-retries", "1"]  # fmt: skip
    code, out, err = run_cli(main, argv)
    killed = kill.stop()
    assert code == 0, err
    assert len(killed["pynas-c5"]) == 1 and len(killed["pynas-c9"]) == 2
    got = records(run)
    assert sorted(r["index"] for r in got) == list(range(12))  # each child exactly once
    by_index = {r["index"]: r for r in got}
    assert by_index[5]["status"] == "ok" and by_index[5]["metrics"]["attempts"] == 2
    nine = by_index[9]
    assert nine["status"] == "failed" and nine["reward"] == 0.0
    assert "killed by SIGKILL" in nine["reason"] and "2 attempts" in nine["reason"]
    assert nine["metrics"]["attempts"] == 2
    # everything else is what the in-process search logged (children are deterministic)
    expected = {r["index"]: r for r in comparable(records(ref))}
    for r in comparable(got):
        if r["index"] != 9:
            assert r == expected[r["index"]]
    assert "2 local worker processes" in err
    meta = json.loads((run / "run.json").read_text())
    assert meta["execution"]["workers"] == 2 and meta["execution"]["child_retries"] == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "0"], "--workers: must be >= 1"),
        (["--workers", "2", "--executor", "ray"], "--workers is for --executor local"),
        (["--servers", "2"], "--servers apply to --executor ray only"),
        (["--address", "127.0.0.1:1"], "--address apply to --executor ray only"),
        (["--child-retries", "1"], "--child-retries applies to worker processes"),
        (["--child-retries", "-1", "--workers", "2"], "--child-retries: must be >= 0"),
        (["--child-cpus", "x", "--executor", "ray"], "--child-cpus: expected a number"),
        (["--batch-size", "0"], "--batch-size: must be >= 1"),
    ],
)
def test_bad_execution_options_exit_2(tmp_path, run_cli, argv, message):
    run = tmp_path / "run"
    code, _, err = run_cli(main, ["--task", "toy", "--run-dir", str(run), *argv])
    assert code == 2 and message in err
    assert not run.exists()  # refused before the run directory was made


def test_resume_may_change_workers_but_not_the_executor(tmp_path, run_cli):
    run = tmp_path / "run"
    assert run_cli(main, [*ARGS, "--children", "4", "--run-dir", str(run)])[0] == 0
    code, _, err = run_cli(main, ["--resume", str(run), "--executor", "ray"])
    assert code == 2 and "uses --executor local" in err
    code, _, err = run_cli(main, ["--resume", str(run), "--servers", "3"])
    assert code == 2 and "drop --servers" in err
    code, _, err = run_cli(main, ["--resume", str(run), "--workers", "1", "--quiet"])
    assert code == 0, err


def test_executor_ray_without_ray_installed_exits_2(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    run = tmp_path / "run"
    code, _, err = run_cli(main, ["--task", "toy", "--run-dir", str(run), "--executor", "ray"])
    assert code == 2 and "needs Ray, which is not installed" in err and "pynas[ray]" in err
    assert not run.exists()


def test_search_with_workers_killed_with_sigkill_resumes_to_the_same_log(tmp_path, run_cli):
    """The driver dies (its workers die with it); --resume logs what an uninterrupted run does."""
    ref = tmp_path / "ref"
    assert run_cli(main, [*ARGS, "--children", "16", "--run-dir", str(ref)])[0] == 0
    run = tmp_path / "run"
    argv = [*ARGS, "--children", "16", "--run-dir", str(run), "--workers", "2",
            "--child-delay", "0.2"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pynas.search", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    log = run / "children.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_bytes().count(b"\n") >= 6):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.01)
    time.sleep(0.1)  # somewhere inside the second batch
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert 6 <= log.read_bytes().count(b"\n") < 16
    code, _, err = run_cli(main, ["--resume", str(run), "--workers", "2", "--quiet"])
    assert code == 0, err
    got = records(run)
    assert sorted(r["index"] for r in got) == list(range(16))
    assert comparable(got) == comparable(records(ref))
