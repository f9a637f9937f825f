"""The fused tree-cell sequence op against the pure-PyTorch reference cell."""

from __future__ import annotations

import random

import pytest
import torch

from pynas.arch import ACTIVATIONS, COMBINES, NAMED_CELLS, RNNCell
from pynas.children.tree_rnn import TreeCellLayer
from pynas.ops import (
    cell_program,
    program_to_cell,
    stack_programs,
    tree_cell,
    tree_cell_sequence,
    tree_cell_sequence_reference,
)
from pynas.ops.reference_cell import reference_cell_sequence

NAS = NAMED_CELLS["nas_cell"]


def random_cell(base: int, rng: random.Random, **fixed: int) -> RNNCell:
    num_nodes = 2 * base - 1
    fields = {
        "c_out": rng.randrange(num_nodes),
        "inject_at": rng.randrange(num_nodes),
        **fixed,
    }
    return RNNCell(
        base=base,
        nodes=tuple((rng.choice(COMBINES), rng.choice(ACTIVATIONS)) for _ in range(num_nodes)),
        inject=(rng.choice(COMBINES), rng.choice(ACTIVATIONS)),
        **fields,
    )


def make_inputs(
    base: int, steps: int, batch: int, hidden: int, dtype=torch.float64, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    xproj = torch.randn(steps, batch, base * hidden, dtype=dtype, generator=gen)
    h0 = torch.randn(batch, hidden, dtype=dtype, generator=gen)
    c0 = torch.randn(batch, hidden, dtype=dtype, generator=gen)
    # Small recurrent weights keep values O(1) over the window (like a trained child's).
    weight_hh = torch.randn(hidden, base * hidden, dtype=dtype, generator=gen) / hidden**0.5
    return xproj, h0, c0, weight_hh


def grads_of(outputs, inputs, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    upstream = [torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in outputs]
    return torch.autograd.grad(outputs, inputs, upstream)


def assert_matches_reference(arch, inputs, row_program=None, rtol=1e-10, atol=1e-10) -> None:
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    got = tree_cell_sequence(arch, *leaves, row_program=row_program)
    want = tree_cell_sequence_reference(arch, *leaves, row_program=row_program)
    for name, g, w in zip(("hs", "h_T", "c_T"), got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")
    got_grads = grads_of(got, leaves)
    want_grads = grads_of(want, leaves)
    for name, g, w in zip(("xproj", "h0", "c0", "weight_hh"), got_grads, want_grads, strict=True):
        torch.testing.assert_close(
            g, w, rtol=rtol, atol=atol, msg=lambda m, n=name: f"grad {n}: {m}"
        )


# ----- programs ----------------------------------------------------------------------------------


def test_program_layout_of_the_nas_cell():
    prog = cell_program(NAS)
    assert prog.dtype == torch.int64 and prog.shape == (2 * 8 + 3,)
    # base, c_out, inject_at, inject (add, tanh) = 0*4+1, then node 0 (add, sigmoid) = 2
    assert prog[:5].tolist() == [8, 12, 8, 1, 2]
    assert prog[-1].item() == 1 * 4 + 1  # root: (elem_mult, tanh)


@pytest.mark.parametrize("base", [2, 4, 8, 16])
def test_program_round_trip(base):
    rng = random.Random(base)
    for _ in range(5):
        cell = random_cell(base, rng)
        assert program_to_cell(cell_program(cell)) == cell


def test_stack_programs_needs_one_base():
    rng = random.Random(0)
    assert stack_programs([NAS, random_cell(8, rng)]).shape == (2, 19)
    with pytest.raises(ValueError, match="share a base"):
        stack_programs([NAS, random_cell(4, rng)])
    with pytest.raises(ValueError, match="at least one"):
        stack_programs([])


def test_several_programs_need_row_program():
    rng = random.Random(0)
    inputs = make_inputs(8, 2, 3, 4)
    with pytest.raises(ValueError, match="row_program"):
        tree_cell_sequence([NAS, random_cell(8, rng)], *inputs)


# ----- agreement with the reference --------------------------------------------------------------


def test_nas_cell_float64_matches_reference():
    assert_matches_reference(NAS, make_inputs(8, steps=6, batch=5, hidden=9))


def test_nas_cell_float32_matches_reference():
    inputs = make_inputs(8, steps=8, batch=4, hidden=33, dtype=torch.float32)
    assert_matches_reference(NAS, inputs, rtol=1e-4, atol=2e-5)


def test_no_grad_forward_matches_and_saves_nothing():
    inputs = make_inputs(8, steps=4, batch=3, hidden=5)
    with torch.no_grad():
        got = tree_cell_sequence(NAS, *inputs)
        want = reference_cell_sequence(NAS, *inputs)
        raw = torch.ops.pynas.tree_cell_seq(
            *inputs, cell_program(NAS)[None], torch.zeros(3, dtype=torch.int64), False
        )
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    assert raw[3].numel() == 0 and raw[4].numel() == 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 100])
def test_weight_grad_in_chunks_matches_reference(chunk, monkeypatch):
    """The backward's dU summed with one GEMM per `chunk` steps (ring buffer of d hp)."""
    monkeypatch.setattr(tree_cell, "WEIGHT_GRAD_CHUNK", chunk)
    rng = random.Random(chunk)
    assert_matches_reference(random_cell(4, rng), make_inputs(4, steps=5, batch=3, hidden=4))


@pytest.mark.parametrize("used", ["hs", "h_T", "c_T"])
def test_gradient_of_one_output_only(used):
    """Outputs that do not reach the loss get no gradient at all (None, not zeros)."""
    leaves = [t.requires_grad_() for t in make_inputs(8, steps=4, batch=2, hidden=3)]
    index = ("hs", "h_T", "c_T").index(used)
    got = tree_cell_sequence(NAS, *leaves)[index].sum()
    want = reference_cell_sequence(NAS, *leaves)[index].sum()
    for g, w in zip(
        torch.autograd.grad(got, leaves), torch.autograd.grad(want, leaves), strict=True
    ):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "fixed",
    [
        {"c_out": 14, "inject_at": 14},  # c_t and the injection both at the root
        {"c_out": 3, "inject_at": 3},  # on the same leaf
        {"c_out": 0, "inject_at": 14},
        {"c_out": 14, "inject_at": 0},
    ],
)
def test_c_out_and_inject_corner_cases(fixed):
    cell = random_cell(8, random.Random(7), **fixed)
    assert_matches_reference(cell, make_inputs(8, steps=3, batch=2, hidden=7))


