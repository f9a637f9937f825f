"""Speed of the shared-weights model (issue 12, item 7): training and scoring.

* ``train``: tokens/s of ``SharedEngine.train_step`` (embedding, both layers, decoder, loss,
  backward, clip, SGD step, isolation checks) with m = 1, 4, 8, 16 architectures per batch
  at the same batch (H = 200, B = 64 or --batch-size, T = 35), of a plain step without
  isolation (m = 8), and of a step with ``clip_per_arch`` (one op call per architecture and
  layer, m = 8).
  Architectures are random base-8 cells screened to score finite, and the learning rate is 0
  so that they stay so (no masking while timed; a timed step that masked is reported).
  Methods alternate, medians are reported.
* ``score``: architectures scored per second by ``SharedEngine.score`` batched (m per call)
  vs one per call, and where the time goes: the layers vs the decoder + softmax.
* ``domination``: with a trained engine (``--engine``), each of 64 random cells alone on one
  window: its loss and the norm of its own gradient, by loss band — how far a bad but finite
  cell's gradient outweighs a normal one's under one global clip.
* ``slices``: with a trained engine (``--engine``, written by bench/shared_ranking.py), how
  well short validation slices rank architectures compared with the whole validation split
  (Kendall tau, Spearman rho, top-k overlap) and what they cost.

    python bench/shared_bench.py --what train,score --threads 1
    python bench/shared_bench.py --what train --batch-size 16 --threads 1
    python bench/shared_bench.py --what slices --engine runs/shared_rank/engine.pt --threads 1
    python bench/shared_bench.py --what domination --engine runs/shared_rank/engine.pt
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from pynas.arch import RNNCell
from pynas.io import JsonlFile
from pynas.ops import stack_programs
from pynas.spaces import RNNCellSpace
from pynas.tasks.ptb import batchify, load_corpus
from pynas.tasks.ptb.shared import SharedConfig, SharedEngine, rows_per_program

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rank_stats import kendall_tau, spearman_rho, top_overlap  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"


def stable_pool(engine: SharedEngine, count: int, seed: int) -> list[RNNCell]:
    """`count` random base-8 cells that score finite over 8 windows with the engine's weights."""
    space, rng = RNNCellSpace(engine.config.base), random.Random(seed)
    pool: list[RNNCell] = []
    while len(pool) < count:
        archs = [space.to_arch(space.sample(rng)) for _ in range(8)]
        results = engine.evaluate(archs, engine.valid_data[: 8 * engine.config.bptt + 1])
        pool += [a for a, r in zip(archs, results, strict=True) if r.ok]
    return pool[:count]


def plain_step(engine: SharedEngine, archs: list[RNNCell]) -> None:
    """One training step without isolation: mean loss of all rows, clip, SGD."""
    model, config = engine.model, engine.config
    inputs, targets = engine._next_window()
    row_program = rows_per_program(len(archs), config.batch_size)
    logits, state = model(inputs, engine.state, stack_programs(archs), row_program)
    engine.state = [(h.detach(), c.detach()) for h, c in state]
    loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
    engine.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    engine.optimizer.step()


def bench_train(
    engines: dict[str, SharedEngine], pool: list[RNNCell], reps: int, rng: random.Random
) -> None:
    """engines: "engine" (one op call per layer), "plain" (for plain_step), "split"
    (clip_per_arch)."""
    config = engines["engine"].config
    tokens = config.batch_size * config.bptt
    methods = [f"engine m={m}" for m in (1, 4, 8, 16)] + ["plain m=8", "split m=8"]
    times: dict[str, list[float]] = {name: [] for name in methods}
    masked_steps = 0
    for rep in range(reps + 1):  # the first round warms up and is not counted
        for name in methods:
            m = int(name.split("m=")[1])
            archs = rng.sample(pool, m)
            start = time.perf_counter()
            if name.startswith("plain"):
                plain_step(engines["plain"], archs)
            else:
                report = engines[name.split()[0]].train_step(archs)
                masked_steps += rep > 0 and (report.attempts > 1 or sum(report.masked_rows) > 0)
            if rep > 0:
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["engine m=1"])
    print(f"\ntraining step, H={config.hidden} B={config.batch_size} T={config.bptt}, "
          f"median of {reps} (timed steps that masked rows: {masked_steps})")  # fmt: skip
    print("| method | s/step | tokens/s | ÷ engine m=1 |\n|---|---:|---:|---:|")
    for name in methods:
        t = statistics.median(times[name])
        print(f"| {name} | {t:.3f} | {tokens / t:,.0f} | {t / base:.3f} |")


