"""pynas: neural architecture search with reinforcement learning on a compiled core."""

import torch  # noqa: F401  (must load first: the extension links against libtorch/libc10)

from pynas import (
    _C,  # noqa: F401  (loads the extension: registers torch.ops.pynas.*)
    ops,  # noqa: F401  (fake kernels and autograd for those ops)
)

__version__ = "0.1.0"
