"""Build a standard `nn.Module` from an architecture; save and load trained weights.

Saved file format (one `torch.save` file, loaded with `weights_only=True`):

    {"format": "pynas-model", "version": 1, "task": "<task name>",
     "arch": "<canonical architecture JSON>", "options": {build_model keyword arguments},
     "state_dict": {...}}

`load_model(path)` rebuilds the module from arch + options and loads the weights, so a fresh
process needs nothing but pynas and the file.

Each task builds its own model (:meth:`pynas.tasks.base.Task.build_model`): PTB a
:class:`pynas.arch.RNNCell` into ``CellLanguageModel`` (tokens [T, B] and a state in, logits
out), CIFAR-10 a :class:`pynas.arch.ConvNet` into ``ConvChild`` (images [N, 3, H, W] normalised
with the training split's per-channel mean and std in, logits out).
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from pynas.arch import load_rnn_cell
from pynas.children.baseline_rnn import BASELINES
from pynas.io import replacing
from pynas.tasks.registry import DEFAULT_TASK, TASKS, get_task

FORMAT = "pynas-model"
VERSION = 1
_SPEC_ATTR = "_pynas_spec"


def _arch_json(arch: Any) -> str:
    if hasattr(arch, "to_json"):
        return arch.to_json()
    if isinstance(arch, str) and arch in BASELINES:  # an LSTM/GRU baseline: its name
        return json.dumps(arch)
    if isinstance(arch, str):
        return load_rnn_cell(arch).to_json()
    raise TypeError(f"cannot serialise architecture of type {type(arch).__name__}")


def build_model(arch: Any, task: str = DEFAULT_TASK, **options: Any) -> nn.Module:
    """The child network of `arch` for `task`, as a plain `torch.nn.Module`.

    `arch` is an architecture object, a named architecture or JSON; `options` are the child's
    constructor arguments (for ptb: vocab_size, hidden_size, num_layers, dropout, tie_weights,
    impl; for cifar10: num_classes, image_channels, concat, and bn_eps / bn_momentum for every
    batch-norm layer).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}")
    model = get_task(task).build_model(arch, dict(options))
    built = getattr(model, "arch", None)  # the validated architecture the child was built from
    arch_json = built.to_json() if hasattr(built, "to_json") else _arch_json(arch)
    setattr(model, _SPEC_ATTR, {"task": task, "arch": arch_json, "options": dict(options)})
    return model


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save a model made by :func:`build_model` with its weights (atomic write)."""
    spec = getattr(model, _SPEC_ATTR, None)
    if spec is None:
        raise ValueError("save_model needs a model made by pynas.build_model (it records the arch)")
    payload = {"format": FORMAT, "version": VERSION, **spec, "state_dict": model.state_dict()}
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | os.PathLike[str], map_location: str = "cpu") -> nn.Module:
    """Rebuild and load a model saved by :func:`save_model`; returned in eval mode."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a pynas model file (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: model format version {payload.get('version')} is not {VERSION}")
    task = payload["task"]
    arch = get_task(task).arch_from_json(payload["arch"])
    model = build_model(arch, task=task, **payload["options"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()
