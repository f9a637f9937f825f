"""pynas: neural architecture search with reinforcement learning on a compiled core."""

import importlib
from typing import Any

import torch  # noqa: F401  (must load first: the extension links against libtorch/libc10)

from pynas import _extension

# Loads the extension (registering torch.ops.pynas.*) or says why it cannot: a source tree
# without it, or a build for another torch or from other sources.
_C = _extension.load()

from pynas import ops  # noqa: E402,F401  (fake kernels and autograd for those ops)

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "save_model"]

# Subpackages load on first use (`pynas.spaces.DecisionSpace(...)` works after `import pynas`).
_LAZY = {"arch", "children", "controller", "executors", "nn", "retrain", "runs", "search"}
_LAZY |= {"show", "spaces", "strategies", "tasks", "viz"}


# build_model, load_model, save_model live in the top layer (pynas.export, which knows every
# task): loaded on first use, so that importing a low layer does not load the high ones.
_EXPORT = {"build_model", "load_model", "save_model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"pynas.{name}")
    if name in _EXPORT:
        return getattr(importlib.import_module("pynas.export"), name)
    raise AttributeError(f"module 'pynas' has no attribute {name!r}")
