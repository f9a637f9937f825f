import subprocess
import sys

import pytest
import torch

import pynas.export as export
from pynas.arch import NAMED_CELLS
from pynas.children.language_model import CellLanguageModel


def test_build_model_is_a_plain_module():
    model = export.build_model("nas_cell", task="ptb", vocab_size=30, hidden_size=8)
    assert isinstance(model, CellLanguageModel) and isinstance(model, torch.nn.Module)
    assert model.arch == NAMED_CELLS["nas_cell"]


def test_save_then_load_in_a_fresh_process_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = export.build_model(NAMED_CELLS["nas_cell"], task="ptb", vocab_size=30, hidden_size=8)
    with torch.no_grad():  # make the weights differ from a fresh init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    tokens = torch.randint(0, 30, (6, 2))
    expected, _ = model(tokens, model.init_state(2))
    path = tmp_path / "model.pt"
    export.save_model(model, path)
    torch.save(tokens, tmp_path / "tokens.pt")
    script = (
        "import sys, torch, pynas.export as e\n"
        "m = e.load_model(sys.argv[1])\n"
        "t = torch.load(sys.argv[2])\n"
        "out, _ = m(t, m.init_state(t.shape[1]))\n"
        "torch.save(out, sys.argv[3])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "tokens.pt"), str(tmp_path / "o")],
        check=True, timeout=120,
    )  # fmt: skip
    torch.testing.assert_close(torch.load(tmp_path / "o"), expected, rtol=0, atol=0)


def test_load_refuses_foreign_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a pynas model file"):
        export.load_model(path)


def test_save_needs_a_built_model(tmp_path):
    with pytest.raises(ValueError, match="build_model"):
        export.save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_baseline_builds_saves_and_loads(tmp_path, kind):
    from pynas.children.baseline_rnn import RNNLanguageModel

    torch.manual_seed(0)
    model = export.build_model(kind, task="ptb", vocab_size=30, hidden_size=8, num_layers=2)
    assert isinstance(model, RNNLanguageModel) and model.kind == kind
    model.eval()
    tokens = torch.randint(0, 30, (6, 2))
    expected, _ = model(tokens, model.init_state(2))
    export.save_model(model, tmp_path / "model.pt")
    loaded = export.load_model(tmp_path / "model.pt")
    assert isinstance(loaded, RNNLanguageModel) and loaded.kind == kind
    got, _ = loaded(tokens, loaded.init_state(2))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_a_baseline_refuses_the_tree_cell_options_and_other_tasks():
    with pytest.raises(ValueError, match="impl applies to tree cells"):
        export.build_model("lstm", task="ptb", vocab_size=30, hidden_size=8, impl="fused")
    with pytest.raises(ValueError, match="baseline of the PTB language models"):
        export.build_model("gru", task="cifar10")
