"""The compiled padded skip-concat against its F.pad + torch.cat reference."""

import random

import pytest
import torch

import pynas  # noqa: F401  (registers torch.ops.pynas)
from pynas.ops import skip_concat, skip_concat_reference


def sample_inputs(rng: random.Random, dtype=torch.float32, requires_grad=False):
    batch = rng.randint(1, 3)
    count = rng.randint(1, 4)
    return [
        torch.randn(
            batch, rng.randint(1, 5), rng.randint(1, 7), rng.randint(1, 7), dtype=dtype,
            requires_grad=requires_grad,
        )
        for _ in range(count)
    ]  # fmt: skip


def test_padding_goes_bottom_right():
    a = torch.ones(1, 1, 2, 2)
    b = torch.full((1, 2, 3, 4), 2.0)
    out = skip_concat([a, b])
    assert out.shape == (1, 3, 3, 4)
    expected_a = torch.zeros(3, 4)
    expected_a[:2, :2] = 1.0
    torch.testing.assert_close(out[0, 0], expected_a)
    torch.testing.assert_close(out[0, 1:], b[0])


@pytest.mark.parametrize("seed", range(20))
def test_matches_reference_forward_and_backward(seed):
    rng = random.Random(seed)
    inputs = sample_inputs(rng, requires_grad=True)
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    out = skip_concat(inputs)
    ref = skip_concat_reference(ref_inputs)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    for t, r in zip(inputs, ref_inputs, strict=True):
        torch.testing.assert_close(t.grad, r.grad, rtol=0, atol=0)


def test_non_contiguous_inputs():
    base = torch.randn(2, 6, 5, 3)
    a = base.transpose(2, 3)  # [2, 6, 3, 5], non-contiguous
    b = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(skip_concat([a, b]), skip_concat_reference([a, b]))


@pytest.mark.parametrize("seed", range(4))
def test_gradcheck_float64(seed):
    inputs = sample_inputs(random.Random(100 + seed), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *xs: skip_concat(xs), tuple(inputs))


@pytest.mark.parametrize("seed", range(3))
def test_opcheck(seed):
    inputs = sample_inputs(random.Random(200 + seed), requires_grad=True)
    torch.library.opcheck(torch.ops.pynas.skip_concat.default, (inputs,))


def test_torch_compile_accepts_the_op():
    inputs = sample_inputs(random.Random(7))
    compiled = torch.compile(lambda xs: skip_concat(xs) * 2, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(inputs), skip_concat_reference(inputs) * 2)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([torch.randn(2, 3, 4)], "must be 4-D"),
        ([torch.randn(1, 2, 3, 3), torch.randn(2, 2, 3, 3)], "batch size"),
        ([torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3, dtype=torch.float64)], "dtype"),
    ],
)
def test_bad_input_gives_a_message(inputs, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ops.pynas.skip_concat(inputs)


def test_empty_input_list_gives_a_message():
    with pytest.raises(ValueError, match="at least one input"):
        skip_concat([])
