"""The fused tree-cell op treats NaN and +-Inf exactly as the pure-PyTorch reference does.

The reference cell is torch's own ops (torch.relu / tanh / sigmoid, +, *) under torch's autograd,
so it defines the semantics: relu propagates NaN and keeps -0.0, its backward zeroes the gradient
only where the output is <= 0 (also an Inf or NaN gradient there, and not where the output is
NaN), tanh and sigmoid saturate to exactly +-1 / 0, 1 at +-Inf. Every activation and both combines
are checked at every node, at the inject and at c_out, forward values and gradients, in float32
(the op's own exp/tanh approximations) and float64: NaN positions must match exactly, Infs
exactly, finite values within the usual tolerances.
"""

from __future__ import annotations

import random

import pytest
import torch

from pynas.arch import ACTIVATIONS, COMBINES, RNNCell
from pynas.ops import tree_cell_sequence, tree_cell_sequence_reference

NAN, INF = float("nan"), float("inf")
# Non-finite values, and finite ones that saturate every activation or overflow in a product
# (1e30 * 1e30 is Inf in float32).
SPECIAL_VALUES = (NAN, INF, -INF, 1e30, -1e30, 100.0, -100.0)
INPUT_NAMES = ("xproj", "h0", "c0", "weight_hh")
TOLERANCES = {
    torch.float32: {"rtol": 1e-4, "atol": 2e-5},
    torch.float64: {"rtol": 1e-10, "atol": 1e-10},
}
# Where the inject and c_out sit in a base-4 tree (nodes 0..3 leaves, 4, 5 internal, 6 the root).
PLACEMENTS = [
    {"inject_at": 0, "c_out": 0},  # both on one leaf
    {"inject_at": 4, "c_out": 6},  # inject inside the tree, c_out at the root
    {"inject_at": 6, "c_out": 2},  # inject at the root, c_out on a leaf
]


def uniform_cell(combine: str, activation: str, inject_at: int, c_out: int) -> RNNCell:
    """A base-4 cell with this (combine, activation) at every node and at the inject."""
    return RNNCell(
        base=4,
        nodes=((combine, activation),) * 7,
        inject=(combine, activation),
        c_out=c_out,
        inject_at=inject_at,
    )


def sprinkle(t: torch.Tensor, gen: torch.Generator, fraction: float) -> torch.Tensor:
    """A copy of `t` with about `fraction` of its elements replaced by special values."""
    t = t.clone()
    flat = t.view(-1)
    mask = torch.rand(flat.shape, generator=gen, dtype=torch.float64) < fraction
    picks = torch.randint(len(SPECIAL_VALUES), flat.shape, generator=gen)
    values = torch.tensor(SPECIAL_VALUES, dtype=t.dtype)[picks]
    flat[mask] = values[mask]
    return t


def make_inputs(dtype, steps, seed, spoil=INPUT_NAMES, fraction=0.15, batch=3, hidden=5, base=4):
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        "xproj": torch.randn(steps, batch, base * hidden, dtype=dtype, generator=gen),
        "h0": torch.randn(batch, hidden, dtype=dtype, generator=gen),
        "c0": torch.randn(batch, hidden, dtype=dtype, generator=gen),
        "weight_hh": torch.randn(hidden, base * hidden, dtype=dtype, generator=gen) / hidden**0.5,
    }
    for name in spoil:
        inputs[name] = sprinkle(inputs[name], gen, fraction)
    return [inputs[name] for name in INPUT_NAMES]


def upstream_gradients(outputs, seed: int, special_fraction: float = 0.0):
    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in outputs]
    return [sprinkle(g, gen, special_fraction) for g in grads]


def assert_agrees(arch, inputs, seed: int = 0, special_upstream: float = 0.0) -> None:
    """Forward outputs and the gradients of all four inputs, fused op against the reference."""
    tol = TOLERANCES[inputs[0].dtype]
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    got = tree_cell_sequence(arch, *leaves)
    want = tree_cell_sequence_reference(arch, *leaves)
    for name, g, w in zip(("hs", "h_T", "c_T"), got, want, strict=True):
        torch.testing.assert_close(
            g, w, equal_nan=True, **tol, msg=lambda m, n=name: f"{arch.to_json()}\n{n}: {m}"
        )
    upstream = upstream_gradients(got, seed, special_upstream)
    got_grads = torch.autograd.grad(got, leaves, upstream)
    want_grads = torch.autograd.grad(want, leaves, upstream)
    for name, g, w in zip(INPUT_NAMES, got_grads, want_grads, strict=True):
        torch.testing.assert_close(
            g, w, equal_nan=True, **tol, msg=lambda m, n=name: f"{arch.to_json()}\ngrad {n}: {m}"
        )


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


