"""Fetch the standard CIFAR-10 and convert it to the ``.npz`` layout of ``--variant full``.

The source is Krizhevsky's "CIFAR-10 python version" (``cifar-10-python.tar.gz``, MD5 published
on https://www.cs.toronto.edu/~kriz/cifar.html). The archive is streamed to a hidden part file
next to the destination while its MD5 is computed; only a matching archive is opened. Its six
pickled batches (``data_batch_1..5``, ``test_batch``) are read with an unpickler that admits
nothing but the numpy arrays and plain containers they hold, and become ``x_train`` [50000, 32,
32, 3] uint8 (RGB, channels last), ``y_train`` [50000] int64, ``x_test``, ``y_test``, written to a
part file, checked by the same loader the task uses, and only then renamed into place. Whatever
fails, the part files are removed: the destination holds finished files or nothing new.

The development subset ``cifar10_small.npz`` (the default variant) is a fixed selection of the
official images; it is cut from the archive too and written only if its arrays have exactly the
published SHA-256, so that the default CIFAR-10 search runs after this one command.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pynas.io import replacing
from pynas.tasks.cifar10.dataset import KEYS, NUM_CLASSES, VARIANTS, load_arrays
from pynas.tasks.data import DataError, FetchError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # "CIFAR-10 python version" on that page
CIFAR10_FILE = VARIANTS["full"]
# The development subset cifar10_small.npz: (pool, per class) for train and test, and the SHA-256
# of its arrays' bytes (from its SOURCE.md), so a subset made here is the published one exactly.
SMALL_TRAIN, SMALL_TEST = (4000, 366), (1000, 86)
SMALL_SHA256 = {
    "x_train": "2713a18d0f9c1ba28d52b55b91490666353e3ca6873f4660ff4d5cf85de28501",
    "y_train": "9278425856262c936de8027a12544dea49cc75b190aac67e3222308bf9106d5e",
    "x_test": "466424927da8586efcd8c2b94abe3f6d3a3eb0c1e01d2b29fba125351f0be1a0",
    "y_test": "c0cb3992412650f8c9cc12a68a9c9f89ee39eb94841d5b584495101fc9efa6e9",
}
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_CHUNK = 1 << 20


def _download(url: str, dest: Path, say: Callable[[str], None]) -> str:
    """Stream `url` to `dest`; the MD5 of what was written."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, shown = 0, 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                md5.update(chunk)
                done += len(chunk)
                if total > 10 * _CHUNK and done * 10 // total > shown:
                    shown = done * 10 // total
                    say(f"  {done / 1e6:.0f} / {total / 1e6:.0f} MB")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(
            f"could not download {url}: {exc}; check the address and the network, or download "
            "the archive yourself and pass --url file:///PATH/TO/cifar-10-python.tar.gz"
        ) from None
    return md5.hexdigest()


class _BatchUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR-10 batch holds: numpy arrays, dtypes and plain containers."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles made by Python 3 store bytes
    }  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR-10 batch")
        return super().find_class(module, name)


def _read_batch(archive: tarfile.TarFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, 32, 32, 3] uint8, labels [N] int64) of one pickled batch of the archive."""
    member = next((m for m in archive.getmembers() if m.isfile() and Path(m.name).name == name),
                  None)  # fmt: skip
    if member is None:
        raise FetchError(f"the archive has no {name}; is it the CIFAR-10 python version?")
    handle = archive.extractfile(member)
    assert handle is not None  # a regular file
    try:
        batch = _BatchUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise FetchError(f"{name} in the archive is not a CIFAR-10 batch ({exc})") from None
    data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
    labels = batch.get(b"labels", batch.get("labels")) if isinstance(batch, dict) else None
    data, labels = np.asarray(data), np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise FetchError(f"{name}: 'data' is {data.dtype} {data.shape}, expected uint8 [N, 3072]")
    if labels.shape != (data.shape[0],) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise FetchError(f"{name}: 'labels' do not match the images or are outside 0..9")
    # rows are 1024 red, 1024 green, 1024 blue values, each channel row by row
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_archive(archive_path: Path) -> dict[str, np.ndarray]:
    """The four arrays (KEYS) of the CIFAR-10 python archive at `archive_path`."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            train = [_read_batch(archive, name) for name in TRAIN_BATCHES]
            x_test, y_test = _read_batch(archive, TEST_BATCH)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchError(f"{archive_path} is not a readable .tar.gz archive ({exc})") from None
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }


