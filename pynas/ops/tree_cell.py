"""The fused tree-cell sequence op (SPEC §2, §8): a whole BPTT window of a base-N tree cell.

The architecture is data: :func:`cell_program` turns an :class:`~pynas.arch.RNNCell` into a row
of int64s, :func:`stack_programs` stacks several (same base) into ``[P, 2N+3]``, and a per-row
index ``row_program [B]`` says which program each batch row runs, so one call can evaluate
several architectures over disjoint rows. Program row layout (see csrc/ops/cell/cell_math.h)::

    [base, c_out, inject_at, inject_op, op_0, ..., op_{2N-2}],  op = combine * 4 + activation

with combines and activations numbered as in :data:`pynas.arch.rnn_cell.COMBINES` /
:data:`~pynas.arch.rnn_cell.ACTIVATIONS`.

Memory: the forward saves the recurrent projections ``hp_all [T, B, N*H]`` and c of every step
(not the 2N-1 node values) and the backward recomputes the tree from them. When the graph is
not retained, the backward writes grad_xproj over ``hp_all`` (internal: the op's
``_donate_saved`` argument and the backward ops ``pynas::_tree_cell_seq_backward[_donate]`` are
not public API), and the weight gradient can be summed over chunks of steps
(:data:`WEIGHT_GRAD_CHUNK`) so that only a few steps of d hp are buffered. Not supported: double
backward (create_graph through the op).

NaN and +-Inf propagate as in the reference (tests/ops/test_tree_cell_nonfinite.py), with one
known difference: when the loss uses c_T alone (neither hs nor h_T), torch's autograd never
visits the last step's nodes above c_out, while the op backpropagates a zero gradient through
them, so a non-finite value there gives NaN gradients (0 * Inf) that the reference does not have.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from pynas.arch import RNNCell
from pynas.arch.rnn_cell import ACTIVATIONS, COMBINES
from pynas.ops.reference_cell import reference_cell_sequence

_HEADER = 4  # base, c_out, inject_at, inject_op

#: Steps per GEMM of the backward's weight gradient dU = sum_t h_{t-1}^T d hp_t: the backward
#: keeps d hp of only this many steps and adds their share of dU with one GEMM [H, k*B] x
#: [k*B, N*H] whenever k steps are done (0: all steps, one GEMM after the time loop). 7 steps =
#: 5 GEMMs per PTB window of 35; measured as fast as one GEMM, with 4/5 less buffer memory.
WEIGHT_GRAD_CHUNK = 7


def _op_code(pair: tuple[str, str]) -> int:
    combine, activation = pair
    return COMBINES.index(combine) * len(ACTIVATIONS) + ACTIVATIONS.index(activation)


def program_length(base: int) -> int:
    """Length of one program row for a base-``base`` cell: 2N + 3."""
    return _HEADER + 2 * base - 1


@functools.lru_cache(maxsize=1024)
def _program_tuple(arch: RNNCell) -> tuple[int, ...]:
    return (
        arch.base,
        arch.c_out,
        arch.inject_at,
        _op_code(arch.inject),
        *(_op_code(node) for node in arch.nodes),
    )


def cell_program(arch: RNNCell) -> torch.Tensor:
    """The program of one architecture: an int64 tensor ``[2N+3]``."""
    return torch.tensor(_program_tuple(arch), dtype=torch.int64)


def stack_programs(archs: Sequence[RNNCell]) -> torch.Tensor:
    """Programs of several architectures of one base, as an int64 tensor ``[P, 2N+3]``."""
    archs = list(archs)
    if not archs:
        raise ValueError("stack_programs: expected at least one architecture")
    bases = sorted({a.base for a in archs})
    if len(bases) != 1:
        raise ValueError(
            f"stack_programs: all architectures in one call must share a base, got bases {bases}"
        )
    return torch.tensor([_program_tuple(a) for a in archs], dtype=torch.int64)


def program_to_cell(program: torch.Tensor | Sequence[int]) -> RNNCell:
    """Decode one program row back into an :class:`RNNCell` (validating it)."""
    values = [int(v) for v in (program.tolist() if isinstance(program, torch.Tensor) else program)]
    if len(values) < _HEADER:
        raise ValueError(f"program_to_cell: a program has at least {_HEADER} entries, got {values}")
    base = values[0]
    if len(values) != program_length(base):
        raise ValueError(
            f"program_to_cell: a base-{base} program has {program_length(base)} entries, "
            f"got {len(values)}"
        )
    n_act = len(ACTIVATIONS)

    def pair(code: int) -> tuple[str, str]:
        if not 0 <= code < len(COMBINES) * n_act:
            raise ValueError(f"program_to_cell: op code {code} out of range 0..{2 * n_act - 1}")
        return COMBINES[code // n_act], ACTIVATIONS[code % n_act]

    return RNNCell(
        base=base,
        nodes=tuple(pair(c) for c in values[_HEADER:]),
        inject=pair(values[3]),
        c_out=values[1],
        inject_at=values[2],
    )


Programs = RNNCell | Sequence[RNNCell] | torch.Tensor


def _as_programs(arch: Programs) -> torch.Tensor:
    if isinstance(arch, RNNCell):
        return cell_program(arch).unsqueeze(0)
    if isinstance(arch, torch.Tensor):
        return arch if arch.dim() == 2 else arch.unsqueeze(0)
    return stack_programs(arch)


def tree_cell_sequence(
    arch: Programs,
    xproj: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weight_hh: torch.Tensor,
    row_program: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a BPTT window on the fused op; same contract as
    :func:`pynas.ops.reference_cell.reference_cell_sequence`.

    ``arch`` is one architecture, a list of architectures of one base, or a program tensor
    ``[P, 2N+3]``; with more than one program, ``row_program [B]`` picks each row's program
    (default: every row runs program 0). Returns (hs [T, B, H], h_T, c_T).
    """
    programs = _as_programs(arch)
    if row_program is None:
        if programs.shape[0] != 1:
            raise ValueError(
                f"tree_cell_sequence: {programs.shape[0]} programs given; pass row_program [B] "
                "to say which program each batch row runs"
            )
        row_program = torch.zeros(xproj.shape[1], dtype=torch.int64)
    save = torch.is_grad_enabled() and any(t.requires_grad for t in (xproj, h0, c0, weight_hh))
    # hp_all and cs stay private to autograd, so the backward may reuse hp_all's memory.
    hs, h_last, c_last, _, _ = torch.ops.pynas.tree_cell_seq(
        xproj, h0, c0, weight_hh, programs, row_program, save, True
    )
    return hs, h_last, c_last


