"""Run directories written by pynas's first on-disk format still resume, show and retrain.

The fixtures in tests/fixtures/rundirs (see its README) were written by the code of commit
6f38f5b and are never changed: each is copied, shown (the text must be what that version
printed), resumed to the end with today's code, and shown again.
"""

import json
import math
import shutil
import stat
from pathlib import Path

import pytest

from pynas.io import read_json
from pynas.retrain.cli import main as retrain_main
from pynas.runs import open_run
from pynas.search.cli import main as search_main
from pynas.show import main as show_main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rundirs"
EXPECTED = FIXTURES / "expected"

pytestmark = pytest.mark.usefixtures("one_thread")


def copy(name, tmp_path):
    run = tmp_path / "RUN"  # the name the expected `show` output was printed with
    shutil.copytree(FIXTURES / name, run)
    for path in [run, *run.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return run


def show(run, run_cli, monkeypatch):
    monkeypatch.chdir(run.parent)
    code, out, err = run_cli(show_main, ["RUN"])
    assert code == 0, err
    return out


def without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def resume(run, run_cli, *extra):
    before = open_run(run).records
    code, out, err = run_cli(search_main, ["--resume", str(run), "--quiet", *map(str, extra)])
    assert code == 0, err
    after = open_run(run).records
    assert [r["index"] for r in after] == list(range(len(after)))  # each child exactly once
    assert after[: len(before)] == before  # nothing logged before was lost or rewritten
    summary = read_json(run / "summary.json")
    assert summary["complete"] and summary["children_done"] == len(after)
    return after, out


@pytest.mark.parametrize("name", ["toy-v1", "ptb-v1", "cifar10-v1", "ray-toy-v1"])
def test_show_prints_what_the_first_version_printed(name, tmp_path, run_cli, monkeypatch):
    run = copy(name, tmp_path)
    assert show(run, run_cli, monkeypatch) == (EXPECTED / f"show-{name}.txt").read_text()


def test_toy_run_resumes_to_the_log_the_first_version_wrote(tmp_path, run_cli, monkeypatch):
    run = copy("toy-v1", tmp_path)
    after, out = resume(run, run_cli)
    expected = json.loads((EXPECTED / "toy-v1-resumed.json").read_text())
    # same architectures and rewards exactly; the policy numbers to float rounding (the
    # controller's fused scoring sums in another order than the version that wrote the run)
    policy = ("log_prob", "entropy")
    got = without_seconds(after)
    assert [{k: v for k, v in r.items() if k not in policy} for r in got] == [
        {k: v for k, v in r.items() if k not in policy} for r in expected
    ]
    for r, e in zip(got, expected, strict=True):
        assert [r.get(k) for k in policy] == pytest.approx([e.get(k) for k in policy], rel=1e-5)
    assert "top architectures" in out
    assert "complete" in show(run, run_cli, monkeypatch)


def test_ptb_run_with_non_finite_numbers_resumes_and_shows(tmp_path, run_cli, monkeypatch):
    run = copy("ptb-v1", tmp_path)
    before = open_run(run).records
    assert before[1]["metrics"]["epoch_ppl"] == [math.inf]
    assert math.isnan(before[2]["metrics"]["epoch_ppl"][0])
    after, _ = resume(run, run_cli)
    assert len(after) == 6
    text = show(run, run_cli, monkeypatch)
    assert "task ptb, strategy evolution" in text and "6 children" in text


def test_cifar10_run_resumes_and_its_retrain_continues(tmp_path, run_cli, monkeypatch, cifar10_dir):
    run = copy("cifar10-v1", tmp_path)
    after, _ = resume(run, run_cli, "--data-dir", cifar10_dir)
    assert len(after) == 4
    assert [len(r["arch"]["layers"]) for r in after] == [1, 1, 2, 2]  # depth grew on resume
    results = run / "retrain" / "results.jsonl"
    first = results.read_text()
    argv = [run, "--top", "2", "--lr", "0.1", "--weight-decay", "1e-4", "--valid-limit", "50",
            "--test-limit", "50", "--data-dir", cifar10_dir, "--quiet"]  # fmt: skip
    code, out, err = run_cli(retrain_main, [str(a) for a in argv])
    assert code == 0, err
    assert results.read_text().startswith(first)  # the earlier retrain's results are kept
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["train", "test", "train", "test"]
    summary = read_json(run / "retrain" / "summary.json")
    assert summary["complete"] and len(summary["rows"]) == 2
    assert "retrained" in show(run, run_cli, monkeypatch)


@pytest.mark.slow
def test_ray_run_resumes_on_a_new_local_instance(tmp_path, run_cli, monkeypatch):
    run = copy("ray-toy-v1", tmp_path)
    after, _ = resume(run, run_cli, "--address", "local")
    assert len(after) == 8
    state = read_json(run / "summary.json")["parameter_servers"]
    assert state["gradients_applied"] == 4
    lines = [json.loads(x) for x in (run / "gradients.jsonl").read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == [0, 1, 2, 3]
