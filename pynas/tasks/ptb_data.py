"""Penn Treebank (Mikolov's word-level split): vocabulary, token ids, BPTT batches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from pynas.tasks.data import DataError, require_files, resolve_data_dir

SPLITS = ("train", "valid", "test")
FILES = tuple(f"{s}.txt" for s in SPLITS)
EOS = "<eos>"
UNK = "<unk>"


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


def _read_lines(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc}); expected the PTB text files") from None
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
    paths = require_files(Path(directory), FILES, "ptb")
    split_lines = {s: _read_lines(p) for s, p in zip(SPLITS, paths, strict=True)}
    index: dict[str, int] = {}
    for words in split_lines["train"]:
        for word in words:
            index.setdefault(word, len(index))
    ids = {s: _to_ids(split_lines[s], index, p) for s, p in zip(SPLITS, paths, strict=True)}
    return Corpus(words=tuple(index), source=directory, **ids)


def load_corpus(data_dir: str | os.PathLike[str] | None = None) -> Corpus:
    """Load PTB from `data_dir` (or $PYNAS_DATA); cached per directory within a process."""
    return _load(str(resolve_data_dir(data_dir, "ptb").resolve()))


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
