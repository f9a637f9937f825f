"""Children that fail in every way we can provoke, inside a real PTB search that then completes.

The search runs from the command line with tiny PTB children; each failure is provoked for one
child (identified by its seed: a PTB child of a seed-0 search is seeded with its index) by
patching the model, the data pipeline or the evaluation in this process. Each child must end as
a `failed` record with its reason, the search must finish with its summary, and the run must
read back, show and resume.
"""

import math

import pytest
import torch

import pynas.tasks.ptb.training as ptb
from pynas.arch import NAMED_CELLS
from pynas.io import read_json
from pynas.retrain.cli import main as retrain_main
from pynas.runs import open_run
from pynas.search.cli import main as search_main
from pynas.show import main as show_main
from pynas.tasks.ptb import load_corpus
from pynas.tasks.registry import TASKS

TINY = {
    "base": 2, "hidden": 8, "epochs": 1, "batch_size": 4, "bptt": 10, "train_tokens": 1200,
    "valid_tokens": 400, "eval_batch_size": 4,
}  # fmt: skip
NAN_LOSS, INF_PPL, FORWARD_ERROR, OTHER_ERROR, DATA_ERROR, DIVERGED = range(6)
CHILDREN = 8  # children 6 and 7 are left alone


def child() -> int:
    return torch.initial_seed()  # train_child seeds torch with the child's seed


class FaultyModel(ptb.CellLanguageModel):
    def forward(self, tokens, state):
        if child() == FORWARD_ERROR:
            raise RuntimeError("forward pass exploded")
        if child() == OTHER_ERROR:
            raise ZeroDivisionError("not one of the errors the task itself catches")
        logits, state = super().forward(tokens, state)
        if child() == NAN_LOSS and self.training:
            logits = logits * math.nan
        if child() == INF_PPL and not self.training:
            logits = logits * 1e6  # a cross-entropy of thousands of nats: ppl overflows to inf
        return logits, state


@pytest.fixture
def faults(monkeypatch):
    windows, evaluate = ptb.bptt_windows, ptb.evaluate_ppl

    def faulty_windows(data, bptt):
        if child() == DATA_ERROR:
            raise OSError("reading the training data failed")
        return windows(data, bptt)

    def faulty_evaluate(model, data, bptt):
        return 23412.0 if child() == DIVERGED else evaluate(model, data, bptt)

    monkeypatch.setattr(ptb, "CellLanguageModel", FaultyModel)
    monkeypatch.setattr(ptb, "bptt_windows", faulty_windows)
    monkeypatch.setattr(ptb, "evaluate_ppl", faulty_evaluate)
    # the CLI's PTB task with tiny children (the default budget's take seconds each)
    ptb_task = TASKS["ptb"]
    search_task = ptb_task.search_task
    monkeypatch.setattr(
        ptb_task,
        "search_task",
        lambda _child, seed, data_dir: search_task(ptb_task.child_settings(TINY), seed, data_dir),
    )


def run(argv, capsys, main=search_main):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_provoked_failure_is_a_record_and_the_search_completes(
    faults, tmp_path, capsys, ptb_dir
):
    path = tmp_path / "run"
    # the paper preset: its samples at seed 0 train without a failure of their own
    argv = ["--task", "ptb", "--data-dir", ptb_dir, "--run-dir", path, "--children", CHILDREN,
            "--batch-size", 4, "--preset", "paper", "--quiet"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    summary = read_json(path / "summary.json")
    assert summary["complete"] and summary["children_done"] == CHILDREN
    assert summary["failed"] == 6

    records = {r["index"]: r for r in open_run(path).records}
    reasons = {
        NAN_LOSS: "non-finite training loss (nan) at epoch 1, step 0",
        INF_PPL: "non-finite validation perplexity at epoch 1",
        FORWARD_ERROR: "RuntimeError: forward pass exploded",
        OTHER_ERROR: "ZeroDivisionError: not one of the errors the task itself catches",
        DATA_ERROR: "OSError: reading the training data failed",
        DIVERGED: "diverged: validation perplexity 23,412 is above the uniform model's 10,000",
    }
    for index, reason in reasons.items():
        r = records[index]
        assert (r["status"], r["reason"], r["reward"]) == ("failed", reason, 0.0), r
    # the record that crashed the README's search: an inf inside metrics.epoch_ppl
    assert records[INF_PPL]["metrics"]["epoch_ppl"] == [math.inf]
    assert '"epoch_ppl":["Infinity"]' in (path / "children.jsonl").read_text()
    assert records[DIVERGED]["ppl"] == 23412.0  # a diverged child keeps its perplexity
    for index in (6, 7):
        assert records[index]["status"] == "ok" and 1 < records[index]["ppl"] < 10_000

    code, out, err = run([path], capsys, show_main)
    assert code == 0, err
    assert f"{CHILDREN} children (6 failed)" in out
    before = (path / "children.jsonl").read_bytes()
    code, out, err = run(["--resume", path, "--quiet"], capsys)
    assert code == 0, err
    assert (path / "children.jsonl").read_bytes() == before  # nothing trained again
    argv = [
        path,
        "--top",
        1,
        "--lr",
        20,
        "--weight-decay",
        0,
        "--valid-limit",
        800,
        "--test-limit",
        2000,
        "--seed",
        7,
        "--quiet",
    ]  # fmt: skip (seed 7: no fault)
    code, out, err = run(argv, capsys, retrain_main)
    assert code == 0, err
    assert read_json(path / "retrain" / "summary.json")["rows"][0]["search_index"] in (6, 7)


def test_the_divergence_rule():
    assert ptb.divergence(10_000.0, 10_000) is None  # the uniform model itself: not diverged
    assert ptb.divergence(9_999.5, 10_000) is None
    assert ptb.divergence(10_000.5, 10_000) == (
        "diverged: validation perplexity 10,000 is above the uniform model's 10,000"
    )
    assert ptb.divergence(1.7e139, 10_000) == (
        "diverged: validation perplexity 1.7e+139 is above the uniform model's 10,000"
    )


def test_a_child_trained_with_a_huge_learning_rate_diverges(ptb_dir):
    corpus = load_corpus(ptb_dir)
    settings = {k: v for k, v in TINY.items() if k != "base"}
    config = ptb.PTBConfig(**settings, lr=200.0)
    result = ptb.train_child(NAMED_CELLS["nas_cell"], config, corpus)  # 1 epoch: ppl ~2e7
    assert result.status == "failed" and result.reward == 0.0
    assert result.reason.startswith("diverged: validation perplexity ")
    assert result.reason.endswith(" is above the uniform model's 10,000")
    ppl = result.metrics["ppl"]  # kept in the record
    assert 10_000 < ppl < math.inf and result.metrics["epoch_ppl"] == [ppl]
