"""The pure-PyTorch base-N tree cell: the oracle every fast path is tested against.

Leaf i combines columns [i*H, (i+1)*H) of the input projection with the same columns of the
recurrent projection; internal nodes combine their children's activations; the node
`inject_at` has its activation replaced by act_inj(combine_inj(a, c_prev)) before anyone reads
it; c_t is the pre-activation of node `c_out` and h_t the activation of the root (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pynas.arch import RNNCell

ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
}


def combine(op: str, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    return left + right if op == "add" else left * right


def reference_cell_step(
    arch: RNNCell, xp: torch.Tensor, hp: torch.Tensor, c_prev: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step. xp, hp: [..., N*H] projections; c_prev: [..., H]. Returns (h_t, c_t)."""
    hidden = c_prev.shape[-1]
    acts: list[torch.Tensor] = []
    c_t = c_prev
    for k, (comb, act) in enumerate(arch.nodes):
        if k < arch.base:
            cols = slice(k * hidden, (k + 1) * hidden)
            pre = combine(comb, xp[..., cols], hp[..., cols])
        else:
            left, right = arch.children(k)
            pre = combine(comb, acts[left], acts[right])
        if k == arch.c_out:
            c_t = pre
        out = ACTIVATION_FNS[act](pre)
        if k == arch.inject_at:
            inj_comb, inj_act = arch.inject
            out = ACTIVATION_FNS[inj_act](combine(inj_comb, out, c_prev))
        acts.append(out)
    return acts[arch.root], c_t


def reference_cell_sequence(
    arch: RNNCell,
    xproj: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weight_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A whole BPTT window. xproj: [T, B, N*H] input projections (bias included); h0, c0: [B, H];
    weight_hh: [H, N*H]. Returns (h for every step [T, B, H], h_T, c_T)."""
    h, c = h0, c0
    outputs = []
    for t in range(xproj.shape[0]):
        h, c = reference_cell_step(arch, xproj[t], h @ weight_hh, c)
        outputs.append(h)
    return torch.stack(outputs), h, c
