"""Padded skip-concat (SPEC §3): zero-pad NCHW maps to the largest H and W, concat channels.

Padding goes at the bottom and the right: a map of size (h, w) occupies the top-left corner
[0:h, 0:w] of the (H_max, W_max) canvas. The compiled kernel and the reference agree on this.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def skip_concat(inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate `inputs` along channels after zero-padding each to the largest map."""
    if len(inputs) == 0:
        # The dispatcher cannot route an empty tensor list to any kernel: say so here.
        raise ValueError("skip_concat: expected at least one input tensor, got none")
    return torch.ops.pynas.skip_concat(list(inputs))


def skip_concat_reference(inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Pure-PyTorch oracle for :func:`skip_concat` (F.pad + torch.cat)."""
    height = max(t.shape[2] for t in inputs)
    width = max(t.shape[3] for t in inputs)
    padded = [F.pad(t, (0, width - t.shape[3], 0, height - t.shape[2])) for t in inputs]
    return torch.cat(padded, dim=1)


@torch.library.register_fake("pynas::skip_concat")
def _skip_concat_fake(inputs):
    torch._check(len(inputs) > 0, lambda: "pynas::skip_concat: expected at least one input")
    first = inputs[0]
    channels = sum(t.shape[1] for t in inputs)
    height = max(t.shape[2] for t in inputs)
    width = max(t.shape[3] for t in inputs)
    return first.new_empty((first.shape[0], channels, height, width))


@torch.library.register_fake("pynas::_skip_concat_backward")
def _skip_concat_backward_fake(grad, channels, heights, widths):
    return [
        grad.new_empty((grad.shape[0], c, h, w))
        for c, h, w in zip(channels, heights, widths, strict=True)
    ]


def _setup_context(ctx, inputs, output):
    (tensors,) = inputs
    ctx.shapes = [(t.shape[1], t.shape[2], t.shape[3]) for t in tensors]


def _backward(ctx, grad):
    channels, heights, widths = (list(x) for x in zip(*ctx.shapes, strict=True))
    grads = torch.ops.pynas._skip_concat_backward(grad, channels, heights, widths)
    return (list(grads),)


torch.library.register_autograd("pynas::skip_concat", _backward, setup_context=_setup_context)
