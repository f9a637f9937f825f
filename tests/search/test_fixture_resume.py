"""The run directory of the README search that died at child 103 resumes and finishes.

`/work/shared/fixtures/ptb-run-crashed-at-child-103` (see its README) was written by the
README's search at commit 848defd: child 103's record held `inf` in `metrics.epoch_ppl`, which
the log refused, so the search and every `--resume` died. Here a copy resumes with its budget
cut to the interrupted batch (children 100..103, three of them logged); child 103 gets the same
infinite validation perplexity as in that run (on this machine it may train differently, so the
evaluation is patched for it), and the search must complete and write its summary.
"""

import json
import math
import shutil
import stat
from pathlib import Path

import pytest

import pynas.tasks.ptb.training as ptb
from pynas.io import read_json
from pynas.runs import open_run
from pynas.search.cli import main

FIXTURE = (
    Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ptb-run-crashed-at-child-103"
)


@pytest.fixture
def crashed_run(tmp_path, ptb_dir):
    if not FIXTURE.is_dir():
        pytest.skip(f"fixture {FIXTURE} not found (it exists in the development environment)")
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    for path in [run, *run.iterdir()]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    meta = json.loads((run / "run.json").read_text())
    meta["data_dir"] = str(ptb_dir)  # the fixture's is relative to the project root
    meta["budget_settings"]["children"] = 104  # finish with the interrupted batch
    (run / "run.json").write_text(json.dumps(meta, indent=2))
    return run


def test_the_crashed_readme_run_resumes_and_finishes(crashed_run, capsys, monkeypatch):
    evaluate = ptb.evaluate_ppl
    child_103 = lambda: ptb.torch.initial_seed() == 103  # noqa: E731 (seed 0: seed = index)
    monkeypatch.setattr(ptb, "evaluate_ppl", lambda *a: math.inf if child_103() else evaluate(*a))
    before = open_run(crashed_run).records
    assert [r["index"] for r in before] == list(range(103))
    code = main(["--resume", str(crashed_run)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "3 of the interrupted batch re-used" in err
    after = open_run(crashed_run).records
    assert after[:103] == before  # nothing logged before was lost or rewritten
    last = after[103]
    assert last["index"] == 103 and last["status"] == "failed"
    assert last["reason"] == "non-finite validation perplexity at epoch 1"
    assert last["metrics"]["epoch_ppl"] == [math.inf]
    summary = read_json(crashed_run / "summary.json")
    assert summary["complete"] and summary["children_done"] == 104
    assert summary["failed"] == sum(r["status"] != "ok" for r in after)
