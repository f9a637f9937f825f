"""Benchmark of the padded skip-concat op and of CNN child training (issue 5).

Two 15-layer architectures, batch 64, 32x32 images, float32:

* ``skip15``   the hand-written example (pynas.arch.NAMED_CONV_NETS): 14 skips, three stages,
               inputs of one concat mostly of equal size (little padding)
* ``sampled``  a 15-layer network sampled by a fresh Controller (seeded) from the paper's
               space: what a search at depth 15 trains; many skips across map sizes, so most
               concats pad
* ``stride1``  the same from the stride-1 variant (the setting of the paper's 15-layer network):
               all maps 32x32, no padding, large concats; op part only (training it takes
               minutes per step on one core)

Part 1, the op: every concatenation the child performs in one forward pass (the layers with two
or more inputs, and the final layer) is replayed on tensors of the recorded shapes, forward +
backward, with

* ``op``         pynas.ops.skip_concat (compiled; autograd through its backward op)
* ``pad+cat``    F.pad each input to the largest map, then torch.cat (the pure-PyTorch reference)

Part 2, the child: training images/second (forward, backward, SGD step) of the whole child with
either concat implementation.

Methods are timed round-robin (one run of each in turn) so machine noise hits all alike; medians
are reported. Threads: 1 by default (the search's setting; see --threads).

    python bench/conv_bench.py            # the tables (about two minutes on one core)
    python bench/conv_bench.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from pynas.arch import NAMED_CONV_NETS, ConvNet
from pynas.children.conv_net import ConvChild
from pynas.controller import Controller
from pynas.ops import skip_concat, skip_concat_reference
from pynas.spaces.conv_space import PAPER_CHOICES, STRIDE1_CHOICES, ConvNetSpace

BATCH = 64
IMAGE = 32


def sampled_arch(depth: int = 15, seed: int = 0, stride1: bool = False) -> ConvNet:
    space = ConvNetSpace(depth, STRIDE1_CHOICES if stride1 else PAPER_CHOICES)
    controller = Controller(space, generator=torch.Generator().manual_seed(seed))
    row = controller.sample(1, generator=torch.Generator().manual_seed(seed + 1)).indices[0]
    return space.to_arch(space.decode(row.tolist()))


def concat_shapes(arch: ConvNet) -> list[list[tuple[int, ...]]]:
    """Input shapes of every concatenation with >= 2 inputs in one forward pass.

    From the architecture alone (output_sizes is what the child produces; tested there).
    """
    sizes = arch.output_sizes(IMAGE)
    groups = [layer.inputs for layer in arch.layers] + [arch.outputs]
    return [
        [(BATCH, arch.layers[j].filters, sizes[j], sizes[j]) for j in group]
        for group in groups
        if len(group) > 1
    ]


def padded_fraction(shapes: list[list[tuple[int, ...]]]) -> float:
    """Share of output elements that are padding zeros."""
    total = pad = 0
    for group in shapes:
        h = max(s[2] for s in group)
        w = max(s[3] for s in group)
        for n, c, hh, ww in group:
            total += n * c * h * w
            pad += n * c * (h * w - hh * ww)
    return pad / total if total else 0.0


def concat_runner(shapes: list[list[tuple[int, ...]]], fn: Callable) -> Callable[[], None]:
    gen = torch.Generator().manual_seed(0)
    inputs = [[torch.randn(s, generator=gen).requires_grad_() for s in group] for group in shapes]
    grads = []
    for group in inputs:
        out = skip_concat_reference([t.detach() for t in group])
        grads.append(torch.randn(out.shape, generator=gen))

    def run() -> None:
        for group, grad in zip(inputs, grads, strict=True):
            out = fn(group)
            torch.autograd.grad(out, group, grad)

    return run


def child_runner(arch: ConvNet, concat: str) -> Callable[[], None]:
    torch.manual_seed(0)
    model = ConvChild(arch, concat=concat).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, IMAGE, IMAGE, generator=gen)
    labels = torch.randint(0, 10, (BATCH,), generator=gen)

    def run() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return run


def time_round_robin(runners: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    """Median seconds per run of each runner, interleaved."""
    for run in runners.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(reps):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def check_equal(shapes: list[list[tuple[int, ...]]]) -> None:
    gen = torch.Generator().manual_seed(1)
    for group in shapes:
        xs = [torch.randn(s, generator=gen) for s in group]
        if not torch.equal(skip_concat(xs), skip_concat_reference(xs)):
            raise SystemExit(f"op and reference differ for shapes {group}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    op_reps, child_reps = (5, 3) if args.quick else (21, 7)
    archs = {
        "skip15": NAMED_CONV_NETS["skip15"],
        "sampled": sampled_arch(),
        "stride1": sampled_arch(stride1=True),
    }
    train = {"skip15", "sampled"}
    results = {}
    print(
        f"torch {torch.__version__}, {platform.machine()}, threads {torch.get_num_threads()}, "
        f"batch {BATCH}, {IMAGE}x{IMAGE}, float32"
    )
    for name, arch in archs.items():
        shapes = concat_shapes(arch)
        check_equal(shapes)
        mb = sum(BATCH * s[1] * s[2] * s[3] for g in shapes for s in g) * 4 / 2**20
        op_times = time_round_robin(
            {
                "op": concat_runner(shapes, skip_concat),
                "pad+cat": concat_runner(shapes, skip_concat_reference),
            },
            op_reps,
        )
        child_times = {}
        if name in train:
            child_times = time_round_robin(
                {"op": child_runner(arch, "op"), "pad+cat": child_runner(arch, "reference")},
                child_reps,
            )
        results[name] = {
            "concats": len(shapes),
            "skips": arch.num_skip_connections,
            "input_mib": mb,
            "padded_fraction": padded_fraction(shapes),
            "concat_ms": {k: v * 1e3 for k, v in op_times.items()},
            "train_images_per_s": {k: BATCH / v for k, v in child_times.items()},
        }
        print(f"\n{name}: {arch.depth} layers, {arch.num_skip_connections} skips")
        print(arch.render())
    print("\n| arch | concats/pass | input MiB | padding | op fwd+bwd ms | pad+cat ms | speed-up |"
          " train img/s (op) | train img/s (pad+cat) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        c, t = r["concat_ms"], r["train_images_per_s"]
        train_op = f"{t['op']:.1f}" if t else "-"
        train_ref = f"{t['pad+cat']:.1f}" if t else "-"
        print(
            f"| {name} | {r['concats']} | {r['input_mib']:.1f} | {r['padded_fraction']:.0%} | "
            f"{c['op']:.1f} | {c['pad+cat']:.1f} | {c['pad+cat'] / c['op']:.2f}x | "
            f"{train_op} | {train_ref} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
