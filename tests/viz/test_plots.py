"""The PNGs of pynas.viz: non-empty, with the parts they promise."""

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from pynas.arch import NAMED_CELLS, NAMED_CONV_NETS, ConvNet  # noqa: E402
from pynas.viz.cell import C_COLOR, INJECT, draw_cell  # noqa: E402
from pynas.viz.conv_net import draw_conv_net  # noqa: E402
from pynas.viz.curves import plot_entropy, plot_rewards  # noqa: E402


def pixels_like(path, hex_color, tol=0.03):
    image = imread(path)[..., :3]
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return int((np.abs(image - rgb).sum(-1) < tol).sum())


def test_cell_drawing_shows_inject_and_c_out(tmp_path):
    cell = NAMED_CELLS["nas_cell"]
    for name, variant in {
        "paper": cell,
        "root": replace(cell, inject_at=cell.root, c_out=cell.root),
        "leaf": replace(cell, inject_at=5, c_out=5),
    }.items():
        path = tmp_path / f"{name}.png"
        draw_cell(variant, path, name)
        assert pixels_like(path, INJECT) > 100  # the inject box
        assert pixels_like(path, C_COLOR, tol=0.1) > 50  # the c_out outline and c_t arrow


def test_small_and_large_bases_draw(tmp_path):
    two = replace(NAMED_CELLS["nas_cell"], base=2, nodes=(("add", "tanh"),) * 3, c_out=2,
                  inject_at=0)  # fmt: skip
    draw_cell(two, tmp_path / "two.png")
    assert imread(tmp_path / "two.png").shape[1] >= 700


def test_conv_net_drawing(tmp_path):
    net = NAMED_CONV_NETS["skip15"]
    draw_conv_net(net, tmp_path / "net.png")
    image = imread(tmp_path / "net.png")
    assert image.shape[1] > 2000  # fifteen layers in a row
    assert pixels_like(tmp_path / "net.png", "#7c3aed", tol=0.15) > 50  # skip connections
    one = ConvNet.from_dict({"layers": [{"fh": 3, "fw": 3, "filters": 24, "stride": 1,
                                         "inputs": []}]})  # fmt: skip
    draw_conv_net(one, tmp_path / "one.png")
    assert imread(tmp_path / "one.png")[..., :3].std() > 0.05


def test_reward_plot_draws_what_the_log_has(tmp_path):
    recs = [{"index": i, "reward": (i % 5) / 10, "status": "ok" if i % 7 else "failed",
             "baseline": None if i < 4 else 0.2} for i in range(20)]  # fmt: skip
    assert plot_rewards(recs, tmp_path / "r.png") == []
    assert pixels_like(tmp_path / "r.png", "#ff7f0e", tol=0.1) > 50  # baseline (tab:orange)
    notes = plot_rewards([{**r, "baseline": None} for r in recs], tmp_path / "r2.png")
    assert len(notes) == 1 and "no baseline" in notes[0]
    assert pixels_like(tmp_path / "r2.png", "#ff7f0e", tol=0.1) == 0


def test_entropy_plot_needs_entropy(tmp_path):
    assert not plot_entropy([{"index": 0, "reward": 1.0}], tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()
    recs = [{"index": i, "entropy": 10 - i / 10} for i in range(30)]
    assert plot_entropy(recs, tmp_path / "e.png")
    assert imread(tmp_path / "e.png")[..., :3].std() > 0.05
