"""REINFORCE on a local Ray instance (S=2 shards, K=2 replicas, m=2): faults and resume.

One Ray instance serves the module (starting one takes seconds). Faults are real: processes are
found among this test's descendants by name and SIGKILLed while they work.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import ray
import torch

from pynas.search.cli import main
from pynas.spaces import DecisionSpace  # noqa: F401  (imported before Ray's workers need it)
from pynas.strategies import Reinforce

PS = ["--executor", "ray", "--servers", "2", "--replicas", "2", "--batch-size", "2"]
TOY = ["--task", "toy", "--seed", "2", "--quiet"]


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def records(run):
    return [json.loads(line) for line in (run / "children.jsonl").read_text().splitlines()]


def gradient_lines(run):
    return [json.loads(line) for line in (run / "gradients.jsonl").read_text().splitlines()]


def checkpoint(run):
    return torch.load(run / "checkpoint.pt", weights_only=False)


def assert_each_gradient_applied_once(run, batches, grads_per_update):
    state = checkpoint(run)
    shards = state["ray"]["shards"]
    assert len(shards) == 2
    for shard in shards:
        ids = [a["id"] for a in shard["applied"]]
        assert len(ids) == len(set(ids))  # never twice
        assert sorted(ids) == list(range(batches))  # every batch's gradient
        assert shard["buffer"] == [] and shard["received"] == list(range(batches))
        assert shard["version"] == batches // grads_per_update
    lines = gradient_lines(run)
    assert sorted(x["id"] for x in lines) == list(range(batches))
    for x in lines:
        assert x["staleness"] == [
            a - c for a, c in zip(x["version_applied"], x["version_computed"], strict=True)
        ]
        assert min(x["staleness"]) >= 0
    return state


def test_faults_killed_workers_and_a_killed_replica(cluster, tmp_path, run_cli, killer):
    run = tmp_path / "run"
    # child 3's worker dies once (re-run, ok); child 6's on every attempt (failed after 2);
    # the replica working on batch 5 is killed while it trains child 10 (it is restarted from
    # the servers' parameters and finishes the batch)
    kill = killer({"pynas-c3": 1, "pynas-c6": 99, "pynas-b5@pynas-c10": 1})
    argv = [*TOY, *PS, "--grads-per-update", "2", "--children", "16", "--run-dir", str(run),
            "--child-delay", "0.5", "--child-retries", "1"]  # fmt: skip
    code, out, err = run_cli(main, argv)
    killed = kill.stop()
    assert code == 0, err
    assert [len(killed[k]) for k in kill.killed] == [1, 2, 1], killed  # c6: no 3rd attempt
    got = records(run)
    assert sorted(r["index"] for r in got) == list(range(16))  # every child exactly once
    by_index = {r["index"]: r for r in got}
    assert by_index[3]["status"] == "ok" and by_index[3]["metrics"]["attempts"] == 2
    six = by_index[6]
    assert six["status"] == "failed" and six["metrics"]["attempts"] == 2
    assert "worker died" in six["reason"] and "2 attempts" in six["reason"]
    assert all("log_prob" in r and "entropy" in r for r in got)
    state = assert_each_gradient_applied_once(run, batches=8, grads_per_update=2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["children_done"] == 16 and summary["failed"] == 1
    servers = summary["parameter_servers"]
    assert servers["replica_restarts"] == 1 and servers["gradients_applied"] == 8
    # the checkpoint's strategy entry is a Reinforce state (same format as the local search)
    strategy = Reinforce(DecisionSpace({"x": [0]}), "paper")
    assert state["strategy"]["version"] == 4
    with pytest.raises(RuntimeError):  # a different space's controller does not fit ...
        strategy.load_state_dict(state["strategy"])
    from pynas.tasks.toy import TOY_SPACE

    toy = Reinforce(TOY_SPACE, "paper", batch_size=2, grads_per_update=2, lr=0.03)
    toy.load_state_dict(state["strategy"])  # ... the toy space's does
    assert toy.version == 4


def driver_killed(cluster, run, logged):
    """A 14-child search on `cluster` whose driver is SIGKILLed once `logged` children are in."""
    argv = [*TOY, *PS, "--address", cluster, "--children", "14", "--run-dir", str(run),
            "--child-delay", "0.3"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "pynas.search", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    log = run / "children.jsonl"
    # a hang guard, not a timing: a Ray cluster on a loaded 2-core machine can take minutes
    deadline = time.monotonic() + 600
    while not (log.exists() and log.read_bytes().count(b"\n") >= logged):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the Ray search made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return records(run)


def assert_resumed_exactly_once(run, before):
    got = records(run)
    assert got[: len(before)] == before  # nothing logged before the kill was lost or rewritten
    assert sorted(r["index"] for r in got) == list(range(14))  # and nothing was duplicated
    assert_each_gradient_applied_once(run, batches=7, grads_per_update=1)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["children_done"] == 14


def test_driver_killed_then_resumed(cluster, tmp_path, run_cli):
    run = tmp_path / "run"
    before = driver_killed(cluster, run, logged=5)
    assert 5 <= len(before) < 14
    code, out, err = run_cli(main, ["--resume", str(run)])
    assert code == 0, err
    assert "resumed:" in err
    assert_resumed_exactly_once(run, before)


def test_other_strategies_run_each_child_as_a_ray_task(cluster, tmp_path, run_cli):
    run = tmp_path / "run"
    argv = [*TOY, "--executor", "ray", "--strategy", "random", "--children", "6",
            "--run-dir", str(run)]  # fmt: skip
    code, _, err = run_cli(main, argv)
    assert code == 0, err
    assert sorted(r["index"] for r in records(run)) == list(range(6))
    assert "a task per child" in err


def test_bad_ray_input_exits_2(cluster, tmp_path, run_cli):
    run = tmp_path / "run"
    cases = [
        (["--address", "127.0.0.1:1"], "no Ray cluster answers there"),
        (["--address", "nonsense"], "expected HOST:PORT"),
        (["--servers", "99"], "--servers: 99 shards for"),
        (["--strategy", "random", "--replicas", "3"], "apply to --strategy reinforce only"),
    ]
    for k, (extra, message) in enumerate(cases):
        argv = [*TOY, "--executor", "ray", "--run-dir", str(run / str(k)), *extra]
        code, _, err = run_cli(main, argv)
        assert code == 2 and message in err, (extra, err)
        assert not (run / str(k)).exists()  # refused before the run directory was made


@pytest.mark.slow
def test_ptb_search_on_ray(cluster, tmp_path, run_cli, ptb_dir):
    run = tmp_path / "run"
    argv = ["--task", "ptb", "--data-dir", str(ptb_dir), *PS, "--children", "4",
            "--run-dir", str(run), "--quiet"]  # fmt: skip
    code, out, err = run_cli(main, argv)
    assert code == 0, err
    got = records(run)
    assert sorted(r["index"] for r in got) == [0, 1, 2, 3]
    # a random cell may diverge (SPEC §5: a failure with its reason); the others train
    ok = [r for r in got if r["status"] == "ok"]
    assert ok and all(r["ppl"] > 1 for r in ok)
    assert all(r["status"] == "failed" and r["reason"] for r in got if r not in ok)
    assert_each_gradient_applied_once(run, batches=2, grads_per_update=1)
    assert "top architectures" in out


def test_damaged_checkpoint_falls_back_to_the_previous_one(cluster, tmp_path, run_cli):
    run = tmp_path / "run"
    before = driver_killed(cluster, run, logged=7)
    latest = run / "checkpoint.pt"
    assert (run / "checkpoint.prev.pt").is_file()
    latest.write_bytes(latest.read_bytes()[:200])  # truncated
    code, out, err = run_cli(main, ["--resume", str(run)])
    assert code == 0, err
    assert (
        "checkpoint.pt cannot be read" in err and "continuing from the previous checkpoint" in err
    )
    assert_resumed_exactly_once(run, before)
