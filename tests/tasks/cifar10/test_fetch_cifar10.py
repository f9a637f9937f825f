"""`python -m pynas.data fetch cifar10`: download (here from a file:// URL, as this machine has no
internet), MD5 check, conversion to --variant full, and nothing left behind when it fails."""

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from pynas.data.__main__ import main
from pynas.tasks.cifar10 import fetch as fetch_module
from pynas.tasks.cifar10.dataset import load_cifar10
from pynas.tasks.cifar10.fetch import CIFAR10_MD5, TEST_BATCH, TRAIN_BATCHES

PER_BATCH, TEST_IMAGES = 4, 6


def _batch(rng, n, label_offset):
    return {
        b"batch_label": b"testing batch",
        b"labels": [(label_offset + i) % 10 for i in range(n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def _add(archive, name, payload):
    info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A small archive in the official layout: pickled dicts with bytes keys, uint8 [N, 3072]."""
    rng = np.random.default_rng(0)
    batches = {name: _batch(rng, PER_BATCH, i) for i, name in enumerate(TRAIN_BATCHES)}
    batches[TEST_BATCH] = _batch(rng, TEST_IMAGES, 7)
    path = tmp_path_factory.mktemp("archive") / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog",
                                 b"frog", b"horse", b"ship", b"truck"]}  # fmt: skip
        _add(tar, "batches.meta", pickle.dumps(meta, protocol=2))
        for name, batch in batches.items():
            # the official batches were pickled by numpy 1 (protocol 2): numpy.core, not _core
            raw = pickle.dumps(batch, protocol=2).replace(b"numpy._core.", b"numpy.core.")
            _add(tar, name, raw)
        _add(tar, "readme.html", b"<html></html>")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return path, md5, batches


def fetch(capsys, *argv):
    try:
        code = main(["fetch", "cifar10", *argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_fetch_verifies_and_converts_to_the_full_variant(archive, tmp_path, capsys):
    path, md5, batches = archive
    dest = tmp_path / "data" / "cifar10"
    code, err = fetch(capsys, "--dest", str(dest), "--url", path.as_uri(), "--md5", md5)
    assert code == 0, err
    assert f"MD5 {md5} verified" in err and "--variant full" in err
    # not the real archive: its subset is not the published cifar10_small.npz, so not written
    assert "cifar10_small.npz not written" in err
    assert sorted(os.listdir(dest)) == ["cifar10_full.npz"]  # no part files left
    with np.load(dest / "cifar10_full.npz") as npz:
        x_train, y_train, x_test, y_test = (npz[k] for k in ("x_train", "y_train", "x_test",
                                                              "y_test"))  # fmt: skip
    assert x_train.shape == (5 * PER_BATCH, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_test.shape == (TEST_IMAGES, 32, 32, 3) and y_test.dtype == np.int64
    # batches in order 1..5; each row is 1024 red, 1024 green, 1024 blue values, row by row
    second = batches["data_batch_2"][b"data"][1]
    image = x_train[PER_BATCH + 1]
    assert image[0, 0].tolist() == [second[0], second[1024], second[2048]]
    assert image[2, 5].tolist() == [second[69], second[1024 + 69], second[2048 + 69]]
    assert y_train.tolist() == [label for name in TRAIN_BATCHES
                                for label in batches[name][b"labels"]]  # fmt: skip
    assert y_test.tolist() == batches[TEST_BATCH][b"labels"]
    data = load_cifar10(dest, variant="full", valid_size=5)  # the task reads it as is
    assert len(data.train) + len(data.valid) == 5 * PER_BATCH and len(data.test) == TEST_IMAGES


def test_the_default_subset_is_cut_when_it_is_the_published_one(
    archive, tmp_path, capsys, monkeypatch
):
    """cifar10_small.npz: the first k of each class among the first n images, checked by SHA-256
    (here k and n and the checksums are scaled down to the test archive)."""
    path, md5, batches = archive
    monkeypatch.setattr(fetch_module, "SMALL_TRAIN", (6, 1))  # first image of each class in 6
    monkeypatch.setattr(fetch_module, "SMALL_TEST", (6, 2))
    train_labels = batches["data_batch_1"][b"labels"] + batches["data_batch_2"][b"labels"]
    x_all = np.concatenate([batches[n][b"data"] for n in TRAIN_BATCHES[:2]])
    first = {}
    for i, label in enumerate(train_labels[:6]):
        first.setdefault(label, i)
    train_idx = sorted(first.values())
    assert train_idx == [0, 1, 2, 3]  # labels 0,1,2,3 | 1,2: the 5th and 6th repeat classes
    test_labels = batches[TEST_BATCH][b"labels"]
    expected = {
        "x_train": x_all[train_idx].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(),
        "y_train": np.asarray([train_labels[i] for i in train_idx], dtype=np.int64),
        "x_test": batches[TEST_BATCH][b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(),
        "y_test": np.asarray(test_labels, dtype=np.int64),
    }
    digests = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in expected.items()}
    monkeypatch.setattr(fetch_module, "SMALL_SHA256", digests)
    dest = tmp_path / "cifar10"
    code, err = fetch(capsys, "--dest", str(dest), "--url", path.as_uri(), "--md5", md5)
    assert code == 0, err
    assert "identical to the published subset" in err
    assert sorted(os.listdir(dest)) == ["cifar10_full.npz", "cifar10_small.npz"]
    with np.load(dest / "cifar10_small.npz") as npz:
        for key, value in expected.items():
            np.testing.assert_array_equal(npz[key], value)
    code, err = fetch(capsys, "--dest", str(dest), "--url", path.as_uri(), "--md5", md5)
    assert code == 0 and "already exist" in err


def test_wrong_checksum_is_refused_and_leaves_nothing(archive, tmp_path, capsys):
    path, md5, _ = archive
    dest = tmp_path / "new"
    code, err = fetch(capsys, "--dest", str(dest), "--url", path.as_uri())  # published MD5
    assert code == 2 and "Traceback" not in err
    assert f"checksum mismatch for {path.as_uri()}: MD5 {md5}, expected {CIFAR10_MD5}" in err
    assert "Nothing was written" in err
    assert not dest.exists()  # the directory it created is gone again
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "other.txt").write_text("keep me")
    code, _ = fetch(capsys, "--dest", str(existing), "--url", path.as_uri(), "--md5", "0" * 32)
    assert code == 2 and sorted(os.listdir(existing)) == ["other.txt"]


def test_a_batch_with_foreign_objects_is_not_unpickled(tmp_path, capsys):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in (*TRAIN_BATCHES, TEST_BATCH):
            _add(tar, name, pickle.dumps({b"data": Boom(), b"labels": [0]}, protocol=2))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    dest = tmp_path / "dest"
    code, err = fetch(capsys, "--dest", str(dest), "--url", path.as_uri(), "--md5", md5)
    assert code == 2 and "is not a CIFAR-10 batch" in err and "unexpected object" in err
    assert not (tmp_path / "pwned").exists() and not dest.exists()


def test_not_an_archive_and_unreachable_url(tmp_path, capsys):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    md5 = hashlib.md5(junk.read_bytes()).hexdigest()
    code, err = fetch(capsys, "--dest", str(tmp_path / "a"), "--url", junk.as_uri(), "--md5", md5)
    assert code == 2 and "not a readable .tar.gz archive" in err and not (tmp_path / "a").exists()
    missing = (tmp_path / "nowhere.tar.gz").as_uri()
    code, err = fetch(capsys, "--dest", str(tmp_path / "b"), "--url", missing)
    assert code == 2 and f"could not download {missing}" in err and "--url file://" in err
    assert not (tmp_path / "b").exists()


def test_missing_full_variant_names_the_fetch_command(tmp_path):
    from pynas.tasks.data import DataError

    with pytest.raises(DataError, match="python -m pynas.data fetch cifar10 --dest"):
        load_cifar10(tmp_path, variant="full")