@pytest.mark.parametrize("base", [2, 4, 8])
def test_gradcheck_random_small_trees(base):
    rng = random.Random(100 + base)
    for trial in range(2):
        cell = random_cell(base, rng)
        inputs = [
            t.requires_grad_() for t in make_inputs(base, steps=3, batch=2, hidden=3, seed=trial)
        ]
        assert torch.autograd.gradcheck(
            lambda *a, cell=cell: tree_cell_sequence(cell, *a), inputs, eps=1e-6, atol=1e-5
        )


def test_fuzz_random_architectures_and_shapes():
    """Random architectures of every supported base, shapes with B/H/T = 1, non-contiguous
    inputs, and several programs in one call, all against the reference in float64."""
    rng = random.Random(1234)
    shapes = [(1, 1, 1), (1, 3, 5), (4, 1, 6), (3, 4, 1), (5, 6, 17), (2, 3, 130)]
    case = strided = 0
    for base in (2, 4, 8, 16):
        for steps, batch, hidden in shapes:
            if base == 16 and hidden > 17:
                continue  # keep the reference's runtime small
            case += 1
            num_programs = rng.choice([1, 1, 2, 3])
            cells = [random_cell(base, rng) for _ in range(num_programs)]
            arch = cells[0] if num_programs == 1 else cells
            rows = None
            if num_programs > 1:
                rows = torch.tensor([rng.randrange(num_programs) for _ in range(batch)])
            inputs = list(make_inputs(base, steps, batch, hidden, seed=case))
            if case % 2 == 0:
                # Non-contiguous views with the same values: xproj laid out [B, T, NH] and
                # transposed, weight_hh stored transposed, h0 a strided slice.
                xproj, h0, c0, weight_hh = inputs
                inputs[0] = xproj.transpose(0, 1).contiguous().transpose(0, 1)
                inputs[1] = torch.stack([h0, h0], dim=2)[:, :, 0]
                inputs[3] = weight_hh.t().contiguous().t()
                strided += sum(not t.is_contiguous() for t in inputs)
            assert_matches_reference(arch, inputs, row_program=rows)
    assert strided >= 20  # the non-contiguous layouts really were exercised


