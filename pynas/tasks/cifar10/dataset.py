"""CIFAR-10 from `.npz` files: loading with clear errors, a held-out validation split, tensors.

The files (see the data folder's SOURCE.md) hold ``x_train`` [N, H, W, 3] uint8 (RGB, HWC),
``y_train`` [N] integer labels 0..9, and ``x_test`` / ``y_test`` in the same form. The validation
split is drawn from the training split, stratified by class, with a fixed seed; normalisation
uses the per-channel mean and standard deviation of the remaining training images only.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pynas.tasks.data import DataError, require_files, resolve_data_dir

NAME = "cifar10"  # the task's name
NUM_CLASSES = 10
# full: all of CIFAR-10, made by `python -m pynas.data fetch cifar10 --dest DIR`
VARIANTS: dict[str, str] = {
    "small": "cifar10_small.npz",
    "jpeg": "cifar10_small_jpeg.npz",
    "full": "cifar10_full.npz",
}
KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Split:
    """Normalised images [N, 3, H, W] float32 and labels [N] int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> Split:
        """The first `n` examples (all if None)."""
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n], self.labels[:n])

    def to(self, device: torch.device | str) -> Split:
        """The split on `device` (itself if already there)."""
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class CifarData:
    train: Split
    valid: Split
    test: Split
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: Path

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return (int(c), int(h), int(w))


def _check_images(name: str, x: np.ndarray, path: Path) -> None:
    if x.ndim != 4 or x.shape[3] != 3 or x.shape[1] < 1 or x.shape[2] < 1:
        raise DataError(
            f"{path}: '{name}' must have shape (N, height, width, 3) (RGB, channels last), "
            f"got {x.shape}"
        )
    if x.dtype != np.uint8:
        raise DataError(f"{path}: '{name}' must have dtype uint8 (pixels 0..255), got {x.dtype}")


def _check_labels(name: str, y: np.ndarray, count: int, path: Path) -> None:
    if y.ndim != 1 or y.shape[0] != count:
        raise DataError(
            f"{path}: '{name}' must have shape ({count},) (one label per image), got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: '{name}' must hold integer class ids, got dtype {y.dtype}")
    if count and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise DataError(
            f"{path}: '{name}' holds labels {int(y.min())}..{int(y.max())}; "
            f"CIFAR-10 labels are 0..{NUM_CLASSES - 1}"
        )


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of a CIFAR-10 `.npz`, checked; DataError if anything is wrong."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path} lacks {', '.join(repr(k) for k in missing)}; a CIFAR-10 .npz holds "
                    f"{', '.join(KEYS)} (it has {', '.join(npz.files) or 'nothing'})"
                )
            arrays = {k: npz[k] for k in KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})"
        ) from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        _check_images(f"x_{split}", x, path)
        _check_labels(f"y_{split}", y, x.shape[0], path)
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(
            f"{path}: train images are {arrays['x_train'].shape[1:]} but test images are "
            f"{arrays['x_test'].shape[1:]}"
        )
    if arrays["x_train"].shape[0] < 2:
        raise DataError(f"{path}: 'x_train' has {arrays['x_train'].shape[0]} images; need >= 2")
    return arrays


def stratified_split(
    labels: np.ndarray, valid_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): `valid_size` examples drawn per class in proportion.

    Each class gives floor(valid_size · n_c / n) examples; the remainder goes to the classes with
    the largest fractional shares (ties: lower class id). Both index arrays are in random order.
    """
    n = labels.shape[0]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = valid_size * counts / n
    quota = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - quota), kind="stable")[: valid_size - quota.sum()]:
        quota[k] += 1
    take = np.zeros(n, dtype=bool)
    for c, q in zip(classes, quota, strict=True):
        members = perm[labels[perm] == c]
        take[members[:q]] = True
    valid = perm[take[perm]]
    train = perm[~take[perm]]
    return train, valid


def _to_tensor(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    scaled = (x.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(0, 3, 1, 2)))


def load_cifar10(
    data_dir: str | os.PathLike[str] | None = None,
    variant: str = "small",
    valid_size: int = 500,
    seed: int = 0,
) -> CifarData:
    """Load a CIFAR-10 variant (`small`: cifar10_small.npz, `jpeg`: cifar10_small_jpeg.npz,
    `full`: cifar10_full.npz, which ``python -m pynas.data fetch cifar10`` makes).

    `data_dir` wins, else $PYNAS_DATA (the folder itself or a parent with `cifar10/`).
    `valid_size` training images (stratified, fixed `seed`) are held out for validation.
    """
    if variant not in VARIANTS:
        raise DataError(f"unknown CIFAR-10 variant {variant!r}; choose one of {sorted(VARIANTS)}")
    directory = resolve_data_dir(data_dir, NAME)
    if variant == "full" and not (directory / VARIANTS[variant]).is_file():
        raise DataError(
            f"{directory / VARIANTS[variant]} does not exist: fetch the full CIFAR-10 with "
            f"`python -m pynas.data fetch cifar10 --dest {directory}` (a 163 MB download, "
            "checksum verified)"
        )
    (path,) = require_files(directory, [VARIANTS[variant]], NAME)
    arrays = load_arrays(path)
    x_train, y_train = arrays["x_train"], arrays["y_train"].astype(np.int64)
    n = x_train.shape[0]
    if isinstance(valid_size, bool) or not isinstance(valid_size, int) or not 1 <= valid_size < n:
        raise DataError(
            f"validation size must be an integer in 1..{n - 1} for {path.name} "
            f"({n} training images), got {valid_size!r}"
        )
    train_idx, valid_idx = stratified_split(y_train, valid_size, seed)
    fit = x_train[train_idx].astype(np.float64) / 255.0
    mean = fit.mean(axis=(0, 1, 2)).astype(np.float32)
    std = fit.std(axis=(0, 1, 2)).astype(np.float32)
    std = np.where(std > 0, std, 1.0).astype(np.float32)  # a constant channel stays finite

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(_to_tensor(x, mean, std), torch.from_numpy(y.astype(np.int64)))

    return CifarData(
        train=split(x_train[train_idx], y_train[train_idx]),
        valid=split(x_train[valid_idx], y_train[valid_idx]),
        test=split(arrays["x_test"], arrays["y_test"]),
        mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        source=path,
    )


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Standard CIFAR augmentation of a batch: random crop after zero-padding by `pad` pixels
    (zero = the training mean, as images are normalised), then a random horizontal flip.

    The random draws come from `generator` (a CPU generator) whatever the images' device, so a
    GPU child sees the same crops and flips as a CPU one."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # [n, 1, h, 1]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # [n, 1, 1, w]
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(c)[None, :, None, None]
    device = images.device
    return padded[batch.to(device), channel.to(device), rows.to(device), cols.to(device)]
