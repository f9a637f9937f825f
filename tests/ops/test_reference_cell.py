"""The reference cell against values worked out independently of it."""

import math

import pytest
import torch

from pynas.arch import NAMED_CELLS, RNNCell
from pynas.ops.reference_cell import reference_cell_sequence, reference_cell_step


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def scalars(*values):
    return torch.tensor([list(values)], dtype=torch.float64)


def test_base2_linear_tree_by_hand():
    # n0 = x0 + h0, injected: n0 + c; n1 = x1 * h1; n2 = n0' + n1 -> c_t and h_t.
    cell = RNNCell(
        base=2,
        nodes=(("add", "identity"), ("elem_mult", "identity"), ("add", "identity")),
        inject=("add", "identity"), c_out=2, inject_at=0,
    )  # fmt: skip
    h, c = reference_cell_step(cell, scalars(1.0, 2.0), scalars(0.5, 3.0), scalars(-1.0))
    # a0 = 1.5, a0' = 0.5, a1 = 6, pre2 = 6.5
    assert h.item() == pytest.approx(6.5)
    assert c.item() == pytest.approx(6.5)


def test_base2_activations_inject_at_root_by_hand():
    cell = RNNCell(
        base=2,
        nodes=(("add", "tanh"), ("elem_mult", "sigmoid"), ("elem_mult", "relu")),
        inject=("add", "tanh"), c_out=0, inject_at=2,
    )  # fmt: skip
    h, c = reference_cell_step(cell, scalars(0.2, 2.0), scalars(0.3, -0.5), scalars(0.4))
    a0 = math.tanh(0.2 + 0.3)
    a1 = sigmoid(2.0 * -0.5)
    a2 = max(a0 * a1, 0.0)
    assert h.item() == pytest.approx(math.tanh(a2 + 0.4))
    assert c.item() == pytest.approx(0.5)  # pre-activation of leaf 0


def test_relu_and_mult_inject_c_out_is_pre_activation():
    # c_out is a node whose activation clips: c_t must be the negative pre-activation.
    cell = RNNCell(
        base=2,
        nodes=(("add", "relu"), ("add", "identity"), ("add", "sigmoid")),
        inject=("elem_mult", "identity"), c_out=0, inject_at=1,
    )  # fmt: skip
    h, c = reference_cell_step(cell, scalars(-2.0, 1.0), scalars(0.5, 1.0), scalars(3.0))
    a0 = max(-1.5, 0.0)
    a1 = (1.0 + 1.0) * 3.0
    assert c.item() == pytest.approx(-1.5)
    assert h.item() == pytest.approx(sigmoid(a0 + a1))


def nas_cell_by_hand(xp, hp, c_prev, hidden):
    """The NAS cell of Zoph & Le written out line by line."""
    x = [xp[:, i * hidden : (i + 1) * hidden] for i in range(8)]
    h = [hp[:, i * hidden : (i + 1) * hidden] for i in range(8)]
    n0 = torch.sigmoid(x[0] + h[0])
    n1 = torch.relu(x[1] + h[1])
    n2 = torch.sigmoid(x[2] + h[2])
    n3 = torch.relu(x[3] * h[3])
    n4 = torch.tanh(x[4] + h[4])
    n5 = torch.sigmoid(x[5] + h[5])
    n6 = torch.tanh(x[6] + h[6])
    n7 = torch.sigmoid(x[7] + h[7])
    n8 = torch.tanh(n0 * n1)
    n8 = torch.tanh(n8 + c_prev)  # inject
    n9 = torch.tanh(n2 + n3)
    n10 = torch.tanh(n4 * n5)
    n11 = torch.sigmoid(n6 + n7)
    c_t = n8 * n9  # node 12, identity
    n13 = torch.tanh(n10 + n11)
    h_t = torch.tanh(c_t * n13)
    return h_t, c_t


def test_nas_cell_matches_line_by_line_version():
    torch.manual_seed(0)
    hidden, batch = 5, 3
    xp = torch.randn(batch, 8 * hidden, dtype=torch.float64)
    hp = torch.randn(batch, 8 * hidden, dtype=torch.float64)
    c_prev = torch.randn(batch, hidden, dtype=torch.float64)
    h, c = reference_cell_step(NAMED_CELLS["nas_cell"], xp, hp, c_prev)
    h_ref, c_ref = nas_cell_by_hand(xp, hp, c_prev, hidden)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=0)
    torch.testing.assert_close(c, c_ref, rtol=0, atol=0)


def test_sequence_threads_state_through_steps():
    torch.manual_seed(1)
    steps, batch, hidden = 4, 2, 3
    cell = NAMED_CELLS["nas_cell"]
    xproj = torch.randn(steps, batch, 8 * hidden, dtype=torch.float64)
    h0 = torch.randn(batch, hidden, dtype=torch.float64)
    c0 = torch.randn(batch, hidden, dtype=torch.float64)
    weight_hh = torch.randn(hidden, 8 * hidden, dtype=torch.float64) * 0.3
    hs, h_last, c_last = reference_cell_sequence(cell, xproj, h0, c0, weight_hh)
    h, c = h0, c0
    for t in range(steps):
        h, c = nas_cell_by_hand(xproj[t], h @ weight_hh, c, hidden)
        torch.testing.assert_close(hs[t], h)
    torch.testing.assert_close(h_last, h)
    torch.testing.assert_close(c_last, c)
    assert hs.shape == (steps, batch, hidden)
