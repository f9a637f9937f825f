"""The weight-sharing search (``--weights shared``): rounds, records, failures told as None,
the final ranking, every strategy, checkpoint-then-resume, the command line."""

from __future__ import annotations

import json

import pytest
import torch

from pynas.io import read_json
from pynas.retrain.cli import main as retrain_main
from pynas.runs import open_run
from pynas.search.cli import main as search_main
from pynas.search.journal import RunJournal
from pynas.search.settings import RunSettings
from pynas.search.shared_loop import SharedSearch
from pynas.search.shared_settings import SharedSchedule, SharedSettings
from pynas.show import main as show_main
from pynas.spaces import RNNCellSpace
from pynas.strategies import PPO, RandomSearch, RegularizedEvolution, Reinforce
from pynas.tasks.base import Budget
from pynas.tasks.ptb import load_corpus
from pynas.tasks.ptb.shared import SharedConfig, SharedEngine

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_ENGINE = SharedConfig(
    hidden=16, batch_size=8, bptt=10, train_tokens=20_000, valid_tokens=2_000, eval_batch_size=4
)
TINY = SharedSettings(
    SharedSchedule(rounds=3, train_steps=2, archs_per_step=2, scored_per_round=4, rank_top=3,
                   rank_tokens=1_000),
    TINY_ENGINE,
)  # fmt: skip
# the CLI runs the default engine (hidden 200): few steps, little scoring
CLI_ARGS = ["--task", "ptb", "--weights", "shared", "--rounds", "2", "--train-steps", "2",
            "--archs-per-step", "2", "--scored-per-round", "3", "--rank-top", "2",
            "--rank-tokens", "500", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(ptb_dir):
    return load_corpus(ptb_dir)


class Spy(RandomSearch):
    """Random search that remembers what it was told."""

    def __init__(self, space, seed=0):
        super().__init__(space, seed=seed)
        self.told_values = []

    def tell(self, archs, rewards):
        super().tell(archs, rewards)
        self.told_values += list(rewards)


def make_search(tmp_path, corpus, strategy=None, settings=TINY, fresh=True):
    space = RNNCellSpace(8)
    strategy = strategy or Spy(space)
    run = RunJournal.create(tmp_path, {"weights": "shared"}) if fresh else RunJournal(tmp_path)
    engine = SharedEngine(settings.engine, corpus)
    budget = Budget(settings.schedule.scored_total, settings.schedule.scored_per_round, 1)
    return SharedSearch(run, strategy, space, engine, settings, budget)


def without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def logged(run_dir):
    return [json.loads(line) for line in (run_dir / "children.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    """An uninterrupted tiny search with REINFORCE (default preset): its log, ranking, state."""
    path = tmp_path_factory.mktemp("reference")
    space = RNNCellSpace(8)
    search = make_search(path, corpus, Reinforce(space, batch_size=4, seed=3))
    search.restore()
    search.run_all()
    return path, search


def test_rounds_write_one_record_per_scored_architecture(reference):
    path, search = reference
    records = logged(path)
    assert [r["index"] for r in records] == list(range(12))  # 3 rounds x 4
    assert [r["round"] for r in records] == [0] * 4 + [1] * 4 + [2] * 4
    assert {r["weights"] for r in records} == {"shared"}
    for r in records:
        assert r["status"] in ("ok", "failed")
        assert r["metrics"]["tokens"] == 2 * TINY_ENGINE.bptt * TINY_ENGINE.eval_batch_size
        assert r["log_prob"] is not None  # REINFORCE's policy statistics are logged
        if r["status"] == "failed":
            assert r["reason"] and r["reward"] == 0.0
    # the engine trained 3 rounds x 2 steps on 2 architectures each
    assert search.engine.totals.steps == 6
    assert search.engine.totals.rows == 6 * TINY_ENGINE.batch_size


def test_the_ranking_rescores_the_best_distinct_architectures(reference):
    path, search = reference
    ranking = read_json(path / "ranking.json")
    records = logged(path)
    ok = sorted((r for r in records if r["status"] == "ok"), key=lambda r: -r["reward"])
    assert [e["index"] for e in sorted(ranking["entries"], key=lambda e: -e["search_reward"])] == [
        r["index"] for r in ok[:3]
    ]
    assert ranking["valid_tokens"] == 1_000 and ranking["weights"] == "shared"
    ranked = [e for e in ranking["entries"] if e["status"] == "ok"]
    assert [e["rank"] for e in ranked] == list(range(1, len(ranked) + 1))
    assert [e["reward"] for e in ranked] == sorted((e["reward"] for e in ranked), reverse=True)
    for e in ranked:  # scored on the larger slice: other numbers than the search's
        assert e["tokens"] > 2 * TINY_ENGINE.bptt * TINY_ENGINE.eval_batch_size
        assert e["reward"] == pytest.approx(80 / e["ppl"] ** 2)
    # show and retrain rank by it
    assert [r.record["index"] for r in open_run(path).ranked()] == [e["index"] for e in ranked]


def test_failures_are_records_with_reasons_and_are_told_none(tmp_path, corpus):
    search = make_search(tmp_path, corpus)
    search.restore()
    search.run_all()
    records = logged(tmp_path)
    told = search.strategy.told_values
    assert len(told) == len(records) == 12
    failed = [r for r in records if r["status"] == "failed"]
    assert failed, "the seeded run should score some diverging cells (ppl above the vocabulary)"
    for r, value in zip(records, told, strict=True):
        assert value == (None if r["status"] == "failed" else r["reward"])
        if r["status"] == "failed":
            assert "shared weights" in r["reason"]


@pytest.mark.parametrize(
    "make", [RandomSearch, RegularizedEvolution, Reinforce, PPO], ids=lambda c: c.__name__
)
def test_every_strategy_runs_through_ask_and_tell(tmp_path, corpus, make):
    space = RNNCellSpace(8)
    strategy = make(space, seed=1) if make in (RandomSearch, RegularizedEvolution) else make(
        space, batch_size=4, seed=1
    )
    settings = TINY.with_schedule(rounds=2, rank_tokens=500)
    search = make_search(tmp_path, corpus, strategy, settings)
    search.restore()
    summary = search.run_all()
    assert summary["children_done"] == 8 and summary["rounds_done"] == 2
    assert summary["weights"] == "shared" and summary["training"]["steps"] == 4


class Interrupt(Exception):
    """Stands in for a kill at a chosen point."""


def interrupt_at(monkeypatch, target, name, call):
    """Make `target.name` raise Interrupt on its `call`-th call (1-based)."""
    original = getattr(target, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)


@pytest.mark.parametrize(
    "where",
    [
        ("engine", "train_step", 4),  # round 2's training
        ("engine", "score", 2),  # after round 2's pending checkpoint
        ("run", "append", 6),  # round 2 half logged
        ("run", "save_checkpoint", 4),  # round 2 logged and told, its checkpoint not written
    ],
    ids=lambda w: f"{w[1]}#{w[2]}",
)
def test_checkpoint_then_resume_continues_identically(tmp_path, corpus, reference, monkeypatch,
                                                      where):  # fmt: skip
    ref_path, ref = reference
    space = RNNCellSpace(8)
    first = make_search(tmp_path, corpus, Reinforce(space, batch_size=4, seed=3))
    first.restore()
    part, name, call = where
    interrupt_at(monkeypatch, first.engine if part == "engine" else first.run, name, call)
    with pytest.raises(Interrupt):
        first.run_all()
    monkeypatch.undo()
    torch.manual_seed(12345)  # another process: another global RNG state until the restore
    second = make_search(tmp_path, corpus, Reinforce(space, batch_size=4, seed=99), fresh=False)
    second.restore()
    second.run_all()
    assert without_seconds(logged(tmp_path)) == without_seconds(logged(ref_path))
    assert read_json(tmp_path / "ranking.json") == read_json(ref_path / "ranking.json")
    ref_weights, weights = ref.engine.model.state_dict(), second.engine.model.state_dict()
    assert all(torch.equal(ref_weights[k], weights[k]) for k in ref_weights)
    assert second.strategy.version == ref.strategy.version
    for k, v in ref.strategy.controller.state_dict().items():
        assert torch.equal(v, second.strategy.controller.state_dict()[k]), k


# ----- the command line ----------------------------------------------------------------------


def test_cli_run_show_retrain_and_resume(tmp_path, run_cli, ptb_dir):
    run = tmp_path / "run"
    code, out, err = run_cli(search_main, [*CLI_ARGS, "--strategy", "random", "--data-dir",
                                           str(ptb_dir), "--run-dir", str(run)])  # fmt: skip
    assert code == 0, err
    assert "architectures scored with the shared weights" in out
    meta = read_json(run / "run.json")
    settings = RunSettings.from_dict(meta)  # every value written reads back
    assert settings.weights == "shared" and settings.to_dict() == meta
    assert settings.shared.schedule.rank_tokens == 500
    assert settings.budget.time_limit == 300.0  # the default: 5 minutes
    assert len(logged(run)) == 6
    code, out, err = run_cli(show_main, [str(run)])
    assert code == 0, err
    assert "weight sharing" in out and "ranked with the shared weights on 500" in out
    # resuming a finished run trains nothing more and ranks the same way again
    before = (run / "ranking.json").read_text()
    code, out, err = run_cli(search_main, ["--resume", str(run), "--quiet"])
    assert code == 0, err
    assert len(logged(run)) == 6 and (run / "ranking.json").read_text() == before
    code, out, err = run_cli(retrain_main, [str(run), "--top", "1", "--lr", "20",
                                            "--weight-decay", "0", "--hidden", "16",
                                            "--train-limit", "2000", "--valid-limit", "1000",
                                            "--test-limit", "1000", "--quiet"])  # fmt: skip
    assert code == 0, err
    first = open_run(run).ranked()[0].record["index"]
    assert f"child {first}" in out
    # before its final ranking (interrupted), a run's leaderboard is its search scores
    (run / "ranking.json").unlink()
    code, out, err = run_cli(show_main, [str(run)])
    assert code == 0 and "search scores with the shared weights" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "toy", "--weights", "shared"], "needs --task ptb"),
        (["--task", "ptb", "--weights", "shared", "--children", "5"], "--children does not apply"),
        (["--task", "ptb", "--weights", "shared", "--workers", "2"], "--workers does not apply"),
        (["--task", "ptb", "--weights", "shared", "--budget", "paper"], "--budget applies"),
        (["--task", "ptb", "--weights", "shared", "--archs-per-step", "17"], "cannot exceed"),
        (["--task", "ptb", "--rounds", "3"], "--rounds apply to --weights shared only"),
        (["--task", "ptb", "--weights", "shared", "--rank-tokens", "1"], "rank_tokens"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, run_cli, argv, message):
    code, out, err = run_cli(search_main, [*argv, "--run-dir", str(tmp_path / "run")])
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_resume_refuses_other_settings(tmp_path, run_cli, ptb_dir):
    run = tmp_path / "run"
    args = [*CLI_ARGS, "--rounds", "1", "--data-dir", str(ptb_dir), "--run-dir", str(run)]
    assert run_cli(search_main, args)[0] == 0
    code, _, err = run_cli(search_main, ["--resume", str(run), "--train-steps", "5"])
    assert code == 2 and "drop --train-steps" in err
    meta = read_json(run / "run.json")
    meta["shared"]["engine"]["lr"] = 1.0  # run.json no longer fits the checkpoint
    (run / "run.json").write_text(json.dumps(meta))
    code, _, err = run_cli(search_main, ["--resume", str(run), "--quiet"])
    assert code == 2 and "does not fit the run's shared-model settings" in err
    meta["shared"]["engine"]["lr"] = 20.0
    del meta["shared"], meta["weights"]  # a standalone run.json over a shared checkpoint
    (run / "run.json").write_text(json.dumps(meta))
    code, _, err = run_cli(search_main, ["--resume", str(run), "--quiet"])
    assert code == 2 and "weight-sharing" in err and "Traceback" not in err


def test_a_damaged_latest_checkpoint_falls_back_and_reuses_the_logged_records(
    tmp_path, corpus, reference, monkeypatch
):
    """Round 2 half logged, then its pending checkpoint is damaged: the search continues from
    the checkpoint after round 1, trains and asks round 2 again (the same architectures) and
    re-uses its logged record."""
    ref_path, _ = reference
    space = RNNCellSpace(8)
    first = make_search(tmp_path, corpus, Reinforce(space, batch_size=4, seed=3))
    first.restore()
    interrupt_at(monkeypatch, first.run, "append", 6)
    with pytest.raises(Interrupt):
        first.run_all()
    monkeypatch.undo()
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    second = make_search(tmp_path, corpus, Reinforce(space, batch_size=4, seed=99), fresh=False)
    said = []
    second.display.message = said.append
    second.restore()
    assert any("again" in m for m in said) and (tmp_path / "checkpoint.pt.damaged").exists()
    second.run_all()
    assert without_seconds(logged(tmp_path)) == without_seconds(logged(ref_path))


def test_the_time_limit_ends_the_search_before_a_round_that_would_not_fit(tmp_path, corpus):
    search = make_search(tmp_path, corpus)
    search.budget = Budget(12, 4, 1, time_limit=1e-3)  # any round takes longer than that
    search.restore()
    summary = search.run_all()
    assert summary["rounds_done"] == 1 and summary["stopped_by_time_limit"]
    assert not summary["complete"] and (tmp_path / "ranking.json").exists()
