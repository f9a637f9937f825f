"""Training a CNN child on CIFAR-10: reward, learning, recorded failures."""

import pytest

from pynas.arch import ConvNet
from pynas.children.conv_net import ConvChild, count_parameters
from pynas.tasks.cifar10 import CIFAR10Config, load_cifar10, reward_from_accuracies, train_child

TINY = CIFAR10Config(epochs=2, batch_size=32, train_images=192, valid_images=100)
SMALL_NET = ConvNet.from_dict(
    {
        "kind": "conv_net",
        "layers": [
            {"fh": 3, "fw": 3, "filters": 24, "stride": 1, "inputs": []},
            {"fh": 3, "fw": 3, "filters": 24, "stride": 2, "inputs": [0]},
            {"fh": 3, "fw": 3, "filters": 36, "stride": 2, "inputs": [1]},
            {"fh": 1, "fw": 1, "filters": 36, "stride": 1, "inputs": [1, 2]},
        ],
    }
)


@pytest.fixture(scope="module")
def data(cifar10_dir):
    return load_cifar10(cifar10_dir)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_child_trains_and_scores(data):
    epochs = []
    result = train_child(SMALL_NET, TINY, data, on_epoch=lambda e, a: epochs.append((e, a)))
    assert result.ok, result.reason
    m = result.metrics
    assert len(m["epoch_accuracy"]) == 2 and [e for e, _ in epochs] == [1, 2]
    assert [a for _, a in epochs] == m["epoch_accuracy"]
    assert all(0 <= a <= 1 for a in m["epoch_accuracy"])
    assert m["accuracy"] == max(m["epoch_accuracy"])
    assert result.reward == pytest.approx(m["accuracy"] ** 3)
    assert m["params"] == count_parameters(ConvChild(SMALL_NET))
    assert m["train_images_per_second"] > 0 and "test_accuracy" not in m
    assert all(a * 100 == int(a * 100) for a in m["epoch_accuracy"])  # 100 validation images


def test_reward_window_and_exponent():
    config = CIFAR10Config(reward_epochs=5, reward_exponent=3.0)
    accs = [0.9, 0.2, 0.3, 0.5, 0.4, 0.45, 0.1]
    assert reward_from_accuracies(accs, config) == pytest.approx(0.5**3)  # 0.9 is too early
    assert reward_from_accuracies([0.6], config) == pytest.approx(0.216)
    squared = config.with_(reward_exponent=2.0, reward_epochs=2)
    assert reward_from_accuracies(accs, squared) == pytest.approx(0.45**2)


def test_training_is_far_above_chance(data):
    config = CIFAR10Config(
        epochs=3, batch_size=32, train_images=1200, valid_images=300, augment=True, test=True
    )
    result = train_child(SMALL_NET, config, data)
    assert result.ok, result.reason
    assert result.metrics["accuracy"] > 0.25  # chance is 0.10
    assert result.metrics["test_accuracy"] > 0.2
    assert result.metrics["train_loss"][-1] < result.metrics["train_loss"][0]


def test_same_seed_same_result(data):
    a = train_child(SMALL_NET, TINY.with_(epochs=1), data)
    b = train_child(SMALL_NET, TINY.with_(epochs=1), data)
    assert a.metrics["epoch_accuracy"] == b.metrics["epoch_accuracy"]
    assert a.metrics["train_loss"] == b.metrics["train_loss"]


def test_nan_loss_is_a_recorded_failure(data, monkeypatch):
    original = ConvChild.forward

    def poisoned(self, images):
        return original(self, images) * float("nan")

    monkeypatch.setattr(ConvChild, "forward", poisoned)
    result = train_child(SMALL_NET, TINY, data)
    assert result.status == "failed" and result.reward == 0.0
    assert "non-finite training loss" in result.reason and "epoch 1" in result.reason
    assert result.to_dict()["metrics"]["params"] > 0


def test_crash_inside_child_is_a_recorded_failure(data, monkeypatch):
    def boom(self, images):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(ConvChild, "forward", boom)
    result = train_child(SMALL_NET, TINY, data)
    assert result.status == "failed" and "simulated out of memory" in result.reason
    assert "traceback" in result.metrics


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
        ({"concat": "gpu"}, "concat must be one of"),
        ({"train_images": 0}, "train_images must be None or an integer >= 1"),
        ({"reward_exponent": -1.0}, "reward_exponent must be > 0"),
    ],
)
def test_bad_config_is_rejected(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        CIFAR10Config(**changes)
