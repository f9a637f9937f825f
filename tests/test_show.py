"""`python -m pynas.show RUN`: leaderboard, --plot PNGs, old logs, bad input."""

import json
import sys

import pytest
import torch

from pynas.search import Budget, RunJournal, Search, make_task
from pynas.show import main
from pynas.strategies import Reinforce

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

TINY = {
    "base": 2, "hidden": 8, "epochs": 1, "batch_size": 4, "bptt": 10, "train_tokens": 1200,
    "valid_tokens": 400, "eval_batch_size": 4, "dropout": 0.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def ptb_run(tmp_path_factory, ptb_dir):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("show") / "run"
    meta = {"format": 1, "task": "ptb", "budget": "test", "strategy": "reinforce",
            "preset": "paper", "seed": 0, "budget_settings": {"child": TINY}}  # fmt: skip
    task = make_task("ptb", TINY, seed=0, data_dir=str(ptb_dir))
    run = RunJournal.create(path, meta)
    strategy = Reinforce(task.space, batch_size=4, seed=0, lr=0.05)
    run.write_summary(Search(run, task, strategy, Budget(12, 4, 1)).run_all())
    torch.set_num_threads(before)
    return path


def show(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def records(run):
    return [json.loads(x) for x in (run / "children.jsonl").read_text().splitlines()]


def check_png(path):
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def test_leaderboard_lists_the_best_architectures_in_text(ptb_run, capsys):
    code, out, _ = show([ptb_run, "--top", "2"], capsys)
    assert code == 0
    ok = sorted((r for r in records(ptb_run) if r["status"] == "ok"),
                key=lambda r: (-r["reward"], r["index"]))  # fmt: skip
    assert "task ptb" in out and "12 children" in out and "complete" in out
    rows = [line.split() for line in out.splitlines() if line[:4].strip() in ("1", "2")]
    assert [int(r[4]) for r in rows] == [ok[0]["index"], ok[1]["index"]]  # child column
    assert float(rows[0][1]) == pytest.approx(ok[0]["reward"], rel=1e-4)
    assert float(rows[0][2]) == pytest.approx(ok[0]["ppl"], abs=0.06)
    assert out.count("-> h_t") == 2 and "#1 (child" in out and "#3 (child" not in out
    assert "not in this log" not in out


def test_plot_writes_reward_entropy_and_cell_pngs(ptb_run, tmp_path, capsys):
    code, out, _ = show([ptb_run, "--plot", "--out", tmp_path], capsys)
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best_cell.png", "entropy.png", "reward.png"]
    for name in names:
        check_png(tmp_path / name)
        assert f"wrote {tmp_path / name}" in out
    cell = imread(tmp_path / "best_cell.png")[..., :3]
    orange = (abs(cell - torch.tensor([0xFE, 0xD7, 0xAA]).numpy() / 255).sum(-1) < 0.03).sum()
    assert orange > 100  # the inject box is drawn


def test_a_log_without_baseline_and_entropy_is_plotted_with_what_it_has(ptb_run, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "run.json").write_text((ptb_run / "run.json").read_text())
    strip = ("baseline", "log_prob", "entropy")
    (old / "children.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k not in strip}) + "\n"
                for r in records(ptb_run))
    )  # fmt: skip
    code, out, _ = show([old, "--plot"], capsys)
    assert code == 0
    assert sorted(p.name for p in (old / "plots").iterdir()) == ["best_cell.png", "reward.png"]
    assert "not in this log: baseline, entropy" in out
    assert "no baseline" in out and "entropy.png not written" in out
    assert "no summary.json" in out  # this copy has no summary: in progress or interrupted


def test_toy_run_leaderboard_and_plots(tmp_path, capsys):
    from pynas.search.cli import main as search_main

    run = tmp_path / "toy"
    assert search_main(["--task", "toy", "--run-dir", str(run), "--children", "16", "--quiet"]) == 0
    capsys.readouterr()
    code, out, _ = show([run, "--plot"], capsys)
    assert code == 0 and '"op0":' in out
    assert sorted(p.name for p in (run / "plots").iterdir()) == ["entropy.png", "reward.png"]
    assert "no drawing for toy architectures" in out


def empty_run(path):
    path.mkdir()
    (path / "run.json").write_text('{"task": "ptb"}')
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "nope", "does not exist"),
        (lambda p: (p / "d").mkdir() or p / "d", "not a search run"),
        (lambda p: empty_run(p / "r"), "no finished children yet"),
    ],
)  # fmt: skip
def test_bad_run_exits_2(tmp_path, capsys, make, message):
    code, _, err = show([make(tmp_path)], capsys)
    assert code == 2 and message in err


def test_plot_without_matplotlib_is_a_usage_error(ptb_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = show([ptb_run, "--plot", "--out", tmp_path / "p"], capsys)
    assert code == 2 and "pip install 'pynas[plot]'" in err
