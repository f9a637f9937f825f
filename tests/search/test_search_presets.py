"""Which REINFORCE preset a search runs: its budget's (the default budgets: the sample-efficient
`default`; the paper budgets: `paper`), or the one --preset names."""

import json

import pytest

from pynas.search.cli import main
from pynas.search.settings import RunSettings
from pynas.strategies import PRESETS, preset
from pynas.tasks.registry import TASKS
from pynas.tasks.toy import TOY_SPACE


@pytest.mark.parametrize("task", ["ptb", "cifar10", "toy"])
def test_default_budgets_use_the_default_preset_as_it_is(task):
    default = TASKS[task].budget("default")
    assert default.preset == "default" and not default.reinforce  # one setting for every task
    if "paper" in TASKS[task].budgets():
        paper = TASKS[task].budget("paper")
        assert paper.preset == "paper" and not paper.reinforce


def new_toy_run(tmp_path, run_cli, *argv):
    run = tmp_path / "run"
    args = ["--task", "toy", "--run-dir", str(run), "--children", "16", "--quiet", *argv]
    code, _, err = run_cli(main, args)
    assert code == 0, err
    return RunSettings.from_dict(json.loads((run / "run.json").read_text()))


@pytest.mark.parametrize(
    "argv, name", [([], "default"), (["--preset", "paper"], "paper"), (["--preset", "ppo"], "ppo")]
)
def test_the_run_keeps_the_preset_and_its_strategy_has_exactly_its_settings(
    tmp_path, run_cli, argv, name
):
    settings = new_toy_run(tmp_path, run_cli, *argv)
    assert settings.preset == name
    assert settings.make_strategy(TOY_SPACE).settings == PRESETS[name] == preset(name, "generic")


def test_paper_preset_on_the_paper_budget_is_the_papers_settings():
    paper = TASKS["ptb"].budget("paper")
    settings = RunSettings("ptb", "paper", paper, "reinforce", paper.preset, 0)
    strategy = settings.make_strategy(TOY_SPACE)
    assert strategy.settings == PRESETS["paper"] and strategy.settings.lr == 5e-4
    assert (strategy.batch_size, strategy.grads_per_update) == (1, 10)  # Zoph & Le §4.2


def test_ray_runs_the_paper_preset_and_refuses_one_it_cannot_run(tmp_path, run_cli):
    pytest.importorskip("ray")
    run = tmp_path / "run"
    argv = ["--task", "toy", "--run-dir", str(run), "--executor", "ray", "--preset", "default"]
    code, _, err = run_cli(main, argv)
    assert code == 2 and "--preset paper" in err
    assert not run.exists() or not any(run.iterdir())
