"""`python -m pynas.search --tensorboard`: reward, baseline and entropy per child."""

import sys

import pytest

from pynas.search.cli import main
from pynas.search.tensorboard import TensorBoardLogger

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def scalars(log_dir):
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def run_main(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_search_logs_reward_baseline_and_entropy(tmp_path, capsys):
    run = tmp_path / "run"
    code, err = run_main(
        ["--task", "toy", "--run-dir", str(run), "--children", "16", "--quiet", "--tensorboard"],
        capsys,
    )
    assert code == 0 and "tensorboard --logdir" in err
    got = scalars(run / "tensorboard")
    assert [s for s, _ in got["child/reward"]] == list(range(16))
    assert [s for s, _ in got["controller/entropy"]] == list(range(16))
    assert [s for s, _ in got["controller/baseline"]] == list(range(8, 16))  # after one batch
    best = [v for _, v in got["child/best_reward"]]
    assert best == sorted(best) and best[-1] == max(v for _, v in got["child/reward"])


def test_a_new_session_shows_each_child_once(tmp_path):
    records = [{"index": i, "reward": i / 8, "entropy": 1.0 - i / 8} for i in range(6)]
    first = TensorBoardLogger(tmp_path, records)
    first.close()
    second = TensorBoardLogger(tmp_path, records[:4])  # e.g. a resumed run with 4 logged
    second.log({"index": 4, "reward": 0.875, "entropy": 0.5})
    second.close()
    got = scalars(tmp_path)
    assert got["child/reward"] == [(0, 0.0), (1, 0.125), (2, 0.25), (3, 0.375), (4, 0.875)]
    assert [s for s, _ in got["controller/entropy"]] == [0, 1, 2, 3, 4]


def test_without_tensorboard_it_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    run = tmp_path / "run"
    code, err = run_main(["--task", "toy", "--run-dir", str(run), "--tensorboard"], capsys)
    assert code == 2
    assert "needs the tensorboard package" in err and "pynas[tensorboard]" in err
    assert not run.exists()  # refused before a run directory was made
