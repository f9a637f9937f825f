"""--device on the command lines: stored with the run, kept by resume and retrain, refused
clearly (exit 2, before any child trains) where this machine cannot provide it."""

import argparse
import json

import pytest
import torch

from pynas.retrain import cli as retrain_cli
from pynas.search import Budget, RunJournal, Search, execution, make_task
from pynas.search.cli import main as search_main
from pynas.search.settings import ExecutionSettings
from pynas.strategies import Reinforce
from pynas.tasks.ptb import TASK as PTB
from pynas.train import main as train_main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
PTB_CHILD = {
    "base": 2, "hidden": 8, "num_layers": 1, "epochs": 1, "batch_size": 4, "bptt": 10,
    "train_tokens": 800, "valid_tokens": 300, "eval_batch_size": 4, "dropout": 0.0,
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@NO_CUDA
def test_train_with_cuda_here_exits_2_before_training(ptb_dir, run_cli):
    code, out, err = run_cli(
        train_main,
        ["--task", "ptb", "--arch", "nas_cell", "--device", "cuda", "--data-dir", str(ptb_dir)],
    )
    assert code == 2 and "device 'cuda'" in err and "--device cpu" in err
    assert "epoch 1" not in err and "Traceback" not in err
    cifar10_dir = str(ptb_dir.parent / "cifar10")
    code, _, err = run_cli(
        train_main,
        ["--task", "cifar10", "--arch", "skip15", "--device", "cuda:0", "--data-dir", cifar10_dir],
    )
    assert code == 2 and "device 'cuda:0'" in err


def test_train_with_explicit_cpu_end_to_end(ptb_dir, tmp_path, run_cli):
    out_file = tmp_path / "r.json"
    argv = [
        "--task", "ptb", "--arch", "nas_cell", "--device", "cpu", "--data-dir", str(ptb_dir),
        "--hidden", "8", "--train-tokens", "600", "--valid-tokens", "300", "--bptt", "8",
        "--quiet", "--output", str(out_file),
    ]  # fmt: skip
    code, out, err = run_cli(train_main, argv)
    assert code == 0, err
    assert "device=cpu" in err
    assert json.loads(out_file.read_text())["config"]["device"] == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:1"])
def test_malformed_device_is_an_argument_error(bad, run_cli):
    code, _, err = run_cli(train_main, ["--task", "ptb", "--arch", "nas_cell", "--device", bad])
    assert code == 2 and "argument --device" in err and "cuda:N" in err


@NO_CUDA
@pytest.mark.parametrize(
    "extra",
    [
        ["--device", "cuda"],
        ["--device", "cuda:1", "--workers", "2"],
        ["--executor", "ray", "--child-gpus", "1"],
    ],  # local Ray instance: this machine's GPUs
)
def test_search_with_cuda_here_exits_2_and_creates_nothing(ptb_dir, tmp_path, run_cli, extra):
    run_dir = tmp_path / "run"
    code, _, err = run_cli(
        search_main,
        ["--task", "ptb", "--data-dir", str(ptb_dir), "--run-dir", str(run_dir), "--quiet", *extra],
    )
    assert code == 2, err
    assert "device 'cuda" in err and "--device cpu" in err and "Traceback" not in err
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--executor", "ray", "--child-gpus", "1", "--device", "cpu"], "drop --device"),
        (["--executor", "ray", "--child-gpus", "0.5", "--device", "cuda:1"], "drop --device"),
        (["--executor", "ray", "--device", "cuda"], "add --child-gpus G"),
    ],
)
def test_device_and_child_gpus_must_agree(tmp_path, run_cli, extra, message):
    pytest.importorskip("ray")
    code, _, err = run_cli(search_main, ["--task", "ptb", "--run-dir", str(tmp_path / "r"), *extra])
    assert code == 2 and message in err


def test_device_is_for_tasks_that_train(tmp_path, run_cli):
    code, _, err = run_cli(
        search_main, ["--task", "toy", "--run-dir", str(tmp_path / "r"), "--device", "cpu"]
    )
    assert code == 2 and "--device applies to ptb and cifar10" in err