def bench_score(engine: SharedEngine, pool: list[RNNCell], reps: int, per_call: int):
    config = engine.config
    batched, single, layers, decoder = [], [], [], []
    archs = pool[:per_call]
    window = engine.valid_data[: config.score_windows * config.bptt + 1]
    for _ in range(reps + 1):
        start = time.perf_counter()
        engine.evaluate(archs, window)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        for arch in archs:
            engine.evaluate([arch], window)
        single.append(time.perf_counter() - start)
        # the batched call again, split into its layers and its decoder + softmax
        tokens = window.repeat(1, per_call)
        row_program = torch.arange(per_call).repeat_interleave(window.shape[1])
        programs = stack_programs(archs)
        with torch.no_grad():
            engine.model.eval()
            state = engine.model.init_state(tokens.shape[1])
            t_layers = t_decoder = 0.0
            for first in range(0, tokens.shape[0] - 1, config.bptt):
                inputs = tokens[first : first + config.bptt]
                targets = tokens[first + 1 : first + 1 + config.bptt]
                start = time.perf_counter()
                hidden, state = engine.model.hidden_states(inputs, state, programs, row_program)
                t_layers += time.perf_counter() - start
                start = time.perf_counter()
                engine._row_loss_sums(hidden, targets)
                t_decoder += time.perf_counter() - start
            engine.model.train()
        layers.append(t_layers)
        decoder.append(t_decoder)
    batched, single, layers, decoder = (x[1:] for x in (batched, single, layers, decoder))
    t_b, t_s = statistics.median(batched), statistics.median(single)
    t_l, t_d = statistics.median(layers), statistics.median(decoder)
    scored = config.score_windows * config.bptt * config.eval_batch_size
    shape = f"{config.eval_batch_size} rows x {config.score_windows} windows"
    print(f"\nscoring {per_call} architectures on {scored} validation tokens each ({shape}), "
          f"median of {reps}")  # fmt: skip
    print("| method | s per call | architectures/s |\n|---|---:|---:|")
    print(f"| batched ({per_call} per call) | {t_b:.3f} | {per_call / t_b:.2f} |")
    print(f"| one per call | {t_s / per_call:.3f} | {per_call / t_s:.2f} |")
    total = t_l + t_d
    print(f"batched call split: layers {t_l:.3f} s ({t_l / total:.0%}), "
          f"decoder + softmax {t_d:.3f} s ({t_d / total:.0%})")  # fmt: skip


