"""`python -m pynas.retrain RUN`: a tiny PTB run retrained end to end, resumed, bad input."""

import json
import subprocess
import sys

import pytest
import torch

import pynas
from pynas.retrain import cli as retrain_cli
from pynas.search import Budget, RunJournal, Search, make_task
from pynas.strategies import Reinforce
from pynas.tasks.ptb import PTBRetraining

TINY = {
    "base": 2, "hidden": 8, "num_layers": 2, "epochs": 1, "batch_size": 4, "bptt": 10,
    "train_tokens": 1200, "valid_tokens": 400, "eval_batch_size": 4, "dropout": 0.0,
}  # fmt: skip
QUICK = ["--valid-limit", "800", "--test-limit", "2000", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


def make_run(path, task_name, child, data_dir, children=8, batch=4):
    meta = {
        "format": 1, "task": task_name, "budget": "test",
        "budget_settings": {"children": children, "batch_size": batch, "grads_per_update": 1,
                            "child": child},
        "strategy": "reinforce", "preset": "paper", "seed": 0, "data_dir": str(data_dir),
    }  # fmt: skip
    task = make_task(task_name, child, seed=0, data_dir=str(data_dir))
    run = RunJournal.create(path, meta)
    strategy = Reinforce(task.space, batch_size=batch, seed=0, lr=0.05)
    run.write_summary(Search(run, task, strategy, Budget(children, batch, 1)).run_all())
    return path


@pytest.fixture(scope="module")
def ptb_run(tmp_path_factory, ptb_dir):
    torch.set_num_threads(1)
    return make_run(tmp_path_factory.mktemp("ptb") / "run", "ptb", TINY, ptb_dir)


def retrain(argv, capsys):
    try:
        code = retrain_cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def comparable(summary):
    keys = ("arch_id", "best_point", "valid", "test", "params", "rank", "model")
    return [{k: row[k] for k in keys} for row in summary["rows"]]


def test_retrain_tiny_ptb_run(ptb_run, ptb_dir, tmp_path, capsys):
    out = tmp_path / "rt"
    argv = [ptb_run, "--top", 2, "--lr", "20,5", "--weight-decay", "0", "--out", out, *QUICK]
    code, stdout, _ = retrain(argv, capsys)
    assert code == 0, stdout
    records = lines(out / "results.jsonl")
    trained = [r for r in records if r["kind"] == "train"]
    assert len(trained) == 4 and len([r for r in records if r["kind"] == "test"]) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["metric"] == "ppl" and len(summary["rows"]) == 2
    children = lines(ptb_run / "children.jsonl")
    best_two = sorted((c for c in children if c["status"] == "ok"),
                      key=lambda c: (-c["reward"], c["index"]))  # fmt: skip
    assert {r["search_index"] for r in summary["rows"]} <= {c["index"] for c in best_two}
    assert summary["rows"][0]["valid"] <= summary["rows"][1]["valid"]  # ranked by validation
    for row in summary["rows"]:
        mine = [r for r in trained if r["search_index"] == row["search_index"]]
        assert sorted(r["point"]["lr"] for r in mine) == [5.0, 20.0]
        best = min((r for r in mine if r["status"] == "ok"), key=lambda r: r["valid"])
        assert row["best_point"] == best["point"] and row["valid"] == best["valid"]
        model = pynas.load_model(out / row["model"])
        assert model.arch.to_dict() == row["arch"]
        # the reported test ppl is the saved model's on the first 2000 test tokens
        expected = pynas.retrain.evaluate_saved(
            out / row["model"], ptb_dir, batch_size=4, bptt=10, limit=2000
        )
        assert row["test"] == expected
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(
        (out / row["model"]).name for row in summary["rows"]
    )
    md = (out / "summary.md").read_text()
    assert "| rank | arch |" in md and all(row["arch_id"] in md for row in summary["rows"])
    assert "test ppl" in stdout and str(out / "summary.md") in stdout

    # one call in a fresh process: load the saved best model and score it on the test split
    row = summary["rows"][0]
    script = (
        "import sys, pynas.retrain as r\n"
        "print(repr(r.evaluate_saved(sys.argv[1], sys.argv[2], batch_size=4, bptt=10, "
        "limit=2000)))\n"
    )
    fresh = subprocess.run([sys.executable, "-c", script, str(out / row["model"]), str(ptb_dir)],
                           capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    assert float(fresh.stdout.strip()) == row["test"]


def test_killed_retrain_continues_where_it_stopped(ptb_run, tmp_path, capsys, monkeypatch):
    argv = [ptb_run, "--top", 2, "--lr", "20,5", "--weight-decay", "0", *QUICK]
    assert retrain([*argv, "--out", tmp_path / "ref"], capsys)[0] == 0
    reference = json.loads((tmp_path / "ref" / "summary.json").read_text())

    real_train = PTBRetraining.train
    calls = []

    def interrupted_train(self, arch, point, build):
        calls.append(point)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stopped while training the 3rd point
        return real_train(self, arch, point, build)

    monkeypatch.setattr(PTBRetraining, "train", interrupted_train)
    out = tmp_path / "rt"
    code, _, err = retrain([*argv, "--out", out], capsys)
    assert code == 130 and "run the same command again" in err
    assert [r["kind"] for r in lines(out / "results.jsonl")] == ["train", "train", "test"]
    with open(out / "results.jsonl", "a") as f:
        f.write('{"kind":"train","arch":')  # a torn line, as a kill during a write leaves
    calls.clear()
    code, _, err = retrain([*argv[:-1], "--out", out], capsys)
    assert code == 0
    assert "dropped a torn last line" in err and "2 points already done" in err
    assert len(calls) == 2  # only the two points of the second architecture
    summary = json.loads((out / "summary.json").read_text())
    assert comparable(summary) == comparable(reference)


@pytest.mark.slow
def test_sigkilled_retrain_resumes(ptb_run, tmp_path):
    out = tmp_path / "rt"
    argv = [sys.executable, "-m", "pynas.retrain", str(ptb_run), "--top", "2", "--lr", "20,10,5",
            "--weight-decay", "0", "--epochs", "2", "--out", str(out), *QUICK]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = out / "results.jsonl"
    while proc.poll() is None and not (results.exists() and results.read_text().count("\n") >= 2):
        pass
    assert proc.poll() is None, "finished before it could be killed"
    proc.kill()
    proc.wait()
    done = len(lines(results))
    assert 2 <= done < 8
    resumed = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    records = lines(results)
    assert len([r for r in records if r["kind"] == "train"]) == 6  # nothing trained twice
    assert json.loads((out / "summary.json").read_text())["complete"]


def test_another_setting_is_refused_not_mixed(ptb_run, tmp_path, capsys):
    out = tmp_path / "rt"
    base = [ptb_run, "--top", 1, "--lr", "20", "--weight-decay", "0", "--out", out, *QUICK]
    assert retrain(base, capsys)[0] == 0
    code, _, err = retrain([*base, "--epochs", "2"], capsys)
    assert code == 2 and "other training settings" in err and "epochs: 1 -> 2" in err
    assert "--out" in err
    # a wider grid or a larger top K with the same training settings continues the same retrain
    code, _, err = retrain([*base[:-1], "--lr", "20,5"], capsys)
    assert code == 0 and "1 points already done" in err


def write_run(path, task="ptb", records=()):
    path.mkdir(parents=True)
    meta = {"format": 1, "task": task, "budget_settings": {"child": TINY}, "data_dir": None}
    (path / "run.json").write_text(json.dumps(meta))
    (path / "children.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def failed(i):
    arch = {"kind": "rnn_cell", "base": 2, "nodes": [["add", "tanh"]] * 3,
            "inject": ["add", "tanh"], "c_out": 0, "inject_at": 1}  # fmt: skip
    return {"index": i, "arch": arch, "reward": 0.0, "ppl": None, "params": 10, "seconds": 0.1,
            "status": "failed", "reason": "non-finite training loss"}  # fmt: skip


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        (lambda p: p / "missing", [], "does not exist"),
        (lambda p: (p / "plain").mkdir() or p / "plain", [], "not a search run (no run.json)"),
        (lambda p: write_run(p / "r"), [], "no finished children yet"),
        (lambda p: write_run(p / "r", records=[failed(0), failed(1)]), [],
         "all 2 children of"),
        (lambda p: write_run(p / "r", task="toy", records=[{**failed(0), "status": "ok",
                                                             "reward": 1.0}]), [],
         "retrain supports ptb and cifar10 runs"),
        (lambda p: p, ["--top", "0"], "--top: must be >= 1"),
        (lambda p: p, ["--lr", "20,x"], "expected comma-separated numbers"),
        (lambda p: p, ["--weight-decay", "-1"], "every value must be finite and >= 0"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, setup, extra, message):
    code, _, err = retrain([setup(tmp_path), *extra], capsys)
    assert code == 2 and message in err


def test_batch_norm_grid_is_for_cnn_runs(ptb_run, capsys):
    code, _, err = retrain([ptb_run, "--bn-eps", "1e-3"], capsys)
    assert code == 2 and "--bn-eps applies to cifar10 runs" in err


def test_damaged_retrain_files_exit_2_and_repair_log_trains_a_lost_point_again(
    ptb_run, tmp_path, capsys, monkeypatch
):
    from pynas.show import main as show_main

    out = tmp_path / "rt"
    argv = [ptb_run, "--top", 1, "--lr", "20,5", "--weight-decay", "0", "--out", out, *QUICK]
    assert retrain(argv, capsys)[0] == 0
    results = out / "results.jsonl"
    kinds = [r["kind"] for r in lines(results)]
    assert kinds == ["train", "train", "test"]
    data = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"\x00garbled\n" + b"".join(data[1:]))  # the first point's line
    code, _, err = retrain(argv, capsys)
    assert code == 2 and "results.jsonl is damaged" in err and "--repair-log" in err
    assert "Traceback" not in err

    real_train, calls = PTBRetraining.train, []
    monkeypatch.setattr(
        PTBRetraining,
        "train",
        lambda self, a, p, build: calls.append(p) or real_train(self, a, p, build),
    )
    code, _, err = retrain([*argv[:-1], "--repair-log"], capsys)
    assert code == 0, err
    assert "moved 1 damaged line(s) (1) to results.jsonl.damaged" in err
    assert calls == [{"lr": 20.0, "weight_decay": 0.0}]  # only the lost point
    assert json.loads((out / "summary.json").read_text())["complete"]
    moved = lines(out / "results.jsonl.damaged")
    assert moved[0]["line"] == 1 and moved[0]["text"] == "\x00garbled"

    (out / "config.json").write_text('{"format": 1, "ta')
    code, _, err = retrain(argv, capsys)
    assert code == 2 and "config.json is damaged" in err and "--out DIR" in err

    run_copy = tmp_path / "run"
    run_copy.mkdir()
    for name in ("run.json", "children.jsonl"):
        (run_copy / name).write_bytes((ptb_run / name).read_bytes())
    (run_copy / "retrain").mkdir()
    (run_copy / "retrain" / "summary.json").write_text('{"rows": [')
    try:
        code = show_main([str(run_copy)])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "retrain/summary.json is damaged" in err and "pynas.retrain" in err


def test_baselines_retrain_beside_the_cells_at_one_parameter_budget(ptb_run, tmp_path, capsys):
    from pynas.children.baseline_rnn import count_parameters, hidden_for_budget

    budget = 25_000  # vocabulary 10,000 tied: H 2 for every model
    out = tmp_path / "rt"
    argv = [ptb_run, "--top", 1, "--arch", "lstm", "--arch", "gru", "--params-budget", budget,
            "--lr", "5", "--weight-decay", "0", "--out", out, *QUICK]  # fmt: skip
    code, stdout, err = retrain(argv, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["baseline"]: row for row in summary["rows"]}
    assert set(rows) == {None, "lstm", "gru"} and summary["top"] == 1
    for kind in ("lstm", "gru"):
        hidden = hidden_for_budget(kind, 10_000, budget)
        assert rows[kind]["arch"] == kind and rows[kind]["test"] is not None
        assert rows[kind]["params"] == count_parameters(kind, 10_000, hidden) <= budget
    assert rows[None]["params"] <= budget and summary["settings"]["params_budget"] == budget
    assert "lstm baseline" in stdout and "gru baseline" in stdout
    model = pynas.load_model(out / rows["lstm"]["model"])  # a saved baseline loads
    assert model.kind == "lstm"


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--hidden", "8", "--params-budget", "30000"], "--hidden and --params-budget"),
        (["--params-budget", "100"], "too small"),
        (["--arch", "rnn"], "invalid choice"),
    ],
)
def test_bad_baseline_options_exit_2(ptb_run, tmp_path, capsys, extra, fragment):
    code, _, err = retrain([ptb_run, *extra, "--out", tmp_path / "rt", *QUICK], capsys)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_a_baseline_with_a_cifar10_run_exits_2(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"format": 1, "task": "cifar10"}))
    record = {"index": 0, "arch": {"kind": "conv_net"}, "reward": 0.5, "status": "ok"}
    (run / "children.jsonl").write_text(json.dumps(record) + "\n")
    code, _, err = retrain([run, "--arch", "lstm"], capsys)
    assert code == 2 and "--arch lstm is a baseline of ptb runs" in err