def tree_cell_sequence_reference(
    arch: Programs,
    xproj: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weight_hh: torch.Tensor,
    row_program: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pure-PyTorch oracle for :func:`tree_cell_sequence`, rows grouped by program."""
    programs = _as_programs(arch)
    cells = [program_to_cell(p) for p in programs]
    if row_program is None:
        row_program = torch.zeros(xproj.shape[1], dtype=torch.int64)
    steps, batch, _ = xproj.shape
    hidden = h0.shape[1]
    hs = xproj.new_zeros(steps, batch, hidden)
    h_last = xproj.new_zeros(batch, hidden)
    c_last = xproj.new_zeros(batch, hidden)
    for index, cell in enumerate(cells):
        rows = (row_program == index).nonzero().flatten()
        if rows.numel() == 0:
            continue
        out, h, c = reference_cell_sequence(cell, xproj[:, rows], h0[rows], c0[rows], weight_hh)
        hs = _put_rows(hs, rows, out, dim=1)
        h_last = _put_rows(h_last, rows, h, dim=0)
        c_last = _put_rows(c_last, rows, c, dim=0)
    return hs, h_last, c_last


def _put_rows(dst: torch.Tensor, rows: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    return dst.index_copy(dim, rows, src)


# ----- fake kernels and autograd ------------------------------------------------------------------


def _check_fake_inputs(xproj, h0, c0, weight_hh, programs, row_program) -> None:
    torch._check(xproj.dim() == 3, lambda: f"xproj must be 3-D [T, B, N*H], got {xproj.shape}")
    torch._check(h0.dim() == 2, lambda: f"h0 must be 2-D [B, H], got {h0.shape}")
    torch._check(
        xproj.dtype in (torch.float32, torch.float64),
        lambda: f"xproj has dtype {xproj.dtype}; expected float32 or float64",
    )
    for name, t in (("h0", h0), ("c0", c0), ("weight_hh", weight_hh)):
        torch._check(
            t.device == xproj.device,
            lambda name=name, t=t: f"{name} is on {t.device} but xproj is on {xproj.device}",
        )
        torch._check(
            t.dtype == xproj.dtype,
            lambda name=name, t=t: f"{name} has dtype {t.dtype} but xproj has {xproj.dtype}",
        )
    for name, t in (("programs", programs), ("row_program", row_program)):
        torch._check(
            t.device == xproj.device or t.device.type == "cpu",
            lambda name=name, t=t: f"{name} is on {t.device}; expected cpu",
        )
    steps, batch, width = xproj.shape
    hidden = h0.shape[1]
    torch._check(
        tuple(h0.shape) == (batch, hidden) and tuple(c0.shape) == (batch, hidden),
        lambda: f"h0 and c0 must be [B, H] = [{batch}, {hidden}], got {h0.shape}, {c0.shape}",
    )
    torch._check(
        tuple(weight_hh.shape) == (hidden, width),
        lambda: f"weight_hh must be [H, N*H] = [{hidden}, {width}], got {weight_hh.shape}",
    )
    torch._check(
        programs.dim() == 2 and row_program.dim() == 1 and row_program.shape[0] == batch,
        lambda: (
            f"programs must be [P, 2N+3] and row_program [B]; got {programs.shape}, "
            f"{row_program.shape}"
        ),
    )


@torch.library.register_fake("pynas::tree_cell_seq")
def _tree_cell_seq_fake(
    xproj, h0, c0, weight_hh, programs, row_program, save_for_backward=True, _donate_saved=False
):
    _check_fake_inputs(xproj, h0, c0, weight_hh, programs, row_program)
    steps, batch, width = xproj.shape
    hidden = h0.shape[1]
    saved_steps = steps if save_for_backward else 0
    return (
        xproj.new_empty((steps, batch, hidden)),
        xproj.new_empty((batch, hidden)),
        xproj.new_empty((batch, hidden)),
        xproj.new_empty((saved_steps, batch, width)),
        xproj.new_empty((saved_steps, batch, hidden)),
    )


@torch.library.register_fake("pynas::_tree_cell_seq_backward")
def _tree_cell_seq_backward_fake(
    grad_hs, grad_h_last, grad_c_last, xproj, h0, c0, weight_hh, programs, row_program, hs,
    hp_all, cs, weight_grad_chunk=0,
):  # fmt: skip
    _check_fake_inputs(xproj, h0, c0, weight_hh, programs, row_program)
    return (
        torch.empty_like(xproj),
        torch.empty_like(h0),
        torch.empty_like(c0),
        torch.empty_like(weight_hh),
    )


# Let the backward overwrite the saved projections with grad_xproj when the forward was called
# with _donate_saved (as tree_cell_sequence does: it never hands hp_all out) and autograd will
# free them anyway (graph not retained, eager mode). Saves one [T, B, N*H] buffer at the peak.
# Internal switch (benchmarks and tests turn it off).
_DONATE_SAVED = True


def _graph_is_kept() -> bool:
    """Whether the running backward keeps the graph (retain_graph), so that saved tensors will be
    read again. Asks torch's private `_get_current_graph_task_keep_graph`; if a torch version
    lacks it (or it fails), answers True: then nothing is donated, which is always safe."""
    query = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    if query is None:
        return True
    try:
        return bool(query())
    except RuntimeError:
        return True


def _may_donate(hp_all: torch.Tensor) -> bool:
    return (
        _DONATE_SAVED
        and type(hp_all) is torch.Tensor
        and hp_all.is_contiguous()
        and not torch.compiler.is_compiling()
        and not _graph_is_kept()
    )


@torch.library.register_fake("pynas::_tree_cell_seq_backward_donate")
def _tree_cell_seq_backward_donate_fake(
    grad_hs, grad_h_last, grad_c_last, xproj, h0, c0, weight_hh, programs, row_program, hs,
    hp_all, cs, weight_grad_chunk=0,
):  # fmt: skip
    _check_fake_inputs(xproj, h0, c0, weight_hh, programs, row_program)
    return torch.empty_like(h0), torch.empty_like(c0), torch.empty_like(weight_hh)


def _setup_context(ctx, inputs, output) -> None:
    xproj, h0, c0, weight_hh, programs, row_program, save_for_backward, donate_saved = inputs
    hs, _, _, hp_all, cs = output
    ctx.donate_saved = donate_saved
    ctx.mark_non_differentiable(hp_all, cs)
    # Unused outputs get no zero-filled gradient (hp_all's alone would be as big as xproj).
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(xproj, h0, c0, weight_hh, programs, row_program, hs, hp_all, cs)


def _backward(ctx, grad_hs, grad_h_last, grad_c_last, _grad_hp_all, _grad_cs):
    if torch.is_grad_enabled():
        raise RuntimeError(
            "pynas::tree_cell_seq does not support double backward (create_graph=True); "
            "use impl='reference' for higher-order gradients"
        )
    xproj, h0, c0, weight_hh, programs, row_program, hs, hp_all, cs = ctx.saved_tensors
    if grad_hs is None:
        grad_hs = torch.zeros_like(hs)
    if grad_h_last is None:
        grad_h_last = torch.zeros_like(h0)
    if grad_c_last is None:
        grad_c_last = torch.zeros_like(c0)
    args = (grad_hs, grad_h_last, grad_c_last, xproj, h0, c0, weight_hh, programs, row_program)
    if ctx.donate_saved and _may_donate(hp_all):
        # The graph is freed after this backward, so hp_all is never read again: the kernel
        # writes grad_xproj over it instead of allocating another [T, B, N*H] buffer.
        grad_h0, grad_c0, grad_w = torch.ops.pynas._tree_cell_seq_backward_donate(
            *args, hs, hp_all, cs, WEIGHT_GRAD_CHUNK
        )
        torch.autograd.graph.increment_version(hp_all)
        grad_x = hp_all
    else:
        grad_x, grad_h0, grad_c0, grad_w = torch.ops.pynas._tree_cell_seq_backward(
            *args, hs, hp_all, cs, WEIGHT_GRAD_CHUNK
        )
    return grad_x, grad_h0, grad_c0, grad_w, None, None, None, None


torch.library.register_autograd("pynas::tree_cell_seq", _backward, setup_context=_setup_context)


def tree_cell_isa() -> str:
    """The compiled elementwise pass in use: "generic", "avx2" or "avx512"."""
    return torch.ops.pynas.tree_cell_isa()
