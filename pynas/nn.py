"""The found cell as a drop-in recurrent layer with the `nn.LSTM` call signature."""

from __future__ import annotations

import torch
from torch import nn

from pynas.arch import RNNCell, load_rnn_cell
from pynas.children.tree_rnn import DEFAULT_IMPL, TreeCellLayer


class TreeRNN(nn.Module):
    """A stack of tree-cell layers, called like `nn.LSTM`.

    `rnn(input, (h_0, c_0)) -> output, (h_n, c_n)` with input [T, B, in] (or [B, T, in] when
    batch_first), h_0/c_0 [num_layers, B, H] (zeros when omitted), output [T, B, H].
    """

    def __init__(
        self,
        arch: RNNCell | str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = False,
        impl: str = DEFAULT_IMPL,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.arch = arch if isinstance(arch, RNNCell) else load_rnn_cell(arch)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TreeCellLayer(self.arch, input_size if i == 0 else hidden_size, hidden_size, impl=impl)
            for i in range(num_layers)
        )

    def forward(
        self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(
                f"TreeRNN expects input of shape [T, B, {self.input_size}]"
                f"{' (batch_first: [B, T, ...])' if self.batch_first else ''}, "
                f"got {list(input.shape)}"
            )
        x = input.transpose(0, 1) if self.batch_first else input
        batch = x.shape[1]
        if hx is None:
            zeros = x.new_zeros(self.num_layers, batch, self.hidden_size)
            hx = (zeros, zeros)
        h0, c0 = hx
        expected = (self.num_layers, batch, self.hidden_size)
        if tuple(h0.shape) != expected or tuple(c0.shape) != expected:
            raise ValueError(
                f"h_0 and c_0 must have shape {list(expected)}, "
                f"got {list(h0.shape)} and {list(c0.shape)}"
            )
        h_n, c_n = [], []
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            x, (h, c) = layer(x, (h0[i], c0[i]))
            h_n.append(h)
            c_n.append(c)
        out = x.transpose(0, 1) if self.batch_first else x
        return out, (torch.stack(h_n), torch.stack(c_n))

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"base={self.arch.base}, batch_first={self.batch_first}"
        )
