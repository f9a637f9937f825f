"""children.jsonl records the controller's baseline, log-probability and entropy per child."""

import json

import torch

from pynas.search import Budget, RunJournal, Search, make_task
from pynas.strategies import RandomSearch, Reinforce


def run_toy(tmp_path, strategy_cls, **kwargs):
    task = make_task("toy", {}, seed=0)
    strategy = strategy_cls(task.space, seed=0, **kwargs)
    search = Search(RunJournal.create(tmp_path / "run", {}), task, strategy, Budget(12, 4, 1))
    seen = []
    search.on_record.append(seen.append)
    search.run_all()
    lines = (tmp_path / "run" / "children.jsonl").read_text().splitlines()
    return task, [json.loads(x) for x in lines], seen


def test_reinforce_children_carry_baseline_log_prob_and_entropy(tmp_path):
    task, records, seen = run_toy(tmp_path, Reinforce, batch_size=4, lr=0.05)
    assert seen == records  # listeners get every record as it is logged
    assert [r["baseline"] for r in records[:4]] == [None] * 4  # the first batch: no baseline yet
    decay = Reinforce(task.space, batch_size=4).settings.baseline_decay
    b = None
    for start in (4, 8):
        for r in records[start - 4 : start]:
            b = r["reward"] if b is None else decay * b + (1 - decay) * r["reward"]
        assert all(abs(r["baseline"] - b) < 1e-12 for r in records[start : start + 4])
    fresh = Reinforce(task.space, batch_size=4, seed=0, lr=0.05)
    first = fresh.ask(4)
    log_prob, entropy = fresh.log_prob(first)
    assert [r["log_prob"] for r in records[:4]] == log_prob.tolist()
    assert [r["entropy"] for r in records[:4]] == entropy.tolist()
    assert all(r["entropy"] > 0 and r["log_prob"] < 0 for r in records)
    assert torch.tensor([r["entropy"] for r in records]).unique().numel() > 1


def test_strategies_without_a_controller_log_no_policy_fields(tmp_path):
    _, records, _ = run_toy(tmp_path, RandomSearch)
    assert len(records) == 12
    assert not any(k in r for r in records for k in ("baseline", "log_prob", "entropy"))
