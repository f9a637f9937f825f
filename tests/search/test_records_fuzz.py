"""Fuzz of the record mechanism: any numbers a child can report go through log -> read ->
resume -> show -> TensorBoard and come back equal (NaN equal to NaN).

Children of a real search (the CLI, the toy space, random search) report results drawn by
hypothesis: NaN, +-Inf, 1e308, ints beyond the float range, negative and zero values in the
reward, in ppl/params/seconds/accuracy, in nested per-epoch lists and dicts, and in the
controller's baseline/log_prob/entropy. The search is killed in the middle (as by SIGKILL),
resumed from the command line, and then everything that reads the run is run on it.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pynas.search.loop as loop
from pynas.io import encode, read_json
from pynas.runs import open_run
from pynas.search.cli import main as search_main
from pynas.show import main as show_main
from pynas.tasks.base import FAILURE_REWARD, ChildResult, SearchTask
from pynas.tasks.registry import TASKS
from pynas.tasks.toy import TOY_SPACE

CHILDREN, BATCH = 8, 4

SPECIAL = [math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, -1.5, 10**400, -(10**30), 0]
number = st.one_of(st.sampled_from(SPECIAL), st.floats(), st.integers())
curve = st.lists(number, max_size=3)
metrics = st.fixed_dictionaries(
    {
        "seconds": number,
        "ppl": number,
        "params": st.one_of(st.integers(), st.sampled_from(SPECIAL)),
    },
    optional={
        "accuracy": number,
        "epoch_ppl": curve,
        "curves": st.fixed_dictionaries({"valid_accuracy": curve, "loss": curve}),
        "attempts": st.integers(min_value=-2, max_value=3),
    },
)
outcome = st.tuples(
    st.sampled_from(["ok", "failed"]),
    number,  # reward
    metrics,
    st.fixed_dictionaries(
        {"baseline": st.one_of(st.none(), number), "log_prob": number, "entropy": number}
    ),
)


def same(a, b):
    """Exact equality with NaN equal to NaN: the same strict JSON text (1 and 1.0 differ)."""
    return encode(a) == encode(b)


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the search catches it."""


def fuzz_task(outcomes, kill_at):
    calls = {"n": 0}

    def evaluate(arch, index):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed
        status, reward, values, _ = outcomes[index]
        return ChildResult(status, reward, dict(values), "fuzzed" if status != "ok" else None)

    return SearchTask("toy", TOY_SPACE, evaluate)


def fuzz_policy(outcomes):
    def policy_stats(strategy, space, start, archs_json):
        return {start + i: dict(outcomes[start + i][3]) for i in range(len(archs_json))}

    return policy_stats


def expected_record(record, outcome):
    """What the log must hold for this child: the reported numbers, unchanged."""
    status, reward, values, extra = outcome
    values = dict(values)
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        raise AssertionError(reward)
    try:
        finite = math.isfinite(reward)
    except OverflowError:
        finite = False
    want = {
        "index": record["index"],
        "arch": record["arch"],
        "reward": reward if finite else FAILURE_REWARD,
        "ppl": values.pop("ppl"),
        "params": values.pop("params"),
        "seconds": (lambda s: round(s, 3) if isinstance(s, float) else s)(values.pop("seconds")),
        "status": status if finite else "failed",
        "reason": (None if status == "ok" else "fuzzed") if finite else record["reason"],
        **extra,
    }
    if values:
        want["metrics"] = values
    if not finite:
        assert record["reason"].startswith("non-finite reward")
    return want


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    outcomes=st.lists(outcome, min_size=CHILDREN, max_size=CHILDREN),
    kill_at=st.integers(min_value=1, max_value=CHILDREN),
)
def test_fuzzed_records_survive_log_read_resume_show(tmp_path_factory, capsys, outcomes, kill_at):
    run = tmp_path_factory.mktemp("fuzz") / "run"
    argv = ["--task", "toy", "--run-dir", str(run), "--strategy", "random", "--quiet",
            "--children", str(CHILDREN), "--batch-size", str(BATCH)]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "policy_stats", fuzz_policy(outcomes))
        mp.setattr(TASKS["toy"], "search_task", lambda *a, **k: fuzz_task(outcomes, kill_at))
        with pytest.raises(Killed):
            search_main(argv)
        mp.setattr(TASKS["toy"], "search_task", lambda *a, **k: fuzz_task(outcomes, None))
        assert search_main(["--resume", str(run), "--quiet"]) == 0
    capsys.readouterr()

    data = open_run(run)
    assert [r["index"] for r in data.records] == list(range(CHILDREN))
    for record in data.records:
        assert same(record, expected_record(record, outcomes[record["index"]])), record

    summary = read_json(run / "summary.json")
    assert summary["complete"] and summary["children_done"] == CHILDREN
    by_index = {r["index"]: r for r in data.records}
    for entry in summary["top"]:
        for key in ("reward", "ppl", "params", "arch"):
            assert same(entry[key], by_index[entry["index"]][key])

    try:
        code = show_main([str(run), "--top", str(CHILDREN)])
    except SystemExit as exc:  # pragma: no cover - a failure shows the message
        code = exc.code
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"{CHILDREN} children" in out.out

    pytest.importorskip("tensorboard")
    from pynas.search.tensorboard import TensorBoardLogger

    TensorBoardLogger(run / "tb", data.records).close()
