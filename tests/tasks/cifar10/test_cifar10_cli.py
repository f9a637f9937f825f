"""`python -m pynas.train --task cifar10`: success, and clear errors with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pynas import train
from pynas.arch import NAMED_CONV_NETS

TWO_LAYERS = (
    '{"kind":"conv_net","layers":[{"fh":3,"fw":3,"filters":8,"stride":2,"inputs":[]},'
    '{"fh":3,"fw":3,"filters":8,"stride":2,"inputs":[0]}]}'
)


def run_train(*args):
    return subprocess.run(
        [sys.executable, "-m", "pynas.train", "--task", "cifar10", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_trains_one_tiny_child(cifar10_dir, tmp_path):
    out = tmp_path / "result.json"
    proc = run_train(
        "--arch", TWO_LAYERS, "--data-dir", str(cifar10_dir), "--epochs", "2",
        "--train-images", "128", "--valid-images", "100", "--batch-size", "32",
        "--test", "--augment", "--output", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in proc.stdout and "test accuracy" in proc.stdout
    assert "epoch 2: validation accuracy" in proc.stderr
    assert "L1: conv 3x3 x8 /2 <- L0" in proc.stderr  # the rendered architecture
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and record["arch"]["kind"] == "conv_net"
    assert record["config"]["augment"] and record["data"]["file"] == "cifar10_small.npz"
    assert record["reward"] == pytest.approx(record["metrics"]["accuracy"] ** 3)


def run_in_process(capsys, *args):
    """Argument and data errors end before any training: run them without a new interpreter."""
    with pytest.raises(SystemExit) as info:
        train.main(["--task", "cifar10", *args])
    return info.value.code, capsys.readouterr().err


def test_malformed_architecture_file(cifar10_dir, tmp_path, capsys):
    data = json.loads(NAMED_CONV_NETS["skip15"].to_json())
    data["layers"][3]["inputs"] = [1, 5]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, err = run_in_process(capsys, "--arch", str(bad), "--data-dir", str(cifar10_dir))
    assert code == 2
    assert "layers[3].inputs" in err and "forward reference" in err


def test_missing_data_names_file_and_place(tmp_path, capsys):
    code, err = run_in_process(
        capsys, "--arch", "skip15", "--data-dir", str(tmp_path), "--variant", "jpeg"
    )
    assert code == 2
    assert "cifar10_small_jpeg.npz" in err and str(tmp_path) in err


def test_malformed_data_file(tmp_path, capsys):
    np.savez(tmp_path / "cifar10_small.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8))
    code, err = run_in_process(capsys, "--arch", "skip15", "--data-dir", str(tmp_path))
    assert code == 2 and "lacks 'y_train', 'x_test', 'y_test'" in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--lr", "-1"], "lr must be > 0"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--lr-schedule", "step"], "invalid choice: 'step'"),
        (["--valid-size", "0"], "validation size must be an integer in 1..3659"),
    ],
)
def test_bad_options_exit_2(cifar10_dir, capsys, args, fragment):
    code, err = run_in_process(capsys, "--arch", "skip15", "--data-dir", str(cifar10_dir), *args)
    assert code == 2 and fragment in err


def test_ptb_still_dispatches_to_its_own_options(capsys):
    with pytest.raises(SystemExit) as info:
        train.main(["--task", "ptb", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "--bptt" in out and "cifar10" in out
    with pytest.raises(SystemExit):
        train.main(["--task", "cifar10", "--help"])
    out = capsys.readouterr().out
    assert "--augment" in out and "--bptt" not in out
