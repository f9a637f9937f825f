"""A layer of the searched tree cell over a sequence, on the fused op or the reference."""

from __future__ import annotations

import math

import torch
from torch import nn

from pynas.arch import RNNCell
from pynas.ops.reference_cell import reference_cell_sequence
from pynas.ops.tree_cell import tree_cell_sequence

IMPLS = ("fused", "reference")
DEFAULT_IMPL = "fused"


class TreeLeaves(nn.Module):
    """The parameters of a tree-cell layer of base N: weight_ih [in, N*H], bias [N*H] (the
    leaves' W_i, b_i side by side) and weight_hh [H, N*H] (the leaves' U_i), uniform ±1/√H.
    The input projection of all steps is one GEMM (:meth:`project`)."""

    def __init__(self, base: int, input_size: int, hidden_size: int, impl: str) -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl
        self.input_size = input_size
        self.hidden_size = hidden_size
        width = base * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(input_size, width))
        self.bias = nn.Parameter(torch.empty(width))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.bias, self.weight_hh):
            nn.init.uniform_(p, -bound, bound)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, in] -> x·W + b for every leaf, [T, B, N*H]."""
        steps, batch, _ = x.shape
        return torch.addmm(self.bias, x.reshape(steps * batch, -1), self.weight_ih).view(
            steps, batch, -1
        )


class TreeCellLayer(TreeLeaves):
    """One recurrent layer: x [T, B, in] -> (h for every step [T, B, H], (h_T, c_T))."""

    def __init__(
        self, arch: RNNCell, input_size: int, hidden_size: int, impl: str = DEFAULT_IMPL
    ) -> None:
        super().__init__(arch.base, input_size, hidden_size, impl)
        self.arch = arch

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if state is None:
            zeros = x.new_zeros(x.shape[1], self.hidden_size)
            state = (zeros, zeros)
        h0, c0 = state
        xproj = self.project(x)
        if self.impl == "reference":
            out, h, c = reference_cell_sequence(self.arch, xproj, h0, c0, self.weight_hh)
        else:
            out, h, c = tree_cell_sequence(self.arch, xproj, h0, c0, self.weight_hh)
        return out, (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, base={self.arch.base}, impl={self.impl}"
