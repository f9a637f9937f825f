"""A real search process killed with SIGKILL at random moments, resumed until it finishes."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from pynas.search.cli import main
from pynas.strategies import PRESETS

CHILDREN = 48
ARGS = ["--task", "toy", "--children", str(CHILDREN), "--seed", "5", "--quiet"]


def log_lines(run):
    path = run / "children.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def start(argv):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pynas.search", *argv]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def kill_at_random(proc, run, rng, wait_for_progress):
    """SIGKILL `proc` a random moment after it logged a new child (or after it started)."""
    before = log_lines(run)
    deadline = time.monotonic() + 60
    while wait_for_progress and log_lines(run) == before and proc.poll() is None:
        assert time.monotonic() < deadline, "search made no progress"
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.25))
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return finished


def records(run):
    text = (run / "children.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def without_seconds(recs):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in recs]


def controller_state(run):
    state = torch.load(run / "checkpoint.pt", weights_only=False)["strategy"]
    return state["controller"], state["version"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main([*ARGS, "--run-dir", str(run)]) == 0
    return run


def killed_and_resumed(tmp_path, reference, kills, seed, wait_for_progress=True):
    rng = random.Random(seed)
    run = tmp_path / "run"
    proc = start([*ARGS, "--run-dir", str(run), "--child-delay", "0.02"])
    killed = 0
    while True:
        finished = kill_at_random(proc, run, rng, wait_for_progress or killed == 0)
        if finished:
            assert proc.returncode == 0, proc.stderr
            break
        killed += 1
        if killed >= kills:
            proc = start(["--resume", str(run), "--quiet"])
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            break
        proc = start(["--resume", str(run), "--quiet"])
    got = records(run)
    assert sorted(r["index"] for r in got) == list(range(CHILDREN))  # complete, no duplicates
    assert without_seconds(got) == without_seconds(records(reference))
    ref_state, ref_version = controller_state(reference)
    state, version = controller_state(run)
    # CHILDREN // 8 updates of `epochs` optimizer steps each
    assert version == ref_version == CHILDREN // 8 * PRESETS["default"].epochs
    for k, v in ref_state.items():
        assert torch.equal(v, state[k]), k  # the controller continued from its checkpoints
    assert json.loads((run / "summary.json").read_text())["children_done"] == CHILDREN
    return killed


def test_sigkill_at_random_points_then_resume(tmp_path, reference):
    assert killed_and_resumed(tmp_path, reference, kills=3, seed=1) == 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_many_sigkills_including_during_startup(tmp_path, reference, seed):
    assert (
        killed_and_resumed(tmp_path, reference, kills=10, seed=100 + seed, wait_for_progress=False)
        >= 5
    )
