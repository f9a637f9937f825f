"""The search loop on the real PTB task with tiny children."""

import json

from pynas.arch import RNNCell
from pynas.search import Budget, RunJournal, Search, make_task
from pynas.strategies import Reinforce

TINY = {
    "base": 2, "hidden": 8, "epochs": 1, "batch_size": 4, "bptt": 10, "train_tokens": 1200,
    "valid_tokens": 400, "eval_batch_size": 4,
}  # fmt: skip


def test_ptb_children_are_logged_with_their_metrics(tmp_path, ptb_dir):
    task = make_task("ptb", TINY, seed=0, data_dir=str(ptb_dir))
    budget = Budget(children=4, batch_size=2, grads_per_update=1)
    strategy = Reinforce(task.space, batch_size=2, seed=0)
    run = RunJournal.create(tmp_path / "run", {})
    search = Search(run, task, strategy, budget)
    summary = search.run_all()
    lines = (tmp_path / "run" / "children.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    for line, r in zip(lines, records, strict=True):
        cell = RNNCell.from_dict(r["arch"])
        assert cell.base == 2
        assert f'"arch":{cell.to_json()},' in line  # canonical JSON, verbatim
        assert isinstance(r["params"], int) and r["params"] > 0
        if r["status"] == "ok":
            assert r["ppl"] > 1 and abs(r["reward"] - 80 / r["ppl"] ** 2) < 1e-12
        else:
            assert r["reward"] == 0.0 and r["reason"]
    # two updates of `epochs` optimizer steps each
    assert summary["children_done"] == 4 and strategy.version == 2 * strategy.settings.epochs
    # a search whose children all fail is broken, not a result: at least one child must train
    ok = [r for r in records if r["status"] == "ok"]
    assert ok, [r["reason"] for r in records]
    best = summary["top"][0]
    assert best["index"] in {r["index"] for r in ok} and 1 < best["ppl"] < 10_000
