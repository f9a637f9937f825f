"""`python -m pynas.train`: success, and clear errors with exit code 2."""

import json
import os
import subprocess
import sys

import pytest

from pynas.arch import NAMED_CELLS


def run_train(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pynas.train", "--task", "ptb", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def test_trains_one_tiny_child(ptb_dir, tmp_path):
    out = tmp_path / "result.json"
    proc = run_train(
        "--arch", "nas_cell", "--data-dir", str(ptb_dir), "--hidden", "16", "--train-tokens",
        "3000", "--valid-tokens", "1000", "--bptt", "10", "--output", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "validation perplexity" in proc.stdout
    assert "epoch 1: validation perplexity" in proc.stderr
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and record["arch"]["kind"] == "rnn_cell"
    assert record["metrics"]["ppl"] > 1


def test_packaged_ptb_is_the_default_from_any_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYNAS_DATA"}
    proc = subprocess.run(
        [sys.executable, "-m", "pynas.train", "--task", "ptb", "--arch", "nas_cell", "--hidden",
         "8", "--train-tokens", "600", "--valid-tokens", "300", "--bptt", "8", "--quiet",
         "--threads", "1"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "vocab=10000" in proc.stderr and "validation perplexity" in proc.stdout


def test_malformed_architecture_file(ptb_dir, tmp_path):
    data = json.loads(NAMED_CELLS["nas_cell"].to_json())
    data["nodes"][4] = ["add", "swish"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    proc = run_train("--arch", str(bad), "--data-dir", str(ptb_dir))
    assert proc.returncode == 2
    assert "nodes[4][1]" in proc.stderr and "'swish'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_architecture_file_not_json(ptb_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("this is not json")
    proc = run_train("--arch", str(bad), "--data-dir", str(ptb_dir))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_data_names_files_and_place(tmp_path):
    proc = run_train("--arch", "nas_cell", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "train.txt" in proc.stderr and str(tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arch", "nas_cell", "--hidden", "0"], "--hidden must be >= 1"),
        (["--arch", "nas_cell", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["--arch", "no_such_cell"], "not a named architecture"),
    ],
)
def test_bad_arguments_exit_2(ptb_dir, args, fragment):
    proc = run_train(*args, "--data-dir", str(ptb_dir))
    assert proc.returncode == 2
    assert fragment in proc.stderr


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_trains_a_baseline_at_a_cells_parameter_budget(ptb_dir, tmp_path, kind):
    from pynas.children.baseline_rnn import count_parameters, hidden_for_budget

    budget = 170_000  # a base-8 cell at this budget: H 16
    out = tmp_path / "result.json"
    proc = run_train(
        "--arch", kind, "--params-budget", str(budget), "--data-dir", str(ptb_dir),
        "--train-tokens", "2000", "--valid-tokens", "500", "--bptt", "10", "--lr", "1",
        "--output", str(out), "--quiet", "--threads", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    hidden = hidden_for_budget(kind, 10_000, budget)
    assert record["arch"] == kind and record["config"]["hidden"] == hidden
    assert record["metrics"]["params"] == count_parameters(kind, 10_000, hidden) <= budget
    assert f"hidden={hidden} vocab=10000 {kind} baseline" in proc.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--task", "ptb", "--arch", "lstm", "--impl", "fused"], "--impl applies to tree cells"),
        (["--task", "ptb", "--arch", "gru", "--params-budget", "100"], "too small"),
        (["--task", "cifar10", "--arch", "lstm"], "baseline of the PTB language models"),
    ],
)
def test_bad_baseline_arguments_exit_2(run_cli, args, fragment):
    from pynas.train import main

    code, _, err = run_cli(main, args)
    assert code == 2 and fragment in err and "Traceback" not in err
