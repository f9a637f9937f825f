"""Benchmark of the fused tree-cell op (issue 4): forward + backward of one BPTT window.

For the NAS cell and a random base-8 cell at (B=64, H=200) and (B=20, H=650), T=35, float32:

* ``op``       the fused op (pynas.ops.tree_cell_sequence)
* ``eager``    the eager reference (pynas.ops.reference_cell.reference_cell_sequence)
* ``compiled`` torch.compile (inductor) of the reference *step*, looped over T in Python
* ``lstm``     nn.LSTM(H, H) over x [T, B, H] (PyTorch's CPU LSTM; includes its input GEMM)
* ``floor``    the op's matrix products alone: T x (h @ U), T x (dhp @ U^T), dU over all steps

Inputs that need gradients: xproj and U (h0, c0 are detached, as in truncated-BPTT training).
Gradients are taken with torch.autograd.grad (nothing accumulates into .grad between runs).
Methods are timed round-robin (one run of each in turn) so that machine noise hits all alike;
medians are reported. Peak memory = the highest running total of CPU allocator bytes (profiler
memory events) during one forward + backward, inputs excluded.

    python bench/cell_bench.py                 # the table (a few minutes on 2 cores)
    python bench/cell_bench.py --ptb           # plus end-to-end PTB training tokens/s
    python bench/cell_bench.py --quick         # fewer repetitions, no torch.compile
    python bench/cell_bench.py --harness       # the elementwise pass alone, per ISA (C++)
    python bench/cell_bench.py --harness --harness-baseline HEAD~3   # ... against older sources
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from pynas.arch import ACTIVATIONS, COMBINES, NAMED_CELLS, RNNCell
from pynas.ops import cell_program, tree_cell, tree_cell_isa, tree_cell_sequence
from pynas.ops.reference_cell import reference_cell_sequence, reference_cell_step
from pynas.tasks.ptb import PTBConfig

STEPS = 35
SHAPES = ((64, 200), (20, 650))
BASE = 8


def random_base8_cell(seed: int = 0) -> RNNCell:
    rng = random.Random(seed)
    nodes = tuple((rng.choice(COMBINES), rng.choice(ACTIVATIONS)) for _ in range(2 * BASE - 1))
    return RNNCell(
        base=BASE,
        nodes=nodes,
        inject=(rng.choice(COMBINES), rng.choice(ACTIVATIONS)),
        c_out=rng.randrange(2 * BASE - 1),
        inject_at=rng.randrange(2 * BASE - 1),
    )


# ----- measurement helpers ---------------------------------------------------------------------


def peak_bytes(fn: Callable[[], object]) -> int:
    """Highest running total of allocator bytes while fn runs (allocations made before the
    call, e.g. the inputs, are not counted; memory fn frees again is)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def held_bytes(fn: Callable[[], object]) -> int:
    """Bytes allocated while fn runs and still held by its result when it returns: for a
    forward pass with autograd on, the outputs plus everything saved for the backward."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    del result
    return sum(e.nbytes() for e in events)


def round_robin(fns: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, float]:
    """Median seconds per call for each fn, timed one call of each in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


# ----- the methods ------------------------------------------------------------------------------


@dataclass
class Case:
    arch_name: str
    arch: RNNCell
    batch: int
    hidden: int
    xproj: torch.Tensor = field(init=False)
    h0: torch.Tensor = field(init=False)
    c0: torch.Tensor = field(init=False)
    weight: torch.Tensor = field(init=False)
    grad_hs: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        b, h, width = self.batch, self.hidden, BASE * self.hidden
        self.xproj = torch.randn(STEPS, b, width, generator=gen).requires_grad_()
        self.h0 = torch.randn(b, h, generator=gen) * 0.1
        self.c0 = torch.randn(b, h, generator=gen) * 0.1
        self.weight = (torch.randn(h, width, generator=gen) / h**0.5).requires_grad_()
        self.grad_hs = torch.randn(STEPS, b, h, generator=gen)


