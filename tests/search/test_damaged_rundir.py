"""Damaged run directories, through the command line: a clear message and exit code 2, never a
traceback; a damaged latest checkpoint falls back to the previous one; damaged log lines are
moved aside with --repair-log without losing a finished child.

Runs are toy searches (REINFORCE, m = 4), interrupted by an exception that nothing catches (as
SIGKILL would), then damaged on purpose. A resumed run must log exactly what an uninterrupted one
logs (seconds aside) and end with the same controller.
"""

import json

import pytest
import torch

import pynas.search.loop as loop
from pynas.retrain.cli import main as retrain_main
from pynas.search.cli import main as search_main
from pynas.show import main as show_main
from pynas.tasks.registry import TASKS

ARGS = ["--task", "toy", "--children", "16", "--batch-size", "4", "--seed", "3"]


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the search catches it."""


def cli(main, argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def records(run):
    return [json.loads(x) for x in (run / "children.jsonl").read_text().splitlines()]


def strip(rs):
    return sorted(({k: v for k, v in r.items() if k != "seconds"} for r in rs),
                  key=lambda r: r["index"])  # fmt: skip


def controller(run):
    return torch.load(run / "checkpoint.pt", weights_only=False)["strategy"]["controller"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    assert search_main([*ARGS, "--run-dir", str(run), "--quiet"]) == 0
    return run


def interrupted(path, capsys, die_at=None, die_before_ask=None):
    """A toy run killed at its `die_at`-th child evaluation, or before the ask at that child."""
    calls = {"n": 0}

    toy = TASKS["toy"]
    search_task = toy.search_task

    def dying_task(child, seed, data_dir=None):
        task = search_task(child, seed, data_dir)
        evaluate = task.evaluate

        def dying(arch, index):
            calls["n"] += 1
            if calls["n"] == die_at:
                raise Killed
            return evaluate(arch, index)

        task.evaluate = dying
        return task

    ask = loop.Search._ask

    def dying_ask(self):
        if self.absorbed == die_before_ask:
            raise Killed
        ask(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(toy, "search_task", dying_task)
        mp.setattr(loop.Search, "_ask", dying_ask)
        with pytest.raises(Killed):
            search_main([*ARGS, "--run-dir", str(path), "--quiet"])
    capsys.readouterr()
    return path


def assert_same_as_reference(run, reference):
    assert strip(records(run)) == strip(records(reference))
    for k, v in controller(reference).items():
        assert torch.equal(v, controller(run)[k])


# ----- checkpoints ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kill, damage",
    [
        ({"die_at": 1}, "truncated"),  # in batch 0: both checkpoints are its first one
        ({"die_at": 5}, "garbage"),  # batch 1 asked, none of it logged
        ({"die_at": 7}, "truncated"),  # batch 1 half logged: the previous has no pending batch
        ({"die_at": 16}, "empty"),  # the last batch missing one child
        ({"die_before_ask": 8}, "truncated"),  # batch 1 told: the previous is its pending one
    ],
)
def test_damaged_checkpoint_falls_back_to_the_previous_one(
    tmp_path, capsys, reference, kill, damage
):
    run = interrupted(tmp_path / "run", capsys, **kill)
    assert (run / "checkpoint.prev.pt").is_file()
    latest = run / "checkpoint.pt"
    data = latest.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "garbage": b"\x00junk" * 50, "empty": b""}
    latest.write_bytes(damaged[damage])
    code, _, err = cli(search_main, ["--resume", run], capsys)
    assert code == 0, err
    assert "checkpoint.pt cannot be read" in err
    assert "(moved to checkpoint.pt.damaged); continuing from the previous checkpoint" in err
    assert (run / "checkpoint.pt.damaged").read_bytes() == damaged[damage]  # kept to inspect
    assert_same_as_reference(run, reference)


def test_a_missing_latest_checkpoint_falls_back_too(tmp_path, capsys, reference):
    run = interrupted(tmp_path / "run", capsys, die_at=10)
    (run / "checkpoint.pt").unlink()
    code, _, err = cli(search_main, ["--resume", run], capsys)
    assert code == 0 and "checkpoint.pt is missing; continuing from the previous" in err
    assert_same_as_reference(run, reference)


def test_both_checkpoints_damaged_is_a_clear_error(tmp_path, capsys):
    run = interrupted(tmp_path / "run", capsys, die_at=10)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[:100])
    log = (run / "children.jsonl").read_bytes()
    code, _, err = cli(search_main, ["--resume", run], capsys)
    assert code == 2
    assert "checkpoint.pt cannot be read" in err and "checkpoint.prev.pt cannot be read" in err
    assert "python -m pynas.show" in err and "another --run-dir" in err
    assert (run / "children.jsonl").read_bytes() == log  # nothing lost
    code, out, _ = cli(show_main, [run], capsys)  # the finished children can still be shown
    assert code == 0 and "9 children" in out


# ----- children.jsonl -------------------------------------------------------------------------
def garble(run, line_number):
    path = run / "children.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    original = lines[line_number - 1]
    lines[line_number - 1] = original[:30] + b"\x00\xff#garbled" + original[45:]
    path.write_bytes(b"".join(lines))
    return original


def test_a_damaged_line_of_a_learned_child_exits_2_then_repair_log_keeps_a_placeholder(
    tmp_path, capsys, reference
):
    run = interrupted(tmp_path / "run", capsys, die_at=11)  # children 0..9 logged, 0..7 told
    garble(run, 3)  # child 2: already learned from
    before = (run / "children.jsonl").read_bytes()
    code, _, err = cli(search_main, ["--resume", run], capsys)
    assert code == 2
    assert "children.jsonl is damaged: line(s) 3 are not JSON records" in err
    assert f"--resume {run} --repair-log" in err
    assert (run / "children.jsonl").read_bytes() == before  # refused without changing a byte
    for main in (show_main, retrain_main):
        code, _, err = cli(main, [run], capsys)
        assert code == 2 and "line 3" in err and "--repair-log" in err, err

    code, _, err = cli(search_main, ["--resume", run, "--repair-log"], capsys)
    assert code == 0, err
    assert "moved 1 damaged line(s) (3) to children.jsonl.damaged" in err
    assert "children [2] had been learned from" in err
    moved = [json.loads(x) for x in (run / "children.jsonl.damaged").read_text().splitlines()]
    assert [m["line"] for m in moved] == [3]
    assert moved[0]["text"].encode("utf-8", "surrogateescape") == before.splitlines()[2]
    got = {r["index"]: r for r in records(run)}
    assert sorted(got) == list(range(16))  # every child exactly once
    placeholder = got[2]
    assert placeholder["status"] == "damaged" and placeholder["reward"] is None
    assert "line 3" in placeholder["reason"] and "children.jsonl.damaged" in placeholder["reason"]
    want = {r["index"]: r for r in strip(records(reference))}
    assert all(strip([got[i]])[0] == want[i] for i in got if i != 2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["damaged"] == 1
    code, out, _ = cli(show_main, [run], capsys)
    assert code == 0 and "1 of them damaged log lines" in out


def test_a_damaged_line_of_the_unfinished_batch_is_trained_again(tmp_path, capsys, reference):
    run = interrupted(tmp_path / "run", capsys, die_at=12)  # children 8..10 of batch 2 logged
    garble(run, 10)  # child 9
    code, _, err = cli(search_main, ["--resume", run, "--repair-log"], capsys)
    assert code == 0, err
    assert "moved 1 damaged line(s) (10)" in err and "learned from" not in err
    assert_same_as_reference(run, reference)  # child 9 trained again: nothing is missing


def test_a_torn_last_line_of_a_learned_child_is_damage_not_a_kill(tmp_path, capsys, reference):
    run = tmp_path / "run"
    assert cli(search_main, [*ARGS, "--run-dir", run, "--quiet"], capsys)[0] == 0
    path = run / "children.jsonl"
    data = path.read_bytes()
    torn = data[: len(data) - 50]  # child 15's line, learned from: a kill cannot tear it
    path.write_bytes(torn)
    code, _, err = cli(search_main, ["--resume", run], capsys)
    assert code == 2 and "line(s) 16 are not JSON records" in err and "--repair-log" in err
    assert path.read_bytes() == torn  # not cut off: its bytes are all that is left of child 15
    code, _, err = cli(search_main, ["--resume", run, "--repair-log"], capsys)
    assert code == 0 and "children [15] had been learned from" in err, err
    moved = json.loads((run / "children.jsonl.damaged").read_text())
    assert moved["line"] == 16 and torn.endswith(moved["text"].encode())
    got = records(run)
    assert [r["index"] for r in got] == list(range(16))
    assert got[15]["status"] == "damaged" and "line 16" in got[15]["reason"]


def test_repair_log_applies_to_resume_only(tmp_path, capsys):
    code, _, err = cli(search_main, [*ARGS, "--run-dir", tmp_path / "r", "--repair-log"], capsys)
    assert code == 2 and "--repair-log applies to --resume" in err


# ----- run.json and summary.json --------------------------------------------------------------
@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"format": 1, "task": "to', "run.json is damaged: not valid JSON"),
        (b"", "run.json is damaged: it is empty"),
        (b"[1, 2]", "run.json is damaged (not a JSON object)"),
        (b'{"format": 1, "task": "toy"}', "(no budget_settings, strategy, seed)"),
        (b'{"format": 1, "task": "toy", "budget_settings": {"x": 1}, "strategy": "random", '
         b'"seed": 0}', "holds settings this pynas cannot use"),
    ],
)  # fmt: skip
def test_damaged_run_json_exits_2(tmp_path, capsys, content, message):
    run = interrupted(tmp_path / "run", capsys, die_at=6)
    (run / "run.json").write_bytes(content)
    code, _, err = cli(search_main, ["--resume", run], capsys)
    assert code == 2 and message in err, err
    assert "restore it from a backup" in err


def test_damaged_run_json_in_show(tmp_path, capsys, reference):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("children.jsonl", "summary.json"):
        (run / name).write_bytes((reference / name).read_bytes())
    (run / "run.json").write_bytes(b'{"task": ')
    code, _, err = cli(show_main, [run], capsys)
    assert code == 2 and "run.json is damaged" in err


def test_damaged_summary_json_exits_2_and_resume_rewrites_it(tmp_path, capsys, reference):
    run = tmp_path / "run"
    assert cli(search_main, [*ARGS, "--children", 8, "--run-dir", run, "--quiet"], capsys)[0] == 0
    (run / "summary.json").write_bytes(b'{"task": "toy", "complete": tr')
    code, _, err = cli(show_main, [run], capsys)
    assert code == 2 and "summary.json is damaged" in err and f"--resume {run}" in err
    assert cli(search_main, ["--resume", run, "--quiet"], capsys)[0] == 0
    code, out, _ = cli(show_main, [run], capsys)
    assert code == 0 and "complete" in out