def _namespace(**kw):
    base = {"device": None, "address": None}
    return argparse.Namespace(**{**base, **kw})


def test_child_gpus_on_ray_means_cuda_and_a_cluster_is_not_checked_from_here():
    ray = ExecutionSettings(executor="ray", child_gpus=1.0, address="head:6379")
    assert execution.child_device(_namespace(), ray) == "cuda"
    assert execution.child_device(_namespace(device="cuda"), ray) == "cuda"
    local = ExecutionSettings(executor="local")
    assert execution.child_device(_namespace(), local) == "cpu"
    assert execution.child_device(_namespace(device="cuda:1"), local) == "cuda:1"
    # a cluster's nodes are not this machine: no check here (the child checks on its node)
    execution.check_child_device(ray, _namespace(), PTB, PTB.child_settings({"device": "cuda"}))


@NO_CUDA
def test_resume_of_a_cuda_run_here_is_refused_with_what_to_do():
    ray = ExecutionSettings(executor="ray", child_gpus=1.0, address="head:6379")
    args = _namespace(address="local", resume="RUN")  # moved to a local instance: checked here
    with pytest.raises(execution.UsageError) as info:
        execution.check_child_device(ray, args, PTB, PTB.child_settings({"device": "cuda"}))
    message = str(info.value)
    assert "this run's children train on 'cuda'" in message
    assert "resume it on a machine that has that device" in message
    assert "--device" not in message  # not an option of --resume


def test_search_stores_the_device_with_the_child_settings(tmp_path, run_cli):
    from pynas.search.cli import _new_meta, build_parser

    for extra, device in (([], "cpu"), (["--device", "cuda:1"], "cuda:1")):
        args = build_parser().parse_args(["--task", "cifar10", "--run-dir", "R", *extra])
        assert _new_meta(args)["budget_settings"]["child"]["device"] == device
    # a resumed run takes it from run.json, like every other child setting
    code, _, err = run_cli(search_main, ["--resume", str(tmp_path), "--device", "cpu"])
    assert code == 2 and "drop --device" in err


# ----- retrain follows the run's device ---------------------------------------------------------
@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory, ptb_dir):
    """A finished tiny PTB run whose children (as run.json says) trained on cuda."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("cuda") / "run"
    child = {**PTB_CHILD, "device": "cpu"}
    meta = {
        "format": 1,
        "task": "ptb",
        "budget": "test",
        "budget_settings": {
            "children": 2,
            "batch_size": 2,
            "grads_per_update": 1,
            "child": {**child, "device": "cuda"},
        },
        "strategy": "reinforce",
        "preset": "paper",
        "seed": 0,
        "data_dir": str(ptb_dir),
    }
    task = make_task("ptb", child, seed=0, data_dir=str(ptb_dir))
    run_dir = RunJournal.create(path, meta)
    strategy = Reinforce(task.space, batch_size=2, seed=0)
    run_dir.write_summary(Search(run_dir, task, strategy, Budget(2, 2, 1)).run_all())
    return path


QUICK = ["--top", "1", "--lr", "20", "--weight-decay", "0", "--valid-limit", "300",
         "--test-limit", "400", "--quiet"]  # fmt: skip


@NO_CUDA
def test_retrain_follows_the_runs_device_and_says_how_to_override(cuda_run, tmp_path, run_cli):
    code, _, err = run_cli(retrain_cli.main, [str(cuda_run), "--out", str(tmp_path / "a"), *QUICK])
    assert code == 2 and "device 'cuda'" in err and "--device cpu" in err
    assert not (tmp_path / "a" / "results.jsonl").exists()


def test_retrain_device_override(cuda_run, tmp_path, run_cli):
    out = tmp_path / "b"
    code, _, err = run_cli(
        retrain_cli.main, [str(cuda_run), "--out", str(out), "--device", "cpu", *QUICK]
    )
    assert code == 0, err
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert lines and all(x.get("status", "ok") == "ok" for x in lines)
    # the device is where a retrain runs, not what it computes: not part of its settings
    assert "device" not in json.loads((out / "config.json").read_text())["settings"]
