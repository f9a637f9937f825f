"""CIFAR-10 search: progressive depth, the anchor controller in REINFORCE, resume, CLI."""

import json
import subprocess
import sys

import pytest
import torch

from pynas.controller import Controller
from pynas.search import Budget, RunJournal, Search
from pynas.strategies import RandomSearch, Reinforce
from pynas.tasks.cifar10 import TASK as CIFAR10
from pynas.tasks.cifar10 import CIFAR10Child, depth_at
from pynas.tasks.cifar10.task import default_budget, paper_budget
from pynas.tasks.registry import make_task

TINY_CHILD = {
    "start_depth": 1, "depth_every": 4, "depth_step": 2, "epochs": 1, "batch_size": 32,
    "train_images": 64, "valid_images": 50,
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


@pytest.fixture(scope="module")
def task(cifar10_dir):
    return make_task("cifar10", TINY_CHILD, 0, str(cifar10_dir))


def read_log(run_dir):
    return [json.loads(line) for line in (run_dir / "children.jsonl").read_text().splitlines()]


def search(run_dir, task, children, strategy=None):
    budget = Budget(children=children, batch_size=4, grads_per_update=1, child=TINY_CHILD)
    run = RunJournal(run_dir) if (run_dir / "run.json").exists() else RunJournal.create(run_dir, {})
    strategy = strategy or Reinforce(task.space, "paper", batch_size=4, seed=0)
    s = Search(run, task, strategy, budget)
    s.restore()
    return s, s.run_all()


def test_depth_schedule():
    assert [depth_at(n, 6, 1600, 2, None) for n in (0, 1599, 1600, 3200, 12799)] == [
        6, 6, 8, 10, 20,
    ]  # fmt: skip
    assert depth_at(10_000, 6, 1600, 2, 12) == 12
    assert depth_at(500, 3, 100, 0, None) == 3


def test_search_grows_depth_and_uses_the_anchor_controller(task, tmp_path):
    strategy = Reinforce(task.space, "paper", batch_size=4, seed=0)
    assert isinstance(strategy.controller, Controller) and strategy.controller.anchors
    assert strategy.settings.lr == pytest.approx(6e-4)  # paper preset, CNN family
    before = {k: v.clone() for k, v in strategy.controller.state_dict().items()}
    _, summary = search(tmp_path / "run", task, 8, strategy)
    records = read_log(tmp_path / "run")
    assert [r["index"] for r in records] == list(range(8))
    assert [len(r["arch"]["layers"]) for r in records] == [1] * 4 + [3] * 4
    for r in records:
        assert r["status"] == "ok" and r["arch"]["kind"] == "conv_net"
        assert r["reward"] == pytest.approx(r["metrics"]["accuracy"] ** 3)
        assert r["params"] > 0
    assert summary["children_done"] == 8 and len(summary["reward_trend"]["batch_means"]) == 2
    changed = [
        k for k, v in strategy.controller.state_dict().items() if not torch.equal(v, before[k])
    ]
    assert "w_prev.weight" in changed and "v.weight" in changed  # depth 3 batch trained them


def test_resumed_search_continues_at_the_same_depth_and_children(task, tmp_path):
    search(tmp_path / "whole", task, 8)
    first, _ = search(tmp_path / "parts", task, 4)  # stops after one batch, as if killed
    assert task.space.depth == 1
    search(tmp_path / "parts", task, 8)  # a new session on the same run directory
    whole, parts = read_log(tmp_path / "whole"), read_log(tmp_path / "parts")
    assert [r["arch"] for r in parts] == [r["arch"] for r in whole]
    assert [r["reward"] for r in parts] == [r["reward"] for r in whole]
    assert [len(r["arch"]["layers"]) for r in parts] == [1] * 4 + [3] * 4


class Killed(BaseException):
    """Stands in for a kill: not an Exception, so the loop does not record it as a failure."""


def test_resume_inside_a_deeper_batch(task, tmp_path):
    search(tmp_path / "whole", task, 8)
    evaluate = task.evaluate

    def dies_at_child_6(arch, index):
        if index == 6:
            raise Killed
        return evaluate(arch, index)

    task.evaluate = dies_at_child_6
    try:
        with pytest.raises(Killed):
            search(tmp_path / "parts", task, 8)
    finally:
        task.evaluate = evaluate
    assert len(read_log(tmp_path / "parts")) == 6  # children 0-5 logged, batch 4-7 pending
    task.space.set_depth(1)  # a new process starts at the start depth
    search(tmp_path / "parts", task, 8)
    whole, parts = read_log(tmp_path / "whole"), read_log(tmp_path / "parts")
    assert [r["arch"] for r in parts] == [r["arch"] for r in whole]
    assert [r["reward"] for r in parts] == [r["reward"] for r in whole]
    # the controller learned from the depth-3 batch exactly as in the uninterrupted run
    a = RunJournal(tmp_path / "whole").load_checkpoint()["strategy"]["controller"]
    b = RunJournal(tmp_path / "parts").load_checkpoint()["strategy"]["controller"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_other_strategies_work_on_the_cnn_space(task, tmp_path):
    _, summary = search(tmp_path / "random", task, 8, RandomSearch(task.space, seed=1))
    depths = [len(r["arch"]["layers"]) for r in read_log(tmp_path / "random")]
    assert depths == [1] * 4 + [3] * 4 and summary["failed"] == 0


def test_extra_per_layer_choice_is_one_setting(cifar10_dir, tmp_path):
    child = {**TINY_CHILD, "depth_every": 100, "extra_choices": {"pool": ["none", "max"]}}
    pooled = make_task("cifar10", child, 0, str(cifar10_dir))
    assert "layer0.pool" in pooled.space.names
    strategy = Reinforce(pooled.space, "paper", batch_size=4, seed=0)
    assert list(strategy.controller.heads) == ["fh", "fw", "filters", "stride", "pool"]
    search(tmp_path / "run", pooled, 8, strategy)
    pools = [layer.get("pool", "none") for r in read_log(tmp_path / "run")
             for layer in r["arch"]["layers"]]  # fmt: skip
    assert set(pools) == {"none", "max"}


def test_budgets():
    assert set(CIFAR10.budgets()) == {"default", "paper"}
    paper = paper_budget()
    search_settings, config = paper.child, paper.child.train
    assert (search_settings.start_depth, search_settings.depth_every) == (6, 1600)
    assert search_settings.depth_step == 2 and config.epochs == 50
    assert paper.children == 12_800 and paper.batch_size == 8
    default = default_budget()
    search_settings, config = default.child, default.child.train
    assert default.time_limit is not None and default.time_limit <= 15 * 60
    assert config.reward_exponent == 3.0 and config.reward_epochs == 5
    with pytest.raises(ValueError, match="depth_every must be an integer >= 1"):
        CIFAR10Child.from_dict({"depth_every": 0})
    with pytest.raises(TypeError):
        CIFAR10Child.from_dict({"no_such_setting": 1})


def test_budgets_name_their_preset(task):
    # the laptop budget: the default preset as it is; the paper's: the paper's CNN settings
    assert default_budget().preset == "default" and not default_budget().reinforce
    paper = paper_budget()
    strategy = Reinforce(task.space, paper.preset, seed=0, **paper.reinforce)
    assert paper.preset == "paper" and strategy.settings.lr == pytest.approx(6e-4)


def run_search(*args):
    return subprocess.run(
        [sys.executable, "-m", "pynas.search", *args], capture_output=True, text=True, timeout=600
    )


def test_cli_missing_data_is_a_usage_error(tmp_path, capsys):
    from pynas.search.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--task", "cifar10", "--data-dir", str(tmp_path / "empty"),
              "--run-dir", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "cifar10_small.npz" in err and str(tmp_path / "empty") in err


@pytest.mark.slow
def test_cli_runs_and_resumes(cifar10_dir, tmp_path):
    run = tmp_path / "run"
    proc = run_search("--task", "cifar10", "--data-dir", str(cifar10_dir), "--run-dir", str(run),
                      "--children", "2", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(read_log(run)) == 2
    proc = run_search("--resume", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(read_log(run)) == 2 and "conv" in proc.stdout
