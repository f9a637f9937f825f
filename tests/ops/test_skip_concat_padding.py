"""The compiled skip-concat writes its own padding zeros (its output is not zero-filled first)."""

import random

import torch

import pynas  # noqa: F401  (registers torch.ops.pynas)
from pynas.ops import skip_concat, skip_concat_reference


def test_padding_is_zero_even_in_reused_memory():
    # Small CPU allocations reuse freed blocks: fill a block with NaN, free it, then let the
    # op allocate the same size. Padding the op forgot to write would show up as NaN.
    rng = random.Random(0)
    for _ in range(40):
        inputs = [
            torch.randn(2, rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 6))
            for _ in range(rng.randint(2, 4))
        ]
        expected = skip_concat_reference(inputs)
        poison = torch.full(expected.shape, float("nan"))
        del poison
        out = skip_concat(inputs)
        assert torch.equal(out, expected), [tuple(t.shape) for t in inputs]


def test_equal_sizes_and_mixed_sizes_in_one_call():
    same = torch.randn(3, 2, 4, 5)
    smaller = torch.randn(3, 3, 2, 5)
    narrower = torch.randn(3, 1, 4, 1)
    inputs = [same, smaller, narrower, same.clone()]
    for t in inputs:
        t.requires_grad_()
    out = skip_concat(inputs)
    torch.testing.assert_close(out, skip_concat_reference(inputs), rtol=0, atol=0)
    grad = torch.randn_like(out)
    grads = torch.autograd.grad(out, inputs, grad)
    torch.testing.assert_close(grads[0], grad[:, 0:2])
    torch.testing.assert_close(grads[1], grad[:, 2:5, :2, :])
    torch.testing.assert_close(grads[2], grad[:, 5:6, :, :1])
    torch.testing.assert_close(grads[3], grad[:, 6:8])
