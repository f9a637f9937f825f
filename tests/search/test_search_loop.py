"""The search loop in-process: logging, checkpointing and recovery from simulated kills."""

import json
from collections import Counter

import pytest
import torch

from pynas.search import Budget, RunDirError, RunJournal, Search
from pynas.search.display import SearchDisplay
from pynas.strategies import RandomSearch, Reinforce
from pynas.tasks.base import ChildResult, SearchTask
from pynas.tasks.toy import TOY_SPACE, toy_reward


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in the loop catches it."""


class CountingTask:
    """The toy objective, counting evaluations per child index; can 'die' at call k."""

    def __init__(self, die_at: int | None = None) -> None:
        self.calls: Counter[int] = Counter()
        self.die_at = die_at
        self.n = 0

    def evaluate(self, arch, index):
        self.n += 1
        if self.die_at is not None and self.n == self.die_at:
            raise Killed
        self.calls[index] += 1
        return ChildResult("ok", toy_reward(arch), {"seconds": 0.0})

    def task(self) -> SearchTask:
        return SearchTask("toy", TOY_SPACE, self.evaluate)


BUDGET = Budget(children=20, batch_size=4, grads_per_update=1)


def new_search(path, counting, budget=BUDGET, meta=True):
    run = RunJournal.create(path, {"test": True}) if meta else RunJournal.open(path)
    strategy = Reinforce(TOY_SPACE, lr=0.05, batch_size=budget.batch_size, seed=11)
    search = Search(run, counting.task(), strategy, budget)
    search.restore()
    return search


def read_log(path):
    if not (path / "children.jsonl").exists():
        return []
    return [json.loads(line) for line in (path / "children.jsonl").read_text().splitlines()]


def strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.fixture
def reference(tmp_path):
    counting = CountingTask()
    search = new_search(tmp_path / "ref", counting)
    summary = search.run_all()
    return read_log(tmp_path / "ref"), search.strategy, summary


def test_complete_run_logs_every_child_once(reference):
    records, strategy, summary = reference
    assert [r["index"] for r in records] == list(range(20))
    assert set(records[0]) >= {"index", "arch", "reward", "ppl", "params", "seconds", "status"}
    assert all(TOY_SPACE.validate(r["arch"]) == r["arch"] for r in records)
    assert strategy.version == 5 * strategy.settings.epochs  # 20 children, m = 4, g = 1
    assert summary["children_done"] == 20 and summary["complete"]
    assert summary["top"][0]["reward"] == max(r["reward"] for r in records)
    assert len(summary["reward_trend"]["batch_means"]) == 5


def test_arch_field_is_canonical_json(tmp_path, reference):
    line = (tmp_path / "ref" / "children.jsonl").read_text().splitlines()[0]
    record = json.loads(line)
    assert TOY_SPACE.arch_to_json(record["arch"]) in line


@pytest.mark.parametrize("die_at", [1, 3, 4, 6, 9, 20])
def test_kill_mid_batch_then_resume(tmp_path, reference, die_at):
    ref_records, ref_strategy, _ = reference
    first = CountingTask(die_at=die_at)
    with pytest.raises(Killed):
        new_search(tmp_path / "run", first).run_all()
    logged = {r["index"] for r in read_log(tmp_path / "run")}
    assert logged == set(range(die_at - 1))
    second = CountingTask()
    search = new_search(tmp_path / "run", second, meta=False)
    search.run_all()
    # nothing logged before the kill is trained again; everything else exactly once
    assert not set(second.calls) & logged
    assert first.calls + second.calls == Counter(range(20))
    assert strip(read_log(tmp_path / "run")) == strip(ref_records)
    for k, v in ref_strategy.controller.state_dict().items():
        assert torch.equal(v, search.strategy.controller.state_dict()[k])


def test_kill_after_batch_logged_but_before_tell(tmp_path, reference, monkeypatch):
    ref_records, ref_strategy, _ = reference
    original = Search._tell_pending
    calls = {"n": 0}

    def dying_tell(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        original(self)

    monkeypatch.setattr(Search, "_tell_pending", dying_tell)
    first = CountingTask()
    with pytest.raises(Killed):
        new_search(tmp_path / "run", first).run_all()
    monkeypatch.setattr(Search, "_tell_pending", original)
    assert sorted(first.calls) == list(range(8))
    second = CountingTask()
    search = new_search(tmp_path / "run", second, meta=False)
    search.run_all()
    assert sorted(second.calls) == list(range(8, 20))  # the logged batch is re-used, not trained
    assert strip(read_log(tmp_path / "run")) == strip(ref_records)
    assert search.strategy.version == ref_strategy.version


def test_torn_last_line_is_trained_again(tmp_path, reference):
    ref_records, _, _ = reference
    first = CountingTask(die_at=7)
    with pytest.raises(Killed):
        new_search(tmp_path / "run", first).run_all()
    path = tmp_path / "run" / "children.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:17])  # child 5's line torn
    messages = []
    display = SearchDisplay(20, enabled=False)
    display.message = messages.append  # type: ignore[method-assign]
    second = CountingTask()
    run = RunJournal.open(tmp_path / "run")
    search = Search(
        run, second.task(), Reinforce(TOY_SPACE, lr=0.05, batch_size=4), BUDGET, display=display
    )
    search.restore()
    assert any("torn last line" in m for m in messages)
    search.run_all()
    assert second.calls[5] == 1 and 4 not in second.calls
    assert strip(read_log(tmp_path / "run")) == strip(ref_records)


def test_a_crashing_child_is_recorded_and_the_search_goes_on(tmp_path):
    def evaluate(arch, index):
        if index == 2:
            raise RuntimeError("worker exploded")
        return ChildResult("ok", 0.5, {"seconds": 0.0})

    run = RunJournal.create(tmp_path / "run", {})
    budget = Budget(children=8, batch_size=4, grads_per_update=1)
    Search(
        run, SearchTask("toy", TOY_SPACE, evaluate), RandomSearch(TOY_SPACE, seed=0), budget
    ).run_all()
    records = read_log(tmp_path / "run")
    assert len(records) == 8
    assert records[2]["status"] == "failed" and "worker exploded" in records[2]["reason"]
    assert records[2]["reward"] == 0.0


def test_time_limit_stops_before_a_batch_that_does_not_fit(tmp_path):
    def evaluate(arch, index):
        return ChildResult("ok", 0.5, {"seconds": 100.0})  # each child "takes" 100 s

    run = RunJournal.create(tmp_path / "run", {})
    budget = Budget(children=40, batch_size=4, grads_per_update=1, time_limit=1.0)
    summary = Search(
        run, SearchTask("toy", TOY_SPACE, evaluate), RandomSearch(TOY_SPACE, seed=0), budget
    ).run_all()
    assert summary["children_done"] == 4  # the first batch runs; the estimate stops the next
    assert summary["stopped_by_time_limit"] and not summary["complete"]


def test_inconsistent_log_is_refused(tmp_path, reference):
    run_path = tmp_path / "ref"
    lines = (run_path / "children.jsonl").read_text().splitlines(keepends=True)
    (run_path / "children.jsonl").write_text("".join(lines[:3] + lines[4:]))  # child 3 lost
    with pytest.raises(RunDirError, match="does not match the checkpoint"):
        new_search(run_path, CountingTask(), meta=False)
