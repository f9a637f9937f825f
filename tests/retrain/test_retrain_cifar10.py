"""Retrain of a tiny CIFAR-10 run: grid over lr, weight decay and batch-norm eps."""

import json

import pytest
import torch

import pynas
from pynas.retrain import cli as retrain_cli
from pynas.search import Budget, RunJournal, Search, make_task
from pynas.strategies import Reinforce

CHILD = {
    "start_depth": 2, "depth_every": 1000, "epochs": 1, "batch_size": 32, "train_images": 64,
    "valid_images": 50, "valid_size": 50, "reward_epochs": 1,
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


def test_retrain_tiny_cifar10_run(tmp_path, cifar10_dir, capsys):
    meta = {"format": 1, "task": "cifar10", "budget": "test",
            "budget_settings": {"children": 4, "batch_size": 4, "grads_per_update": 1,
                                "child": CHILD},
            "strategy": "reinforce", "preset": "paper", "seed": 0,
            "data_dir": str(cifar10_dir)}  # fmt: skip
    task = make_task("cifar10", CHILD, seed=0, data_dir=str(cifar10_dir))
    run = RunJournal.create(tmp_path / "run", meta)
    strategy = Reinforce(task.space, batch_size=4, seed=0)
    run.write_summary(Search(run, task, strategy, Budget(4, 4, 1)).run_all())
    argv = [str(tmp_path / "run"), "--top", "1", "--lr", "0.05", "--weight-decay", "1e-4",
            "--bn-eps", "1e-5,1e-2", "--test-limit", "100", "--quiet"]  # fmt: skip
    try:
        code = retrain_cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "run" / "retrain"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "accuracy" and summary["higher_is_better"]
    (row,) = summary["rows"]
    assert [g["point"]["bn_eps"] for g in row["grid"]] == [1e-5, 1e-2]
    best = max((g for g in row["grid"] if g["status"] == "ok"), key=lambda g: g["valid"])
    assert row["best_point"] == best["point"] and 0 <= row["test"] <= 1
    model = pynas.load_model(out / row["model"])
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and all(m.eps == row["best_point"]["bn_eps"] for m in bn)
    score = pynas.retrain.evaluate_saved(out / row["model"], cifar10_dir, limit=100,
                                         valid_size=50)  # fmt: skip
    assert score == row["test"]
