"""Penn Treebank (Mikolov's word-level split): vocabulary, token ids, BPTT batches.

The data is read from ``--data-dir`` or ``$PYNAS_DATA`` when either is given, else from the copy
that ships inside pynas (``pynas/tasks/ptb/packaged/*.txt.xz``): decompressed in memory with
``lzma`` and checked against the SHA-256 of the original files before use.
"""

from __future__ import annotations

import hashlib
import lzma
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from pynas.tasks.data import DATA_ENV, DataError, require_files, resolve_data_dir

NAME = "ptb"  # the task's name
# the copy that ships inside pynas (provenance, licence note and checksums in SOURCE.md there)
PTB_DIR = Path(__file__).resolve().parent / "packaged"

SPLITS = ("train", "valid", "test")
FILES = tuple(f"{s}.txt" for s in SPLITS)
EOS = "<eos>"
UNK = "<unk>"
# SHA-256 of the decompressed packaged files (= the table in packaged/SOURCE.md).
PACKAGED_SHA256 = {
    "train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
PACKAGED = "packaged"  # the `source` of the corpus that ships with pynas


@dataclass(frozen=True)
class Corpus:
    """Token ids of the three splits; `words[i]` is the word with id i (train order)."""

    words: tuple[str, ...]
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    source: str

    @property
    def vocab_size(self) -> int:
        return len(self.words)


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc}); expected the PTB text files") from None


def _packaged_text(name: str) -> str:
    """A packaged split, decompressed in memory and checked against its SHA-256."""
    path = PTB_DIR / f"{name}.xz"
    reinstall = "reinstall pynas, or pass --data-dir DIR with the PTB text files"
    try:
        raw = lzma.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DataError(
            f"the Penn Treebank copy shipped with pynas lacks {path}; {reinstall}"
        ) from None
    except (OSError, lzma.LZMAError) as exc:
        raise DataError(f"cannot read {path} ({exc}); {reinstall}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PACKAGED_SHA256[name]:
        raise DataError(
            f"{path} is damaged: its text has SHA-256 {digest}, expected "
            f"{PACKAGED_SHA256[name]}; {reinstall}"
        )
    return _decode(raw, path)


def _split_lines(text: str, path: Path) -> list[list[str]]:
    lines = [line.split() + [EOS] for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} holds no tokens; expected one sentence per line")
    return lines


def _to_ids(lines: list[list[str]], index: dict[str, int], path: Path) -> torch.Tensor:
    unk = index.get(UNK)
    ids = []
    for words in lines:
        for word in words:
            i = index.get(word, unk)
            if i is None:
                raise DataError(
                    f"{path}: word {word!r} is not in the training vocabulary and there is no "
                    f"{UNK} token to map it to; is this the PTB split?"
                )
            ids.append(i)
    return torch.tensor(ids, dtype=torch.long)


@lru_cache(maxsize=4)
def _load(directory: str) -> Corpus:
    """The corpus in `directory`, or the packaged one if `directory` is PACKAGED."""
    if directory == PACKAGED:
        paths = [PTB_DIR / f"{name}.xz" for name in FILES]
        texts = [_packaged_text(name) for name in FILES]
    else:
        paths = require_files(Path(directory), FILES, NAME)
        texts = [_decode(p.read_bytes(), p) for p in paths]
    split_lines = {
        s: _split_lines(text, p) for s, text, p in zip(SPLITS, texts, paths, strict=True)
    }
    index: dict[str, int] = {}
    for words in split_lines["train"]:
        for word in words:
            index.setdefault(word, len(index))
    ids = {s: _to_ids(split_lines[s], index, p) for s, p in zip(SPLITS, paths, strict=True)}
    return Corpus(words=tuple(index), source=directory, **ids)


def load_corpus(data_dir: str | os.PathLike[str] | None = None) -> Corpus:
    """Load PTB from `data_dir`, else $PYNAS_DATA, else the copy shipped with pynas; cached per
    source within a process (``corpus.source`` is the directory, or ``"packaged"``)."""
    if data_dir is None and not os.environ.get(DATA_ENV):
        return _load(PACKAGED)
    return _load(str(resolve_data_dir(data_dir, NAME).resolve()))


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut the token stream into `batch_size` contiguous streams: [steps, batch_size]."""
    steps = ids.numel() // batch_size
    if steps < 2:
        raise DataError(f"{ids.numel()} tokens are too few for batch size {batch_size}")
    return ids[: steps * batch_size].view(batch_size, steps).t().contiguous()


def bptt_windows(data: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) windows of at most `bptt` steps over a batchified stream."""
    for start in range(0, data.shape[0] - 1, bptt):
        length = min(bptt, data.shape[0] - 1 - start)
        yield data[start : start + length], data[start + 1 : start + 1 + length]