def fwd_bwd(seq_fn: Callable, case: Case, chunk: int | None = None) -> Callable[[], object]:
    """Forward + backward; with `chunk`, the op's dU is summed per chunk of steps."""

    def run():
        hs, _, _ = seq_fn(case.arch, case.xproj, case.h0, case.c0, case.weight)
        return torch.autograd.grad(hs, (case.xproj, case.weight), case.grad_hs)

    if chunk is None:
        return run

    def run_chunked():
        old, tree_cell.WEIGHT_GRAD_CHUNK = tree_cell.WEIGHT_GRAD_CHUNK, chunk
        try:
            return run()
        finally:
            tree_cell.WEIGHT_GRAD_CHUNK = old

    return run_chunked


def fwd_graph(seq_fn: Callable, case: Case) -> Callable[[], object]:
    def run():
        return seq_fn(case.arch, case.xproj, case.h0, case.c0, case.weight)

    return run


def fwd_only(seq_fn: Callable, case: Case) -> Callable[[], object]:
    def run():
        with torch.no_grad():
            return seq_fn(case.arch, case.xproj, case.h0, case.c0, case.weight)

    return run


def compiled_sequence(arch: RNNCell) -> Callable:
    # Every case compiles the same `step` code object: without a reset, dynamo's recompile limit
    # would silently send later cases back to eager.
    torch._dynamo.reset()

    def step(xp, h, c, weight_hh):
        return reference_cell_step(arch, xp, h @ weight_hh, c)

    compiled = torch.compile(step, dynamic=False)

    def seq(_arch, xproj, h0, c0, weight_hh):
        h, c = h0, c0
        outs = []
        for t in range(xproj.shape[0]):
            h, c = compiled(xproj[t], h, c, weight_hh)
            outs.append(h)
        return torch.stack(outs), h, c

    return seq


def floor_fns(case: Case) -> tuple[Callable[[], None], Callable[[], None]]:
    """The op's matrix products alone, into preallocated buffers: forward and forward+backward."""
    b, h, width = case.batch, case.hidden, BASE * case.hidden
    u = case.weight.detach()
    hs = torch.randn(STEPS, b, h)
    hp = torch.empty(STEPS, b, width)
    dh = torch.empty(b, h)
    gu = torch.empty(h, width)

    def forward() -> None:
        for t in range(STEPS):
            torch.mm(hs[t - 1] if t else case.h0, u, out=hp[t])

    def both() -> None:
        forward()
        for t in range(STEPS - 1, -1, -1):
            torch.mm(hp[t], u.t(), out=dh)
        torch.mm(case.h0.t(), hp[0], out=gu)
        gu.addmm_(hs[:-1].reshape(-1, h).t(), hp[1:].reshape(-1, width))

    return forward, both


def lstm_fns(case: Case) -> dict[str, Callable[[], object]]:
    torch.manual_seed(0)
    lstm = nn.LSTM(case.hidden, case.hidden)
    x = torch.randn(STEPS, case.batch, case.hidden, requires_grad=True)
    params = (x, *lstm.parameters())

    def forward():
        with torch.no_grad():
            return lstm(x)

    def both():
        out, _ = lstm(x)
        return torch.autograd.grad(out, params, case.grad_hs)

    return {"fwd": forward, "graph": lambda: lstm(x), "fwd_bwd": both}