def test_the_inputs_really_hold_special_values():
    xproj, h0, c0, weight_hh = make_inputs(torch.float32, steps=2, seed=0)
    for t in (xproj, h0, c0, weight_hh):
        assert t.isnan().any() or t.isinf().any() or (t.abs() >= 100).any()
    both = torch.cat([t.flatten() for t in (xproj, h0, c0, weight_hh)])
    assert both.isnan().any() and (both == INF).any() and (both == -INF).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_and_combine(activation, combine, dtype):
    """Each (combine, activation) at every node and at the inject, for each placement of the
    inject and c_out: special values in one input at a time over one step (so that NaN, which
    the recurrent GEMM spreads over a whole row, does not simply cover everything), then sparsely
    in all four inputs over three steps."""
    for p, placement in enumerate(PLACEMENTS):
        cell = uniform_cell(combine, activation, **placement)
        for i, name in enumerate(INPUT_NAMES):
            assert_agrees(cell, make_inputs(dtype, 1, seed=10 * p + i, spoil=(name,)), seed=i)
        inputs = make_inputs(dtype, 3, seed=10 * p + 9, fraction=0.03)
        assert_agrees(cell, inputs, seed=p)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_random_cells_with_special_values(dtype):
    """Random mixed architectures; special values everywhere, also in the upstream gradients
    (where relu's backward must zero an Inf or NaN gradient wherever its output is <= 0)."""
    rng = random.Random(7)
    for trial in range(24):
        cell = RNNCell(
            base=4,
            nodes=tuple((rng.choice(COMBINES), rng.choice(ACTIVATIONS)) for _ in range(7)),
            inject=(rng.choice(COMBINES), rng.choice(ACTIVATIONS)),
            c_out=rng.randrange(7),
            inject_at=rng.randrange(7),
        )
        inputs = make_inputs(dtype, steps=rng.choice([1, 2]), seed=trial, fraction=0.05)
        assert_agrees(cell, inputs, seed=trial, special_upstream=0.1 if trial % 2 else 0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_single_values_through_one_leaf(activation, dtype):
    """Each special value (and +-0.0) alone through the leaf x * 1 of a base-2 cell whose other
    nodes multiply by 1 (identity): the output is torch's activation of it (saturated values and
    the sign of a zero exactly), and the gradient torch's backward of it, for a finite, an Inf and
    a NaN upstream gradient. (Not at float32 |x| in (7.9, 9.0): there the op's tanh is already
    exactly +-1 and torch's a few ulp below, so an Inf upstream gradient gives NaN in one, Inf in
    the other; see csrc/ops/cell/cell_math.h.)"""
    values = torch.tensor([NAN, INF, -INF, 0.0, -0.0, 1e30, -1e30, 100.0, -100.0, 20.0, -20.0, 3.0],
                          dtype=dtype)  # fmt: skip
    mul = "elem_mult"
    cell = RNNCell(
        base=2,
        nodes=((mul, activation), (mul, "identity"), (mul, "identity")),
        inject=(mul, "identity"),
        c_out=1,
        inject_at=1,
    )
    n = values.numel()
    xproj = torch.ones(1, n, 2, dtype=dtype)
    xproj[0, :, 0] = values
    ones = torch.ones(n, 1, dtype=dtype)  # h0 and c0; with weight_hh = 1, every h.U is 1
    for upstream in (1.5, INF, NAN):
        leaves = [
            t.clone().requires_grad_() for t in (xproj, ones, ones, torch.ones(1, 2, dtype=dtype))
        ]
        hs, _, _ = tree_cell_sequence(cell, *leaves)
        ref_x = values.clone().requires_grad_()
        ref = {"identity": lambda v: v, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "relu": torch.relu}[activation](ref_x)  # fmt: skip
        torch.testing.assert_close(hs[0, :, 0], ref.detach(), equal_nan=True, **TOLERANCES[dtype])
        if activation in ("relu", "identity"):  # exact: the sign of a zero too
            assert torch.equal(torch.signbit(hs[0, :, 0]), torch.signbit(ref.detach()))
        if activation in ("tanh", "sigmoid"):  # saturated values are exact, not close
            saturated = values.abs() >= 100
            assert torch.equal(hs[0, saturated, 0], ref.detach()[saturated])
        grad = torch.full((1, n, 1), upstream, dtype=dtype)
        (got,) = torch.autograd.grad(hs, leaves[0], grad)
        (want,) = torch.autograd.grad(ref, ref_x, grad[0, :, 0])
        torch.testing.assert_close(got[0, :, 0], want, equal_nan=True, **TOLERANCES[dtype])