def test_several_programs_equal_separate_calls():
    """Rows running program p in a mixed call get what a call with p alone gives (up to the
    GEMM's rounding, which depends on the batch size)."""
    rng = random.Random(5)
    cells = [random_cell(4, rng) for _ in range(3)]
    xproj, h0, c0, weight_hh = make_inputs(4, steps=4, batch=7, hidden=6)
    rows = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    mixed = tree_cell_sequence(cells, xproj, h0, c0, weight_hh, row_program=rows)
    for p, cell in enumerate(cells):
        sel = (rows == p).nonzero().flatten()
        alone = tree_cell_sequence(cell, xproj[:, sel], h0[sel], c0[sel], weight_hh)
        torch.testing.assert_close(mixed[0][:, sel], alone[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mixed[2][sel], alone[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_every_compiled_pass_agrees(isa, monkeypatch):
    """Each instruction-set build of the pass (capped with PYNAS_CELL_ISA) matches the reference
    in float32, including hidden sizes that leave a partial vector and a partial block."""
    monkeypatch.setenv("PYNAS_CELL_ISA", isa)
    rng = random.Random(9)
    for hidden in (5, 16, 131):
        cell = random_cell(8, rng)
        inputs = make_inputs(8, steps=3, batch=3, hidden=hidden, dtype=torch.float32)
        assert_matches_reference(cell, inputs, rtol=1e-4, atol=2e-5)


def test_layer_fused_equals_reference():
    torch.manual_seed(0)
    fused = TreeCellLayer(NAS, input_size=6, hidden_size=5, impl="fused").double()
    ref = TreeCellLayer(NAS, input_size=6, hidden_size=5, impl="reference").double()
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(7, 3, 6, dtype=torch.float64)
    out_f, (h_f, c_f) = fused(x)
    out_r, (h_r, c_r) = ref(x)
    torch.testing.assert_close(out_f, out_r)
    (out_f.sum() + c_f.sum()).backward()
    (out_r.sum() + c_r.sum()).backward()
    for pf, pr in zip(fused.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(pf.grad, pr.grad)


# ----- torch.library integration -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dtype):
    rng = random.Random(3)
    cells = [NAS, random_cell(8, rng)]
    xproj, h0, c0, weight_hh = (
        t.requires_grad_() for t in make_inputs(8, steps=3, batch=4, hidden=5, dtype=dtype)
    )
    programs = stack_programs(cells)
    rows = torch.tensor([0, 1, 1, 0])
    torch.library.opcheck(
        torch.ops.pynas.tree_cell_seq.default, (xproj, h0, c0, weight_hh, programs, rows, True)
    )


@pytest.mark.parametrize("donate", [False, True])
def test_opcheck_backward_ops(donate):
    xproj, h0, c0, weight_hh = make_inputs(8, steps=3, batch=2, hidden=4)
    programs, rows = cell_program(NAS)[None], torch.zeros(2, dtype=torch.int64)
    hs, h_last, c_last, hp_all, cs = torch.ops.pynas.tree_cell_seq(
        xproj, h0, c0, weight_hh, programs, rows
    )
    args = (torch.randn_like(hs), torch.randn_like(h0), torch.randn_like(c0), xproj, h0, c0)
    args += (weight_hh, programs, rows, hs, hp_all.clone(), cs, 2)
    op = (
        torch.ops.pynas._tree_cell_seq_backward_donate
        if donate
        else torch.ops.pynas._tree_cell_seq_backward
    )
    torch.library.opcheck(op.default, args)


def test_retained_graph_backward_twice_gives_the_same_gradients():
    """With retain_graph the saved projections must survive the first backward."""
    leaves = [t.requires_grad_() for t in make_inputs(8, steps=4, batch=3, hidden=5)]
    hs, _, c_last = tree_cell_sequence(NAS, *leaves)
    loss = hs.sum() + c_last.sum()
    first = torch.autograd.grad(loss, leaves, retain_graph=True)
    second = torch.autograd.grad(loss, leaves)
    want = torch.autograd.grad(
        reference_cell_sequence(NAS, *leaves)[0].sum()
        + reference_cell_sequence(NAS, *leaves)[2].sum(),
        leaves,
    )
    for a, b, w in zip(first, second, want, strict=True):
        torch.testing.assert_close(a, w, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(b, w, rtol=1e-10, atol=1e-10)


def _backward_peak_bytes(monkeypatch, donate: bool) -> int:
    from torch.profiler import ProfilerActivity, profile

    monkeypatch.setattr(tree_cell, "_DONATE_SAVED", donate)
    leaves = [t.requires_grad_() for t in make_inputs(8, steps=6, batch=4, hidden=16)]
    hs, _, _ = tree_cell_sequence(NAS, *leaves)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        grads = torch.autograd.grad(hs.sum(), leaves)
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    want = torch.autograd.grad(reference_cell_sequence(NAS, *leaves)[0].sum(), leaves)
    for g, w in zip(grads, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
    return peak


def test_backward_reuses_the_saved_projections(monkeypatch):
    """Without a retained graph, grad_xproj is written over the saved projections: the
    backward's peak is one [T, B, N*H] buffer smaller, and the gradients are unchanged."""
    buffer = 6 * 4 * 8 * 16 * 8  # T * B * N*H float64s
    saved = _backward_peak_bytes(monkeypatch, donate=False)
    donated = _backward_peak_bytes(monkeypatch, donate=True)
    assert saved - donated >= buffer


def _donating_backward_calls(monkeypatch) -> list[int]:
    """Runs one forward + backward (no retain_graph); returns one entry per call of the donating
    backward op, which the autograd formula picks only when it may overwrite the saved state."""
    calls: list[int] = []
    donate = torch.ops.pynas._tree_cell_seq_backward_donate

    def spy(*args):
        calls.append(1)
        return donate(*args)

    monkeypatch.setattr(torch.ops.pynas, "_tree_cell_seq_backward_donate", spy)
    leaves = [t.requires_grad_() for t in make_inputs(8, steps=3, batch=2, hidden=4)]
    grads = torch.autograd.grad(tree_cell_sequence(NAS, *leaves)[0].sum(), leaves)
    want = torch.autograd.grad(reference_cell_sequence(NAS, *leaves)[0].sum(), leaves)
    for g, w in zip(grads, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
    return calls


def test_donation_asks_torch_whether_the_graph_is_kept(monkeypatch):
    assert _donating_backward_calls(monkeypatch) == [1]


@pytest.mark.parametrize("query", ["missing", "raises"])
def test_without_torchs_private_keep_graph_query_nothing_is_donated(query, monkeypatch):
    """torch._C._autograd._get_current_graph_task_keep_graph is private: if a torch version
    lacks it (or it fails), the backward must assume the graph is kept and donate nothing."""
    if query == "missing":
        monkeypatch.delattr(torch._C._autograd, "_get_current_graph_task_keep_graph")
    else:

        def failing() -> bool:
            raise RuntimeError("no graph task")

        monkeypatch.setattr(torch._C._autograd, "_get_current_graph_task_keep_graph", failing)
    assert tree_cell._graph_is_kept()
    assert _donating_backward_calls(monkeypatch) == []


# ----- bad input: an error naming the problem, never a crash -------------------------------------


def _call(xproj, h0, c0, weight_hh, programs=None, rows=None):
    programs = cell_program(NAS)[None] if programs is None else programs
    rows = torch.zeros(xproj.shape[1], dtype=torch.int64) if rows is None else rows
    return torch.ops.pynas.tree_cell_seq(xproj, h0, c0, weight_hh, programs, rows)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.update(xproj=a["xproj"].half()), "float32 or float64"),
        (lambda a: a.update(xproj=a["xproj"].long()), "float32 or float64"),
        (lambda a: a.update(h0=a["h0"].float()), "h0 has dtype Float but xproj has Double"),
        (lambda a: a.update(weight_hh=a["weight_hh"].float()), "weight_hh has dtype"),
        (lambda a: a.update(xproj=a["xproj"][0]), "xproj must be 3-D"),
        (lambda a: a.update(h0=a["h0"][:1]), r"h0 must have shape \[B, H\]"),
        (lambda a: a.update(c0=a["c0"][:, :3]), r"c0 must have shape \[B, H\]"),
        (lambda a: a.update(weight_hh=a["weight_hh"][:, :8]), r"weight_hh must have shape"),
        (lambda a: a.update(xproj=a["xproj"][..., :30]), "multiple of the hidden size"),
        (lambda a: a.update(xproj=a["xproj"][..., :12]), "power of two"),
        (lambda a: a.update(xproj=a["xproj"][:0]), "at least 1"),
        (lambda a: a.update(programs=torch.zeros(1, 19, dtype=torch.int64)), "is for base 0"),
        (lambda a: a.update(programs=a["programs"][:, :10]), r"\[P, 2N\+3\] = \[P, 19\]"),
        (lambda a: a.update(programs=a["programs"].float()), "programs has dtype"),
        (lambda a: a["programs"].__setitem__((0, 1), 15), "c_out = 15"),
        (lambda a: a["programs"].__setitem__((0, 2), -1), "inject_at = -1"),
        (lambda a: a["programs"].__setitem__((0, 9), 8), "op code 8"),
        (lambda a: a.update(rows=torch.tensor([0, 1, 0])), r"row_program\[1\] = 1"),
        (lambda a: a.update(rows=torch.tensor([0, 0])), r"row_program must have shape \[B\]"),
        (lambda a: a.update(h0=a["h0"].to("meta")), "h0 is on meta but xproj is on cpu"),
    ],
)
def test_bad_input_is_reported(mutate, message):
    xproj, h0, c0, weight_hh = make_inputs(8, steps=2, batch=3, hidden=4)
    args = {
        "xproj": xproj, "h0": h0, "c0": c0, "weight_hh": weight_hh,
        "programs": cell_program(NAS)[None].clone(), "rows": None,
    }  # fmt: skip
    mutate(args)
    with pytest.raises(RuntimeError, match=message):
        _call(**args)


def test_base_above_16_is_reported():
    xproj, h0, c0, weight_hh = make_inputs(32, steps=1, batch=1, hidden=1)
    with pytest.raises(RuntimeError, match="power of two in 2..16"):
        _call(xproj, h0, c0, weight_hh)


def test_double_backward_is_reported():
    xproj, h0, c0, weight_hh = (t.requires_grad_() for t in make_inputs(8, 2, 2, 3))
    hs, _, _ = tree_cell_sequence(NAS, xproj, h0, c0, weight_hh)
    with pytest.raises(RuntimeError, match="does not support double backward"):
        torch.autograd.grad(hs.sum(), xproj, create_graph=True)


def test_backward_without_saved_state_is_reported():
    xproj, h0, c0, weight_hh = make_inputs(8, steps=2, batch=3, hidden=4)
    rows = torch.zeros(3, dtype=torch.int64)
    programs = cell_program(NAS)[None]
    out = torch.ops.pynas.tree_cell_seq(xproj, h0, c0, weight_hh, programs, rows, False)
    g = torch.zeros_like(h0)
    with pytest.raises(RuntimeError, match="weight_grad_chunk = -1"):
        torch.ops.pynas._tree_cell_seq_backward(
            torch.zeros_like(h0.expand(2, 3, 4)), g, g, xproj, h0, c0, weight_hh, programs, rows,
            h0.expand(2, 3, 4), torch.zeros(2, 3, 32, dtype=h0.dtype), h0.expand(2, 3, 4), -1,
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="save_for_backward=False"):
        torch.ops.pynas._tree_cell_seq_backward(
            torch.zeros_like(out[0]), g, g, xproj, h0, c0, weight_hh, programs, rows, *out[0:1],
            out[3], out[4],
        )  # fmt: skip