def lstm_path() -> str:
    """Which kernel nn.LSTM's forward+backward ran on this machine (from the profiler)."""
    lstm = nn.LSTM(8, 8)
    x = torch.randn(3, 2, 8, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out, _ = lstm(x)
        out.sum().backward()
    names = {e.key for e in prof.key_averages()}
    if any("mkldnn_rnn" in n for n in names):
        return "oneDNN (aten::mkldnn_rnn_layer)"
    return "ATen native (" + ", ".join(sorted(n for n in names if "lstm" in n.lower())) + ")"


# ----- one case -----------------------------------------------------------------------------------


# The op with its default settings ("op") and with dU as one GEMM over all 35 steps after the
# time loop ("op_1gemm", pynas.ops.tree_cell.WEIGHT_GRAD_CHUNK = 0).


def bench_case(case: Case, reps: int, warmup: int, with_compile: bool, with_lstm: bool) -> dict:
    floor_f, floor_fb = floor_fns(case)
    fb = {
        "op": fwd_bwd(tree_cell_sequence, case),
        "op_1gemm": fwd_bwd(tree_cell_sequence, case, chunk=0),
        "eager": fwd_bwd(reference_cell_sequence, case),
        "floor": floor_fb,
    }
    fo = {
        "op": fwd_only(tree_cell_sequence, case),
        "eager": fwd_only(reference_cell_sequence, case),
        "floor": floor_f,
    }
    graph = {
        "op": fwd_graph(tree_cell_sequence, case),
        "eager": fwd_graph(reference_cell_sequence, case),
    }
    compile_s = None
    if with_compile:
        seq = compiled_sequence(case.arch)
        start = time.perf_counter()
        fwd_bwd(seq, case)()  # compiles forward and backward graphs
        compile_s = time.perf_counter() - start
        fb["compiled"] = fwd_bwd(seq, case)
        fo["compiled"] = fwd_only(seq, case)
        graph["compiled"] = fwd_graph(seq, case)
    if with_lstm:
        lstm = lstm_fns(case)
        fb["lstm"], fo["lstm"], graph["lstm"] = lstm["fwd_bwd"], lstm["fwd"], lstm["graph"]
    graph["op_1gemm"] = graph["op"]  # same forward
    return {
        "arch": case.arch_name,
        "B": case.batch,
        "H": case.hidden,
        "T": STEPS,
        "fwd_bwd_ms": {k: v * 1e3 for k, v in round_robin(fb, reps, warmup).items()},
        "fwd_ms": {k: v * 1e3 for k, v in round_robin(fo, reps, warmup).items()},
        "peak_mb": {k: peak_bytes(fn) / 2**20 for k, fn in fb.items() if k != "floor"},
        "held_after_fwd_mb": {k: held_bytes(fn) / 2**20 for k, fn in graph.items()},
        "compile_s": compile_s,
        # Where the op's time goes: its two compiled ops called directly vs their GEMMs alone.
        "parts_ms": op_parts(case, reps, warmup),
    }


def op_parts(case: Case, reps: int, warmup: int) -> dict[str, float]:
    x, u = case.xproj.detach(), case.weight.detach()
    programs = cell_program(case.arch)[None]
    rows = torch.zeros(case.batch, dtype=torch.int64)
    out = torch.ops.pynas.tree_cell_seq(x, case.h0, case.c0, u, programs, rows, True)
    zeros = torch.zeros(case.batch, case.hidden)
    floor_f, floor_fb = floor_fns(case)
    b, h, width = case.batch, case.hidden, BASE * case.hidden
    hp = torch.randn(STEPS, b, width)
    dh = torch.empty(b, h)
    gu = torch.empty(h, width)
    hs = out[0]

    def floor_b() -> None:
        for t in range(STEPS - 1, -1, -1):
            torch.mm(hp[t], u.t(), out=dh)
        torch.mm(case.h0.t(), hp[0], out=gu)
        gu.addmm_(hs[:-1].reshape(-1, h).t(), hp[1:].reshape(-1, width))

    fns = {
        "op_forward": lambda: torch.ops.pynas.tree_cell_seq(
            x, case.h0, case.c0, u, programs, rows, True
        ),
        "op_backward": lambda: torch.ops.pynas._tree_cell_seq_backward(
            case.grad_hs,
            zeros,
            zeros,
            x,
            case.h0,
            case.c0,
            u,
            programs,
            rows,
            *out[0:1],
            out[3],
            out[4],
        ),  # fmt: skip
        "gemm_forward": floor_f,
        "gemm_backward": floor_b,
    }
    return {k: v * 1e3 for k, v in round_robin(fns, reps, warmup).items()}


# ----- end-to-end PTB ---------------------------------------------------------------------------


def ptb_tokens_per_second(
    impl: str, train_tokens: int, data_dir: str, batch: int, threads: int
) -> tuple[float, str]:
    cmd = [
        sys.executable, "-m", "pynas.train", "--task", "ptb", "--arch", "nas_cell",
        "--epochs", "1", "--hidden", "200", "--batch-size", str(batch), "--data-dir", data_dir,
        "--impl", impl, "--train-tokens", str(train_tokens), "--valid-tokens", "2000",
        "--threads", str(threads), "--quiet",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    text = proc.stdout + proc.stderr
    match = re.findall(r"([0-9.]+) tokens/s", text)
    if not match:
        raise RuntimeError(f"no tokens/s in the output of {' '.join(cmd)}:\n{text}")
    return float(match[-1]), " ".join(cmd[1:])


def ptb_window_profile(batch: int, reps: int = 8) -> dict[str, float]:
    """In-process: ms per training window (T=35, H=200, vocab 10000, 2 layers, as
    pynas.train) for both impls, and the fused child's time inside the tree-cell op (forward +
    backward, its GEMMs included) vs everything else (embedding, input projections, decoder,
    softmax, clipping, SGD)."""
    from pynas.children.language_model import CellLanguageModel

    vocab, steps = 10000, STEPS
    tokens = torch.randint(0, vocab, (steps + 1, batch), generator=torch.Generator().manual_seed(0))
    out: dict[str, float] = {}
    for impl in ("fused", "reference"):
        torch.manual_seed(0)
        model = CellLanguageModel(NAMED_CELLS["nas_cell"], vocab, 200, impl=impl)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)

        def window(model=model, opt=opt) -> None:
            logits, _ = model(tokens[:-1], model.init_state(batch))
            loss = nn.functional.cross_entropy(logits.view(-1, vocab), tokens[1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            opt.step()

        out[f"{impl}_window_ms"] = round_robin({"w": window}, reps, 2)["w"] * 1e3
        if impl == "fused":
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(reps):
                    window()
            cell_us = sum(
                e.cpu_time_total
                for e in prof.key_averages()
                if e.key.startswith(("pynas::tree_cell_seq", "pynas::_tree_cell_seq"))
            )
            out["fused_cell_op_ms"] = cell_us / reps / 1e3
    out["fused_rest_ms"] = out["fused_window_ms"] - out["fused_cell_op_ms"]
    out["amdahl_bound"] = out["reference_window_ms"] / out["fused_rest_ms"]
    out.update(ptb_components(vocab, batch, steps, reps))
    return out


def ptb_components(vocab: int, batch: int, steps: int, reps: int) -> dict[str, float]:
    """Parts of the child's window outside the tree cell, timed alone at the same shapes (ms):
    tied decoder + log-softmax + NLL (forward + backward), the two layers' input projections
    (forward + backward), gradient clipping + SGD over the child's parameters."""
    hidden, width, rows = 200, BASE * 200, steps * batch
    x = torch.randn(rows, hidden, requires_grad=True)
    decoder = nn.Linear(hidden, vocab)
    targets = torch.randint(0, vocab, (rows,))
    w_ih = torch.randn(hidden, width, requires_grad=True)
    bias = torch.zeros(width, requires_grad=True)
    g = torch.randn(rows, width)
    params = [torch.randn(3_293_200 // 4, requires_grad=True) for _ in range(4)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.SGD(params, lr=1.0)

    def decoder_loss() -> None:
        loss = nn.functional.cross_entropy(decoder(x), targets)
        torch.autograd.grad(loss, (x, decoder.weight, decoder.bias))

    def input_projections() -> None:
        for _ in range(2):
            torch.autograd.grad(torch.addmm(bias, x, w_ih), (x, w_ih, bias), g)

    def clip_sgd() -> None:
        nn.utils.clip_grad_norm_(params, 0.25)
        opt.step()

    fns = {"decoder_softmax_ms": decoder_loss, "input_proj_ms": input_projections}
    fns["clip_sgd_ms"] = clip_sgd
    return {k: v * 1e3 for k, v in round_robin(fns, reps, 2).items()}


def isa_sweep(reps: int, warmup: int) -> dict[str, dict[str, float]]:
    """The op's forward and backward (NAS cell, B=64, H=200) with the elementwise pass capped
    at each instruction set (PYNAS_CELL_ISA), next to its GEMMs alone: is the pass vectorised?"""
    case = Case("nas_cell", NAMED_CELLS["nas_cell"], *SHAPES[0])
    out = {}
    old = os.environ.get("PYNAS_CELL_ISA")
    try:
        for isa in ("generic", "avx2", "avx512"):
            os.environ["PYNAS_CELL_ISA"] = isa
            parts = op_parts(case, reps, warmup)
            parts["pass"] = tree_cell_isa()
            out[isa] = parts
    finally:
        if old is None:
            os.environ.pop("PYNAS_CELL_ISA", None)
        else:
            os.environ["PYNAS_CELL_ISA"] = old
    return out


# ----- the pass alone: C++ harness ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
HARNESS_DIR = Path(__file__).resolve().with_name("cell_pass_harness")
# The flags CMakeLists.txt compiles csrc/ops/cell/cell_pass_<isa>.cpp with (Release, gnu++17,
# position-independent as in the extension); keep in step with it.
PASS_FLAGS = ["-O3", "-DNDEBUG", "-std=gnu++17", "-fPIC", "-fno-trapping-math", "-fno-math-errno"]
ISA_FLAGS = {
    "generic": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl",
               "-mprefer-vector-width=512"],
}  # fmt: skip
CPU_FLAGS_NEEDED = {"generic": set(), "avx2": {"avx2", "fma"}}
CPU_FLAGS_NEEDED["avx512"] = {"avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"}


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def build_harness(work: Path, sources: dict[str, Path]) -> tuple[Path, list[str]]:
    """Compiles the harness with one pass variant per (source tree, ISA this CPU runs); returns
    the executable and the compile commands."""
    cxx = os.environ.get("CXX", "c++")
    have = cpu_flags()
    objects, commands = [], []
    for label, src in sources.items():
        for isa, flags in ISA_FLAGS.items():
            if not CPU_FLAGS_NEEDED[isa] <= have:
                continue
            name = f"{label}_{isa}"
            obj = work / f"{name}.o"
            cmd = [cxx, *PASS_FLAGS, *flags, f"-I{src}", f"-I{HARNESS_DIR}",
                   f"-DPYNAS_CELL_ISA=harness_{name}", f'-DHARNESS_VARIANT_NAME="{name}"',
                   "-c", str(HARNESS_DIR / "variant.cpp"), "-o", str(obj)]  # fmt: skip
            subprocess.run(cmd, check=True)
            objects.append(str(obj))
            commands.append(" ".join(cmd))
    exe = work / "cell_pass_harness"
    cmd = [cxx, "-O2", "-std=gnu++17", f"-I{REPO / 'csrc'}", f"-I{HARNESS_DIR}",
           str(HARNESS_DIR / "main.cpp"), *objects, "-o", str(exe)]  # fmt: skip
    subprocess.run(cmd, check=True)
    commands.append(" ".join(cmd))
    return exe, commands


def run_harness(baseline: str | None, rounds: int, steps: int, batch: int, hidden: int) -> dict:
    """The forward and backward pass per step, µs, of the NAS cell and random8, for this tree's
    csrc/ and (with `baseline`, a git revision) the baseline's, all variants taking turns in one
    process per cell."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = {"current": REPO / "csrc"}
        if baseline:
            base_dir = work / "baseline"
            base_dir.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", baseline, "csrc"], check=True,
                capture_output=True,
            ).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(base_dir)], input=archive, check=True)
            sources["baseline"] = base_dir / "csrc"
        exe, commands = build_harness(work, sources)
        for cmd in commands:
            print(f"$ {cmd}", flush=True)
        for name, arch in (("nas_cell", NAMED_CELLS["nas_cell"]), ("random8", random_base8_cell())):
            program = [str(v) for v in cell_program(arch).tolist()]
            args = [str(exe), str(batch), str(hidden), str(rounds), str(steps), *program]
            out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
            results[name] = [json.loads(line) for line in out.splitlines() if line.strip()]
            print_harness(name, results[name], baseline, rounds, steps, batch, hidden)
    return results


def print_harness(name, results, baseline, rounds, steps, batch, hidden) -> None:
    by_name = {r["variant"]: r for r in results}
    print(f"\n{name}, B={batch}, H={hidden}, float32, 1 thread, median of {rounds} rounds "
          f"of {steps} calls; µs per time step:")  # fmt: skip
    for r in results:
        line = f"{r['variant']:18s} fwd {r['fwd_us']:8.2f}  bwd {r['bwd_us']:8.2f}"
        base = by_name.get(r["variant"].replace("current_", "baseline_"))
        if baseline and base and base is not r:
            line += (f"   current / baseline: fwd {r['fwd_us'] / base['fwd_us']:.3f}, "
                     f"bwd {r['bwd_us'] / base['bwd_us']:.3f}")  # fmt: skip
        print(line, flush=True)


# ----- report -----------------------------------------------------------------------------------


def machine() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        keep = ("Model name", "CPU(s):", "Thread(s) per core", "L2 cache", "L3 cache")
        info = "; ".join(" ".join(ln.split()) for ln in lines if ln.startswith(keep))
    except OSError:
        info = platform.processor()
    return info


def markdown(results: list[dict]) -> str:
    rows = [
        "| cell | B×H | method | fwd ms | fwd+bwd ms | ÷ floor | op speed-up | "
        "peak MB fwd+bwd | ÷ eager | held after fwd MB | ÷ eager |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        fb, fo, peak, held = r["fwd_bwd_ms"], r["fwd_ms"], r["peak_mb"], r["held_after_fwd_mb"]
        for method in ("op", "op_1gemm", "eager", "compiled", "lstm", "floor"):
            if method not in fb:
                continue
            speed = "" if method in ("op", "floor") else f"{fb[method] / fb['op']:.2f}×"
            fwd = f"{fo[method]:.1f}" if method in fo else ""
            mem = ["", "", "", ""]
            if method in peak:
                mem = [
                    f"{peak[method]:.1f}",
                    f"{peak[method] / peak['eager']:.2f}",
                    f"{held[method]:.1f}",
                    f"{held[method] / held['eager']:.2f}",
                ]
            rows.append(
                f"| {r['arch']} | {r['B']}×{r['H']} | {method} | {fwd} | {fb[method]:.1f} | "
                f"{fb[method] / fb['floor']:.2f} | {speed} | " + " | ".join(mem) + " |"
            )
    return "\n".join(rows)


def parts_markdown(results: list[dict]) -> str:
    rows = [
        "| cell | B×H | op fwd | GEMMs fwd | op bwd | GEMMs bwd | elementwise+overhead fwd / bwd |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p = r["parts_ms"]
        rows.append(
            f"| {r['arch']} | {r['B']}×{r['H']} | {p['op_forward']:.1f} | "
            f"{p['gemm_forward']:.1f} | {p['op_backward']:.1f} | {p['gemm_backward']:.1f} | "
            f"{p['op_forward'] - p['gemm_forward']:.1f} / "
            f"{p['op_backward'] - p['gemm_backward']:.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 reps, no torch.compile")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--ptb", action="store_true", help="also end-to-end PTB tokens/s")
    parser.add_argument("--ptb-tokens", type=int, default=35000)
    parser.add_argument("--ptb-repeats", type=int, default=3)
    parser.add_argument(
        "--ptb-batch", type=int, default=PTBConfig().batch_size, help="default: the PTB child's"
    )
    parser.add_argument("--ptb-only", action="store_true", help="only the PTB measurements")
    parser.add_argument("--isa-sweep", action="store_true", help="only: the pass per ISA")
    parser.add_argument(
        "--harness", action="store_true", help="only: the pass alone per ISA, C++ harness"
    )
    parser.add_argument(
        "--harness-baseline", metavar="REV", help="with --harness: also csrc/ of git REV"
    )
    parser.add_argument("--harness-rounds", type=int, default=21)
    parser.add_argument("--harness-steps", type=int, default=200)
    parser.add_argument("--data-dir", default=os.environ.get("PYNAS_DATA", "../shared/data/ptb"))
    parser.add_argument("--json", help="write raw results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.warmup, args.no_compile = 5, 1, True
    torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    print(f"machine: {machine()}", flush=True)
    if args.harness:
        run_harness(args.harness_baseline, args.harness_rounds, args.harness_steps, *SHAPES[0])
        print(f"\nload average before {load_before}, after {os.getloadavg()}")
        return 0
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"tree-cell pass: {tree_cell_isa()}, nn.LSTM path: {lstm_path()}",
        flush=True,
    )
    random_cell = random_base8_cell(0)
    print(f"random base-8 cell (seed 0): {random_cell.to_json()}", flush=True)
    results = []
    if args.isa_sweep:
        sweep = isa_sweep(args.reps, args.warmup)
        for isa, p in sweep.items():
            print(
                f"{isa:8s} ({p['pass']}): op fwd {p['op_forward']:.2f} ms (GEMMs "
                f"{p['gemm_forward']:.2f}), op bwd {p['op_backward']:.2f} ms (GEMMs "
                f"{p['gemm_backward']:.2f}); elementwise+overhead "
                f"{p['op_forward'] - p['gemm_forward']:.2f} / "
                f"{p['op_backward'] - p['gemm_backward']:.2f} ms"
            )
        return 0
    for batch, hidden in () if args.ptb_only else SHAPES:
        for name, arch in (("nas_cell", NAMED_CELLS["nas_cell"]), ("random8", random_cell)):
            case = Case(name, arch, batch, hidden)
            r = bench_case(case, args.reps, args.warmup, not args.no_compile, name == "nas_cell")
            results.append(r)
            print(json.dumps(r), flush=True)
    report = {
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "threads": args.threads,
        "isa": tree_cell_isa(),
        "cases": results,
    }
    if args.ptb or args.ptb_only:
        runs: dict[str, list[float]] = {"fused": [], "reference": []}
        for _ in range(args.ptb_repeats):  # alternating, so that machine noise hits both
            for impl in runs:
                value, cmd = ptb_tokens_per_second(
                    impl, args.ptb_tokens, args.data_dir, args.ptb_batch, args.threads
                )
                runs[impl].append(value)
                print(f"PTB {impl}: {value:.0f} tokens/s  ({cmd})", flush=True)
        tps = {impl: statistics.median(v) for impl, v in runs.items()}
        print(
            f"PTB median tokens/s: fused {tps['fused']:.0f}, reference {tps['reference']:.0f}, "
            f"ratio {tps['fused'] / tps['reference']:.2f}",
            flush=True,
        )
        report["ptb_tokens_per_second"] = tps
        report["ptb_tokens_per_second_runs"] = runs
        report["ptb_batch"] = args.ptb_batch
        report["ptb_window_profile"] = ptb_window_profile(args.ptb_batch)
        print(json.dumps(report["ptb_window_profile"]), flush=True)
    print()
    print(markdown(results))
    print()
    print(parts_markdown(results))
    print(f"\nload average before {load_before}, after {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
