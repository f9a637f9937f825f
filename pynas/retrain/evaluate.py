"""Evaluate a saved model in one call: ``evaluate_saved("model.pt", data_dir=...)``."""

from __future__ import annotations

import os

from pynas.export import load_model

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
    from pynas.tasks.device import check_device

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    model = load_model(path).to(check_device(device))
    task = model._pynas_spec["task"]  # set by load_model
    if task == "ptb":
        from pynas.tasks.ptb import evaluate_ppl, load_corpus
        from pynas.tasks.ptb_data import batchify

        tokens = getattr(load_corpus(data_dir), split)
        tokens = tokens[:limit] if limit else tokens
        return evaluate_ppl(model, batchify(tokens, batch_size or 10), bptt)  # type: ignore[arg-type]
    if task == "cifar10":
        from pynas.tasks.cifar10 import evaluate_accuracy, load_cifar10

        data = getattr(load_cifar10(data_dir, variant, valid_size), split).head(limit)
        return evaluate_accuracy(model, data, batch_size or 500)
    raise ValueError(f"{path}: no evaluation for task {task!r}")
