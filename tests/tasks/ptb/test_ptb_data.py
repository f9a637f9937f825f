import lzma
import re
import shutil

import pytest
import torch

from pynas.tasks.data import DataError
from pynas.tasks.ptb import corpus as ptb_data
from pynas.tasks.ptb.corpus import (
    EOS,
    PACKAGED,
    PACKAGED_SHA256,
    PTB_DIR,
    batchify,
    bptt_windows,
    load_corpus,
)


def test_standard_split_counts(ptb_dir):
    corpus = load_corpus(ptb_dir)
    # Figures from shared/data/ptb/SOURCE.md: tokens + one <eos> per line.
    assert corpus.vocab_size == 10_000
    assert corpus.train.numel() == 929_589
    assert corpus.valid.numel() == 73_760
    assert corpus.test.numel() == 82_430
    eos = corpus.words.index(EOS)
    assert (corpus.train == eos).sum().item() == 42_068
    assert (corpus.valid == eos).sum().item() == 3_370


def test_first_sentence_decodes(ptb_dir):
    corpus = load_corpus(ptb_dir)
    first_line = (ptb_dir / "valid.txt").read_text().splitlines()[0].split()
    words = [corpus.words[i] for i in corpus.valid[: len(first_line) + 1].tolist()]
    assert words[: len(first_line)] == first_line
    assert words[len(first_line)] == EOS


def test_env_variable_points_at_parent_or_task_folder(ptb_dir, monkeypatch):
    monkeypatch.setenv("PYNAS_DATA", str(ptb_dir.parent))
    assert load_corpus().vocab_size == 10_000
    monkeypatch.setenv("PYNAS_DATA", str(ptb_dir))
    assert load_corpus().vocab_size == 10_000


def test_packaged_copy_is_the_default_and_equals_the_text_files(ptb_dir, monkeypatch):
    monkeypatch.delenv("PYNAS_DATA", raising=False)
    packaged = load_corpus()
    assert packaged.source == PACKAGED
    files = load_corpus(ptb_dir)
    assert packaged.words == files.words
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(packaged, split), getattr(files, split))


def test_packaged_checksums_are_those_of_source_md():
    table = (PTB_DIR / "SOURCE.md").read_text()
    for name, digest in PACKAGED_SHA256.items():
        assert re.search(rf"\| {re.escape(name)} +\| [0-9a-f]{{32}} \| {digest} \|", table), name
    assert sorted(p.name for p in PTB_DIR.glob("*.xz")) == ["test.txt.xz", "train.txt.xz",
                                                           "valid.txt.xz"]  # fmt: skip


@pytest.fixture
def packaged_copy(tmp_path, monkeypatch):
    """A writable copy of the packaged files that load_corpus() reads instead."""
    for path in PTB_DIR.glob("*.xz"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(ptb_data, "PTB_DIR", tmp_path)
    monkeypatch.delenv("PYNAS_DATA", raising=False)
    ptb_data._load.cache_clear()
    yield tmp_path
    ptb_data._load.cache_clear()


def test_damaged_packaged_file_is_refused_by_its_checksum(packaged_copy):
    text = lzma.decompress((packaged_copy / "valid.txt.xz").read_bytes())
    (packaged_copy / "valid.txt.xz").write_bytes(lzma.compress(text.replace(b" the ", b" a ", 1)))
    with pytest.raises(DataError, match=r"valid.txt.xz is damaged: its text has SHA-256 [0-9a-f]+"):
        load_corpus()
    (packaged_copy / "test.txt.xz").write_bytes(b"not xz at all")
    (packaged_copy / "valid.txt.xz").unlink()
    with pytest.raises(DataError, match="lacks .*valid.txt.xz; reinstall pynas"):
        load_corpus()


def test_truncated_packaged_file(packaged_copy):
    raw = (packaged_copy / "test.txt.xz").read_bytes()
    (packaged_copy / "test.txt.xz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cannot read .*test.txt.xz.*--data-dir DIR"):
        load_corpus()


def test_missing_directory_names_expected_files(tmp_path):
    with pytest.raises(DataError) as info:
        load_corpus(tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "train.txt" in message and "valid.txt" in message


def test_missing_file_named_with_location(tmp_path):
    (tmp_path / "train.txt").write_text(" a b c \n")
    (tmp_path / "test.txt").write_text(" a b \n")
    with pytest.raises(DataError) as info:
        load_corpus(tmp_path)
    message = str(info.value)
    assert "valid.txt is missing" in message and str(tmp_path) in message


def test_empty_file(tmp_path):
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text(" a b \n")
    (tmp_path / "valid.txt").write_text("")
    with pytest.raises(DataError, match="valid.txt .* is empty"):
        load_corpus(tmp_path)


def test_malformed_file_word_outside_vocabulary(tmp_path):
    (tmp_path / "train.txt").write_text(" a b c \n")
    (tmp_path / "valid.txt").write_text(" a zebra \n")
    (tmp_path / "test.txt").write_text(" b \n")
    with pytest.raises(DataError, match="'zebra' is not in the training vocabulary"):
        load_corpus(tmp_path)


def test_binary_file_is_reported(tmp_path):
    (tmp_path / "train.txt").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "valid.txt").write_text(" a \n")
    (tmp_path / "test.txt").write_text(" a \n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_corpus(tmp_path)


def test_batchify_and_windows():
    ids = torch.arange(23)
    data = batchify(ids, 4)
    assert data.shape == (5, 4)
    assert data[:, 1].tolist() == [5, 6, 7, 8, 9]  # each column is a contiguous stream
    windows = list(bptt_windows(data, 3))
    assert [w[0].shape[0] for w in windows] == [3, 1]
    for inputs, targets in windows:
        assert torch.equal(targets, inputs + 1)
