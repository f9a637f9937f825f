"""CIFAR-10 loading: the split, normalisation, augmentation and clear data errors."""

import numpy as np
import pytest
import torch

from pynas.tasks.cifar10.dataset import VARIANTS, augment, load_cifar10, stratified_split
from pynas.tasks.data import DataError


@pytest.fixture(scope="module")
def small(cifar10_dir):
    return load_cifar10(cifar10_dir)


def test_small_set_sizes_and_stratified_validation(small, cifar10_dir):
    assert (len(small.train), len(small.valid), len(small.test)) == (3160, 500, 860)
    assert small.image_shape == (3, 32, 32)
    assert torch.bincount(small.valid.labels, minlength=10).tolist() == [50] * 10
    assert torch.bincount(small.train.labels, minlength=10).tolist() == [316] * 10
    assert small.source == cifar10_dir / "cifar10_small.npz"
    assert small.train.images.dtype == torch.float32


def test_validation_is_held_out_from_train_not_test(cifar10_dir, small):
    raw = np.load(cifar10_dir / "cifar10_small.npz")

    def pixels(split):  # back to uint8 bytes, one key per image
        mean = torch.tensor(small.mean).view(1, 3, 1, 1)
        std = torch.tensor(small.std).view(1, 3, 1, 1)
        x = ((split.images * std + mean) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        return {bytes(v.numpy().tobytes()) for v in x}

    everything = {v.tobytes() for v in raw["x_train"]}
    tests = {v.tobytes() for v in raw["x_test"]}
    train, valid = pixels(small.train), pixels(small.valid)
    assert len(train) == 3160 and len(valid) == 500
    assert not train & valid
    assert train | valid == everything
    assert not valid & tests


def test_normalisation_uses_the_training_part(small):
    per_channel = small.train.images.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1), torch.ones(3), atol=1e-3, rtol=0)
    assert 0.4 < small.mean[0] < 0.55 and 0.2 < small.std[0] < 0.3


def test_split_depends_on_seed_and_size():
    labels = np.repeat(np.arange(10), 37)
    a_train, a_valid = stratified_split(labels, 55, seed=0)
    b_train, b_valid = stratified_split(labels, 55, seed=0)
    c_train, c_valid = stratified_split(labels, 55, seed=1)
    assert np.array_equal(a_valid, b_valid) and not np.array_equal(a_valid, c_valid)
    assert len(a_valid) == 55 and len(a_train) == 370 - 55
    assert sorted(np.concatenate([a_train, a_valid]).tolist()) == list(range(370))
    counts = np.bincount(labels[a_valid], minlength=10)
    assert counts.min() == 5 and counts.max() == 6


def test_augment_is_a_shifted_crop_or_its_mirror():
    images = torch.randn(16, 3, 8, 8)
    out = augment(images, torch.Generator().manual_seed(3), pad=2)
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    flips = 0
    for k in range(16):
        crops = [padded[k, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        plain = any(torch.equal(out[k], c) for c in crops)
        mirrored = any(torch.equal(out[k], c.flip(-1)) for c in crops)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 0 < flips < 16
    again = augment(images, torch.Generator().manual_seed(3), pad=2)
    assert torch.equal(out, again)


def write_npz(path, **arrays):
    base = {
        "x_train": np.zeros((20, 32, 32, 3), np.uint8),
        "y_train": np.arange(20) % 10,
        "x_test": np.zeros((10, 32, 32, 3), np.uint8),
        "y_test": np.arange(10),
    }
    base.update(arrays)
    np.savez(path / "cifar10_small.npz", **{k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    "arrays, fragments",
    [
        ({"y_test": None}, ["lacks 'y_test'", "x_train, y_train, x_test, y_test"]),
        ({"x_train": np.zeros((20, 32, 32), np.uint8)}, ["'x_train'", "(N, height, width, 3)"]),
        ({"x_test": np.zeros((10, 3, 32, 32), np.uint8)}, ["'x_test'", "(10, 3, 32, 32)"]),
        ({"x_train": np.zeros((20, 32, 32, 3), np.float32)}, ["'x_train'", "uint8", "float32"]),
        ({"y_train": np.arange(19)}, ["'y_train'", "(20,)", "one label per image"]),
        ({"y_train": np.arange(20) * 1.0}, ["'y_train'", "integer class ids"]),
        ({"y_test": np.arange(10) + 1}, ["'y_test'", "1..10", "0..9"]),
        ({"x_test": np.zeros((10, 16, 16, 3), np.uint8), "y_test": np.arange(10)}, ["test images"]),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path, arrays, fragments):
    write_npz(tmp_path, **arrays)
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, valid_size=5)
    message = str(info.value)
    assert "cifar10_small.npz" in message
    for fragment in fragments:
        assert fragment in message


def test_a_well_formed_synthetic_file_loads(tmp_path):
    write_npz(tmp_path)
    data = load_cifar10(tmp_path, valid_size=10)
    assert len(data.train) == 10 and len(data.valid) == 10
    assert torch.isfinite(data.train.images).all()  # constant images: std guarded


def test_not_an_npz(tmp_path):
    (tmp_path / "cifar10_small.npz").write_text("not a zip archive")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_cifar10(tmp_path)


def test_missing_file_names_the_file_and_the_directory(tmp_path):
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, variant="jpeg")
    assert VARIANTS["jpeg"] in str(info.value) and str(tmp_path) in str(info.value)


def test_missing_directory_and_environment(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tmp_path / "nowhere")
    monkeypatch.delenv("PYNAS_DATA", raising=False)
    with pytest.raises(DataError, match="PYNAS_DATA"):
        load_cifar10(None)


def test_environment_variable_may_point_at_the_parent(cifar10_dir, monkeypatch):
    monkeypatch.setenv("PYNAS_DATA", str(cifar10_dir.parent))
    assert load_cifar10(None, valid_size=100).source == cifar10_dir / "cifar10_small.npz"


def test_bad_variant_and_validation_size(cifar10_dir):
    with pytest.raises(DataError, match="unknown CIFAR-10 variant 'png'"):
        load_cifar10(cifar10_dir, variant="png")
    with pytest.raises(DataError, match=r"validation size must be an integer in 1\.\.3659"):
        load_cifar10(cifar10_dir, valid_size=3660)
