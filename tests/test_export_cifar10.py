"""Export of CNN children: build_model(task="cifar10"), save, load in a fresh process."""

import subprocess
import sys

import torch

import pynas
import pynas.export as export
from pynas.arch import NAMED_CONV_NETS, ConvNet
from pynas.children.conv_net import ConvChild

NET = ConvNet.from_dict(
    {"layers": [
        {"fh": 3, "fw": 5, "filters": 24, "stride": 1, "inputs": []},
        {"fh": 3, "fw": 3, "filters": 24, "stride": 2, "inputs": [0]},
        {"fh": 1, "fw": 3, "filters": 36, "stride": 1, "inputs": [0, 1], "pool": "max"},
    ]}
)  # fmt: skip


def test_build_model_for_cifar10_is_the_cnn_child():
    model = pynas.build_model(NET, task="cifar10", bn_eps=1e-3, bn_momentum=0.01)
    assert isinstance(model, ConvChild) and model.arch == NET
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 3 and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    named = pynas.build_model("skip15", task="cifar10")
    assert named.arch == NAMED_CONV_NETS["skip15"]
    from_json = pynas.build_model(NET.to_json(), task="cifar10", num_classes=4)
    assert from_json.arch == NET and from_json.classifier.out_features == 4


def test_cnn_save_then_load_in_a_fresh_process_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = pynas.build_model(NET, task="cifar10", bn_eps=1e-3)
    model.train()
    with torch.no_grad():  # running statistics and weights that differ from a fresh init
        model(torch.randn(8, 3, 32, 32) * 2 + 1)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    images = torch.randn(4, 3, 32, 32)
    expected = model(images)
    path = tmp_path / "cnn.pt"
    pynas.save_model(model, path)
    torch.save(images, tmp_path / "images.pt")
    script = (
        "import sys, torch, pynas\n"
        "m = pynas.load_model(sys.argv[1])\n"
        "torch.save(m(torch.load(sys.argv[2])), sys.argv[3])\n"
    )
    out = tmp_path / "out.pt"
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "images.pt"), str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    torch.testing.assert_close(torch.load(out), expected, rtol=0, atol=0)
    loaded = export.load_model(path)
    assert all(m.eps == 1e-3 for m in loaded.modules() if isinstance(m, torch.nn.BatchNorm2d))