def _first_per_class(labels: np.ndarray, pool: int, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` images of each class among the first `pool`, in order."""
    seen = np.zeros(NUM_CLASSES, dtype=np.int64)
    keep = []
    for i, label in enumerate(labels[:pool].tolist()):
        if seen[label] < per_class:
            seen[label] += 1
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def small_subset(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The development subset ``cifar10_small.npz`` (its SOURCE.md): the first 366 images of
    each class among data_batch_1's first 4,000, and the first 86 of each class among the test
    batch's first 1,000, in their original order."""
    train = _first_per_class(arrays["y_train"], *SMALL_TRAIN)
    test = _first_per_class(arrays["y_test"], *SMALL_TEST)
    return {
        "x_train": arrays["x_train"][train], "y_train": arrays["y_train"][train],
        "x_test": arrays["x_test"][test], "y_test": arrays["y_test"][test],
    }  # fmt: skip


def _write_npz(arrays: dict[str, np.ndarray], path: Path, compressed: bool) -> None:
    """Write `arrays` to a part file, check it with the task's loader, then move it to `path`."""
    with replacing(path) as part:
        with part.open("wb") as out:
            # the full set uncompressed (photos barely compress), the subset as it was published
            (np.savez_compressed if compressed else np.savez)(out, **{k: arrays[k] for k in KEYS})
        try:
            load_arrays(part)  # the task's own checks, before the file is put in place
        except DataError as exc:
            raise FetchError(f"the converted data fails the task's checks: {exc}") from None


def fetch_cifar10(
    dest: str | os.PathLike[str],
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    say: Callable[[str], None] = print,
) -> Path:
    """Download, verify and convert CIFAR-10 into `dest`: cifar10_full.npz (``--variant full``)
    and cifar10_small.npz (the default variant, when its arrays match the published subset's
    SHA-256); the path of the full file.

    Existing files are kept (delete them to fetch again). FetchError if anything fails, with
    nothing new left behind (`dest` is created if missing, and removed again on failure).
    """
    dest = Path(dest)
    full, small = dest / CIFAR10_FILE, dest / VARIANTS["small"]
    if full.exists() and small.exists():
        say(f"{full} and {small.name} already exist; delete them to fetch again")
        return full
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"--dest {dest} exists and is not a directory")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    archive_part = dest / ".cifar-10-python.tar.gz.part"
    try:
        say(f"downloading {url}")
        got = _download(url, archive_part, say)
        if got != md5.lower():
            raise FetchError(
                f"checksum mismatch for {url}: MD5 {got}, expected {md5.lower()}; the download "
                "is damaged or not the CIFAR-10 python archive. Nothing was written; try again, "
                "or pass --md5 if you are sure the archive is the right one"
            )
        say(f"MD5 {got} verified; converting")
        arrays = read_archive(archive_part)
        subset = small_subset(arrays)
        if not full.exists():
            _write_npz(arrays, full, compressed=False)
            say(
                f"wrote {full} ({len(arrays['x_train'])} training, {len(arrays['x_test'])} test "
                f"images): --variant full --data-dir {dest}"
            )
        digests = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in subset.items()}
        if small.exists():
            pass
        elif digests == SMALL_SHA256:
            _write_npz(subset, small, compressed=True)
            say(
                f"wrote {small} ({len(subset['x_train'])} training, {len(subset['x_test'])} test "
                f"images, identical to the published subset): the default, --data-dir {dest}"
            )
        else:
            say(
                f"{small.name} not written: the subset of this archive differs from the "
                "published one (its SHA-256 do not match); use --variant full"
            )
    finally:
        archive_part.unlink(missing_ok=True)
        if created and not any(dest.iterdir()):
            dest.rmdir()
    return full