def bench_slices(engine: SharedEngine, archs: list[RNNCell], shapes: list[tuple[int, int]]):
    """Ranking by short slices vs by the whole validation split, over all architectures and
    over the close ones (whole-split ppl within 2x of the best), whose order is the hard part."""
    start = time.perf_counter()
    full = [r.metrics.get("ppl", math.inf) for r in engine.rank(archs)]
    full_seconds = time.perf_counter() - start
    close = [i for i, p in enumerate(full) if p <= 2 * min(full)]
    print(f"\n{len(archs)} architectures ({len(close)} close); whole validation split: "
          f"{full_seconds:.1f} s; ppl {[f'{p:.0f}' for p in sorted(full)]}")  # fmt: skip
    print("| rows x windows | tokens/arch | s for all | tau | rho | top-5 overlap | tau close |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for rows, windows in shapes:
        data = batchify(engine.valid_ids, rows)[: windows * engine.config.bptt + 1]
        start = time.perf_counter()
        ppl = []
        for first in range(0, len(archs), 8):
            results = engine.evaluate(archs[first : first + 8], data)
            ppl += [r.metrics.get("ppl", math.inf) for r in results]
        seconds = time.perf_counter() - start
        tau_close = kendall_tau([ppl[i] for i in close], [full[i] for i in close])
        print(f"| {rows} x {windows} | {rows * (data.shape[0] - 1):,} | {seconds:.1f} | "
              f"{kendall_tau(ppl, full):.3f} | {spearman_rho(ppl, full):.3f} | "
              f"{top_overlap(ppl, full, 5)} | {tau_close:.3f} |")  # fmt: skip


def bench_domination(engine: SharedEngine, count: int, seed: int) -> None:
    """Each of `count` random cells alone on 8 rows of one training window (zero state): its
    mean loss and the norm of its own gradient (all parameters, before clipping)."""
    space, rng = RNNCellSpace(engine.config.base), random.Random(seed)
    model = engine.model
    model.train()
    inputs, targets = engine._next_window()
    rows = min(8, inputs.shape[1])
    one = torch.zeros(rows, dtype=torch.int64)
    found = []
    for _ in range(count):
        arch = space.to_arch(space.sample(rng))
        logits, _ = model(inputs[:, :rows], model.init_state(rows), stack_programs([arch]), one)
        loss = nn.functional.cross_entropy(
            logits.view(-1, logits.shape[-1]), targets[:, :rows].reshape(-1)
        )
        model.zero_grad(set_to_none=True)
        norm = float("nan")
        if torch.isfinite(loss):
            loss.backward()
            grads = [p.grad.norm() for p in model.parameters() if p.grad is not None]
            norm = float(torch.linalg.vector_norm(torch.stack(grads)))
        found.append((float(loss.detach()), norm))
    model.zero_grad(set_to_none=True)
    best = min(loss for loss, _ in found if loss == loss)
    edges = [best + d for d in (0.5, 1.0, 2.0)] + [engine.loss_limit, math.inf]
    bands, low = [], -math.inf
    for high in edges:
        bands.append((low, high, [g for loss, g in found if low <= loss < high and g == g]))
        low = high
    reference = statistics.median(bands[0][2])
    print(f"\n{count} random cells, one window each (8 rows); best loss {best:.2f}; reference:"
          f" median gradient norm within 0.5 nats of the best, {reference:.3g}")  # fmt: skip
    print("| loss band (nats) | cells | median grad norm | max grad norm | max ÷ reference |")
    print("|---|---:|---:|---:|---:|")
    for lo, hi, norms in bands:
        if norms:
            print(f"| [{lo:.2f}, {hi:.2f}) | {len(norms)} | {statistics.median(norms):.3g} | "
                  f"{max(norms):.3g} | {max(norms) / reference:.3g} |")  # fmt: skip
    bad = sum(1 for loss, g in found if not (g == g and loss == loss))
    print(f"non-finite loss or gradient: {bad} of {count}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--what", default="train,score", help="train, score, slices, domination (comma list)"
    )
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--per-call", type=int, default=8, help="architectures per scoring call")
    p.add_argument("--engine", help="a trained engine (torch.save of state_dict) for slices")
    p.add_argument("--archs", help="JSONL of architectures for slices (default: 40 random)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="training rows per step for train (the issue's table: 64; SharedConfig: 16)",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    machine = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {machine}")
    corpus = load_corpus(args.data_dir)
    rng = random.Random(args.seed)
    what = set(args.what.split(","))
    if what & {"train", "score"}:
        # lr 0: the weights stay those the pool was screened with, so no timed step masks
        # rows (a step does the same work at any learning rate); no outlier masking, which
        # changes no work either (outliers are left out of the loss, not out of the pass).
        config = SharedConfig(
            batch_size=args.batch_size, lr=0.0, outlier_nats=None, clip_per_arch=False
        )
        engine = SharedEngine(config, corpus)
        pool = stable_pool(engine, 32, args.seed)
        if "train" in what:
            engines = {
                "engine": engine,
                "plain": SharedEngine(config, corpus),
                "split": SharedEngine(config.with_(clip_per_arch=True), corpus),
            }
            bench_train(engines, pool, args.reps, rng)
        if "score" in what:
            bench_score(engine, pool, args.reps, args.per_call)
    if what & {"slices", "domination"}:
        state = torch.load(args.engine, weights_only=False)
        engine = SharedEngine(SharedConfig(**state["config"]), corpus)
        engine.load_state_dict(state)
    if "domination" in what:
        bench_domination(engine, 64, args.seed)
    if "slices" in what:
        if args.archs:
            records = JsonlFile(args.archs).read(repair=False).records
            archs = [RNNCell.from_dict(r["arch"]) for r in records]
        else:
            space = RNNCellSpace(engine.config.base)
            archs = [space.to_arch(space.sample(rng)) for _ in range(40)]
        shapes = [(10, 1), (10, 2), (10, 4), (10, 8), (40, 1), (40, 2), (80, 1), (10, 20)]
        bench_slices(engine, archs, shapes)


if __name__ == "__main__":
    main()
