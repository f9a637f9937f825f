"""Thin Python layer over the compiled ops: fake kernels, autograd, friendly wrappers."""

from pynas.ops.skip_concat import skip_concat, skip_concat_reference

__all__ = ["skip_concat", "skip_concat_reference"]
