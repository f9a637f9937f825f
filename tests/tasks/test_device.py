"""Children train on their configured device: parsing, the checks, and where tensors go.

This machine has no GPU and a CPU-only torch: the CUDA path is tested by its refusals (each names
the problem and the fix) and, with CUDA pretended (tensors sent to ``cuda`` stay on the CPU and
every such request is recorded), by checking that the model, the data and the evaluation all
went to the configured device.
"""

import pytest
import torch

import pynas.tasks.cifar10.training as cifar10
import pynas.tasks.ptb.training as ptb
from pynas.arch import NAMED_CELLS, ConvNet
from pynas.tasks.cifar10 import CIFAR10Config, load_cifar10
from pynas.tasks.device import DeviceError, check_device, cuda_kernel_missing, parse_device
from pynas.tasks.ptb import PTBConfig, load_corpus

PTB_TINY = PTBConfig(hidden=8, batch_size=4, bptt=8, train_tokens=600, valid_tokens=300,
                     eval_batch_size=4)  # fmt: skip
CIFAR_TINY = CIFAR10Config(epochs=1, batch_size=16, train_images=32, valid_images=20)
SKIP = ConvNet.from_dict({"kind": "conv_net", "layers": [  # small, with a skip connection
    {"fh": 3, "fw": 3, "filters": 4, "stride": 2, "inputs": []},
    {"fh": 3, "fw": 3, "filters": 4, "stride": 2, "inputs": [0]},
    {"fh": 1, "fw": 1, "filters": 4, "stride": 1, "inputs": [0, 1]},
]})  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:12"])
def test_well_formed_devices(name):
    assert parse_device(name) == name


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cpu:0", "cuda:", "cuda:x", " cuda", "", None, 1])
def test_malformed_devices_are_refused_with_the_choices(name):
    with pytest.raises(DeviceError, match=r"cpu \(default\), cuda .* or cuda:N"):
        parse_device(name)
    with pytest.raises(ValueError, match="device must be"):
        PTBConfig(device=name)
    with pytest.raises(ValueError, match="device must be"):
        CIFAR10Config(device=name)


def test_cpu_is_always_usable():
    assert check_device("cpu", ("tree_cell_seq", "skip_concat")) == torch.device("cpu")


@pytest.mark.skipif(torch.version.cuda is not None, reason="needs a CPU-only build of torch")
def test_cuda_on_a_cpu_only_torch_names_problem_and_fix():
    with pytest.raises(DeviceError) as info:
        check_device("cuda")
    message = str(info.value)
    assert "CPU-only build" in message and "--device cpu" in message
    assert "CUDA build of torch" in message


def _pretend_cuda_runtime(monkeypatch, gpus=1):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)


def test_no_visible_gpu_and_index_out_of_range(monkeypatch):
    _pretend_cuda_runtime(monkeypatch, gpus=0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceError, match="no CUDA GPU is visible.*CUDA_VISIBLE_DEVICES=''"):
        check_device("cuda")
    _pretend_cuda_runtime(monkeypatch, gpus=2)
    with pytest.raises(DeviceError, match=r"only 2 CUDA GPU\(s\).*cuda:0..cuda:1"):
        check_device("cuda:2")
    assert check_device("cuda:1") == torch.device("cuda:1")  # no compiled op asked for


@pytest.mark.skipif(
    bool(torch.version.cuda) and not cuda_kernel_missing(["tree_cell_seq"]),
    reason="this build of pynas has CUDA kernels",
)
def test_a_cpu_only_build_of_pynas_refuses_cuda_for_the_compiled_ops(monkeypatch):
    """The ops' CUDA kernels exist only where nvcc was found at build time: say so, and how."""
    assert cuda_kernel_missing(["tree_cell_seq", "skip_concat"]) == [
        "tree_cell_seq", "skip_concat",
    ]  # fmt: skip
    _pretend_cuda_runtime(monkeypatch)
    with pytest.raises(DeviceError) as info:
        ptb.child_device(PTBConfig(device="cuda"))
    message = str(info.value)
    assert "pynas::tree_cell_seq" in message and "without CUDA kernels" in message
    assert "nvcc" in message and "--device cpu" in message and "--impl reference" in message
    with pytest.raises(DeviceError, match=r"pynas::skip_concat.*--concat reference"):
        cifar10.child_device(CIFAR10Config(device="cuda"))
    # the pure-PyTorch paths need no compiled kernel
    assert ptb.child_device(PTBConfig(device="cuda", impl="reference")).type == "cuda"
    assert cifar10.child_device(CIFAR10Config(device="cuda", concat="reference")).type == "cuda"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_a_child_asked_for_cuda_here_fails_with_the_reason(ptb_dir):
    """Where the command line cannot check (a Ray node), the child refuses: a record, no crash."""
    result = ptb.train_child(NAMED_CELLS["nas_cell"], PTB_TINY.with_(device="cuda"),
                             load_corpus(ptb_dir))  # fmt: skip
    assert result.status == "failed" and "DeviceError" in result.reason
    assert "--device cpu" in result.reason


