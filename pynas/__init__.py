"""pynas: neural architecture search with reinforcement learning on a compiled core."""

import importlib
from typing import Any

import torch  # noqa: F401  (must load first: the extension links against libtorch/libc10)

from pynas import _extension

# Loads the extension (registering torch.ops.pynas.*) or says why it cannot: a source tree
# without it, or a build for another torch or from other sources.
_C = _extension.load()

from pynas import ops  # noqa: E402,F401  (fake kernels and autograd for those ops)
from pynas.export import build_model, load_model, save_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "save_model"]

# Subpackages load on first use (`pynas.spaces.DecisionSpace(...)` works after `import pynas`).
_LAZY = {"arch", "children", "controller", "executors", "nn", "retrain", "runs", "search"}
_LAZY |= {"show", "spaces", "strategies", "tasks", "viz"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"pynas.{name}")
    raise AttributeError(f"module 'pynas' has no attribute {name!r}")
