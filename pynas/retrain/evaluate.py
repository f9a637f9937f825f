"""Evaluate a saved model in one call: ``evaluate_saved("model.pt", data_dir=...)``."""

from __future__ import annotations

import os

from pynas.export import load_model
from pynas.tasks.device import check_device
from pynas.tasks.registry import get_task

SPLITS = ("train", "valid", "test")


def evaluate_saved(
    path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "test",
    batch_size: int | None = None,
    bptt: int = 35,
    limit: int | None = None,
    variant: str = "small",
    valid_size: int = 500,
    device: str = "cpu",
) -> float:
    """Load a model saved by :func:`pynas.save_model` and score it on a split of its task.

    ptb: perplexity (streams of `batch_size` columns, default 10, windows of `bptt`);
    cifar10: accuracy (the data file `variant` with `valid_size` images held out, as in the
    search that produced the model, since that fixes the normalisation). `limit` keeps only the
    first tokens/images; the data is found as for a search (`data_dir` or $PYNAS_DATA).
    `device` (cpu, cuda, cuda:N) is where the model runs.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    model = load_model(path).to(check_device(device))
    task = get_task(model._pynas_spec["task"])  # set by load_model
    return task.evaluate_saved(model, data_dir, split, batch_size, bptt, limit, variant, valid_size)