# ----- where the tensors go ---------------------------------------------------------------------
class DeviceLog:
    """Records the tensors seen by a model's forward: parameters, inputs, the carried state."""

    def __init__(self, model):
        self.seen: list[tuple[str, torch.Tensor]] = []
        model.register_forward_pre_hook(self.hook, with_kwargs=True)
        self.model = model

    def hook(self, module, args, kwargs):
        self.seen += [("param", p) for p in module.parameters()]
        self.seen.append(("input", args[0]))
        if len(args) > 1:  # the language model's state: [(h, c) per layer]
            self.seen += [("state", t) for pair in args[1] for t in pair]


def test_cpu_child_keeps_model_data_and_state_on_the_cpu(ptb_dir, cifar10_dir):
    corpus = load_corpus(ptb_dir)
    logs = []

    def build_lm():
        model = ptb.CellLanguageModel(NAMED_CELLS["nas_cell"], corpus.vocab_size, 8)
        logs.append(DeviceLog(model))
        return model

    result, model = ptb.train_model(NAMED_CELLS["nas_cell"], PTB_TINY.with_(device="cpu"), corpus,
                                    build=build_lm)  # fmt: skip
    assert result.ok and next(model.parameters()).device == torch.device("cpu")
    kinds = {kind for kind, _ in logs[0].seen}
    assert kinds == {"param", "input", "state"}
    assert {t.device for _, t in logs[0].seen} == {torch.device("cpu")}

    data = load_cifar10(cifar10_dir)

    def build_cnn():
        model = cifar10.ConvChild(SKIP, 10, 3)
        logs.append(DeviceLog(model))
        return model

    result, model = cifar10.train_model(SKIP, CIFAR_TINY.with_(device="cpu"), data,
                                        build=build_cnn)  # fmt: skip
    assert result.ok and next(model.parameters()).device == torch.device("cpu")
    assert {t.device for _, t in logs[1].seen} == {torch.device("cpu")}


@pytest.fixture
def pretend_cuda(monkeypatch):
    """`cuda` accepted by the checks; `.to(cuda)` keeps a tensor on the CPU and marks it."""

    def accept(device, ops=(), fallback=""):
        return torch.device(device)

    monkeypatch.setattr(ptb, "check_device", accept)
    monkeypatch.setattr(cifar10, "check_device", accept)
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
            args = tuple("cpu" if a is target else a for a in args)
            kwargs = {k: ("cpu" if v is target else v) for k, v in kwargs.items()}
            moved = original(self, *args, **kwargs)
            moved.sent_to = str(target)
            return moved
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)


def _sent_to(t):
    """Where `t` (or the tensor it is a view of) was sent with .to, if anywhere."""
    return getattr(t, "sent_to", None) or getattr(t._base, "sent_to", None)


def test_ptb_child_sends_model_data_and_evaluation_to_its_device(ptb_dir, pretend_cuda):
    corpus = load_corpus(ptb_dir)
    logs = []

    def build():
        cell = NAMED_CELLS["nas_cell"]
        model = ptb.CellLanguageModel(cell, corpus.vocab_size, 8, impl="reference")
        logs.append(DeviceLog(model))
        return model

    config = PTB_TINY.with_(device="cuda:1", impl="reference")
    result, model = ptb.train_model(NAMED_CELLS["nas_cell"], config, corpus, build=build)
    assert result.ok, result.reason
    seen = logs[0].seen
    params = [t for kind, t in seen if kind == "param"]
    inputs = [t for kind, t in seen if kind == "input"]
    assert params and all(_sent_to(p) == "cuda:1" for p in params)
    assert all(p.sent_to == "cuda:1" for p in model.parameters())
    # training windows and validation windows: views of streams that were sent to the device
    assert len(inputs) > 2 and all(_sent_to(t) == "cuda:1" for t in inputs)
    # (the carried state starts as zeros made next to the weights: init_state uses new_zeros)


def test_cifar10_child_sends_model_data_and_evaluation_to_its_device(
    cifar10_dir, pretend_cuda, monkeypatch
):
    data = load_cifar10(cifar10_dir)
    sent_splits = []
    original_to = cifar10.Split.to

    def split_to(self, device):
        sent_splits.append((len(self), str(device)))
        return original_to(self, device)

    logs = []

    def build():
        model = cifar10.ConvChild(SKIP, 10, 3, concat="reference")
        logs.append(DeviceLog(model))
        return model

    monkeypatch.setattr(cifar10.Split, "to", split_to)
    config = CIFAR_TINY.with_(device="cuda", concat="reference", test=True, augment=True)
    result, model = cifar10.train_model(SKIP, config, data, build=build)
    assert result.ok, result.reason
    assert all(p.sent_to == "cuda" for p in model.parameters())
    # the training and validation images go to the configured device before training ...
    assert [s for s in sent_splits if s[1] == "cuda"] == [(32, "cuda"), (20, "cuda")]
    # ... and evaluation (here: the test accuracy) moves its split to the model's device, which
    # under this pretence is the CPU
    assert (len(data.test), "cpu") in sent_splits
    params = [t for kind, t in logs[0].seen if kind == "param"]
    assert all(_sent_to(p) == "cuda" for p in params)
