"""A real weight-sharing search process killed with SIGKILL at random moments (training,
scoring, logging, checkpointing), resumed until it finishes: the same log, ranking, shared
weights and controller as an uninterrupted run."""

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

ROUNDS, SCORED = 5, 3
ARGS = ["--task", "ptb", "--weights", "shared", "--rounds", str(ROUNDS), "--train-steps", "3",
        "--archs-per-step", "2", "--scored-per-round", str(SCORED), "--rank-top", "2",
        "--rank-tokens", "500", "--seed", "4", "--quiet"]  # fmt: skip

MAX_KILLS = 6

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def log_lines(run):
    path = run / "children.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def start(argv, ptb_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pynas.search", *argv, "--data-dir", str(ptb_dir)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def records(run):
    text = (run / "children.jsonl").read_text()
    assert text.endswith("\n")
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in text.splitlines()]  # fmt: skip


def final_state(run):
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    return state["engine"]["model"], state["strategy"]["controller"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ptb_dir):
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main([*ARGS, "--run-dir", str(run), "--data-dir", str(ptb_dir)]) == 0
    return run


@pytest.mark.parametrize("seed", range(2))
def test_sigkill_at_random_moments_then_resume(tmp_path, reference, ptb_dir, seed):
    rng = random.Random(seed)
    run = tmp_path / "run"
    proc = start([*ARGS, "--run-dir", str(run)], ptb_dir)
    kills = 0
    while True:
        # after a new log line (a round being scored), a random moment: the rest of the
        # logging, the tell, the checkpoints, the next round's training or scoring; every
        # third kill lands during start-up instead (maybe before the first checkpoint)
        during_startup = kills % 3 == 2
        before, deadline = log_lines(run), time.monotonic() + 120
        while not during_startup and log_lines(run) == before and proc.poll() is None:
            assert time.monotonic() < deadline, "search made no progress"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.0) if during_startup else rng.uniform(0.0, 1.5))
        if proc.poll() is not None or kills == MAX_KILLS:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
        proc = start(["--resume", str(run), "--quiet"], ptb_dir)
    assert kills >= 2
    got = records(run)
    assert sorted(r["index"] for r in got) == list(range(ROUNDS * SCORED))  # nothing lost or twice
    assert got == records(reference)
    assert json.loads((run / "ranking.json").read_text()) == json.loads(
        (reference / "ranking.json").read_text()
    )
    weights, controller = final_state(run)
    ref_weights, ref_controller = final_state(reference)
    for k, v in ref_weights.items():
        assert torch.equal(v, weights[k]), k
    for k, v in ref_controller.items():
        assert torch.equal(v, controller[k]), k
