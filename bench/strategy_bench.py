"""Search strategies on tabular NAS benchmarks, through the public ask/tell API (issue 13).

Each benchmark is a :class:`pynas.spaces.DecisionSpace` plus an objective read from its table;
every strategy runs for S seeds until it has spent a budget of queries, and the bench prints per
strategy how many queries it needed until the best reward seen reached the table's top 1% and
top 0.1%, and the best reward after 50/100/200/1,000 queries.

Query accounting (the same rule for every strategy):

* A **query** is the first time a distinct architecture (decision vector) is told. It costs one
  query whatever its outcome: an invalid architecture (EC-NAS cells that are disconnected or
  have too many edges) is told as a failure (``None``) and costs a query like any other, as a
  failed child costs a child in a search.
* An architecture that was already evaluated is answered from the bench's cache and told again
  at no charge (a search would look it up in its log). A strategy that keeps re-proposing what
  it has seen therefore stalls instead of paying; so that a collapsed strategy cannot loop
  forever, a run also ends after ``--patience`` (default 1,000) tells in a row that brought no
  new architecture, or after ``--max-tells`` (default 20 x budget) tells in all.
* The bench asks each strategy for its own batch: ``batch_size`` architectures for REINFORCE /
  PPO, one at a time for random search and evolution (evolution's most favourable setting).
  If a batch crosses the budget, the run ends at the budget's last query.
* "Queries to top p" is the number of queries spent when the best reward seen first reaches the
  value of the table's ceil(p x rows)-th best row (rows = distinct architectures in the table:
  EC-NAS's 2,532 unique cells, SpikeNAS's 15,625). A run that never reaches it within the
  budget counts as the budget in the mean (a lower bound) and the "reached" column says how many
  runs got there.

Benchmarks (``--tables``): ``spikenas`` (SpikeNAS-Bench CIFAR-10: 6 x 5-way, reward
``best_val_acc``), ``ecnas`` (EC-NAS-Bench 5V9E: 13 decisions, reward ``validation_accuracy``,
4,968 of 27,648 combinations invalid), and synthetic objectives ``synth:DxK:SEED`` (D decisions
of K choices: a random additive plus pairwise-interaction objective, see
:func:`synthetic_table`; top quantiles estimated from 10^6 uniform samples when the space is
larger than that). The tables are read from ``--bench-dir`` (default ``../shared/benchmarks``);
nothing of them is copied into the repository.

Strategies (``--strategies``, comma-separated specs ``NAME[:key=value;key=value]``):
``random``, ``evolution:population_size=100;sample_size=10``, ``reinforce:preset=paper;lr=5e-3``,
``ppo``, ... (values are parsed as Python literals).

``--overhead`` instead times ask + tell per architecture on a 34-decision space.

Example: ``python bench/strategy_bench.py --seeds 20 --budget 1000 --jobs 2``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import itertools
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pynas.spaces import DecisionSpace
from pynas.strategies import PPO, RandomSearch, RegularizedEvolution, Reinforce, Strategy

CHECKPOINTS = (50, 100, 200, 1000)
TOPS = (0.01, 0.001)
DEFAULT_STRATEGIES = (
    "random",
    "evolution:population_size=100;sample_size=25",
    "evolution:population_size=100;sample_size=10",
    "evolution:population_size=50;sample_size=10",
    "evolution:population_size=20;sample_size=5",
    "reinforce:preset=paper",
    "reinforce:preset=enas",
    "reinforce:preset=paper;lr=5e-3",
    "reinforce",
    "ppo",
)


# ----- benchmarks ---------------------------------------------------------------------------------
@dataclass
class Table:
    """A benchmark: a space, the objective of an index vector (None: invalid), the row values."""

    name: str
    space: DecisionSpace
    objective: Callable[[tuple[int, ...]], float | None]
    values: np.ndarray  # the reward of every distinct architecture of the table
    note: str

    def threshold(self, top: float) -> float:
        """Value of the ceil(top * rows)-th best row: reaching it means being in the top."""
        k = max(1, math.ceil(top * len(self.values)))
        return float(np.sort(self.values)[::-1][k - 1])


def load_spikenas(bench_dir: Path) -> Table:
    path = bench_dir / "spikenas_bench_cifar10" / "spikenas_cifar10_table.csv"
    edges = ("e01", "e02", "e03", "e12", "e13", "e23")
    reward: dict[tuple[int, ...], float] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            reward[tuple(int(row[e]) for e in edges)] = float(row["best_val_acc"])
    space = DecisionSpace({e: list(range(5)) for e in edges})
    if len(reward) != space.size:
        raise SystemExit(f"{path}: expected {space.size} architectures, found {len(reward)}")
    return Table(
        "spikenas",
        space,
        reward.__getitem__,
        np.array(list(reward.values())),
        "SpikeNAS-Bench CIFAR-10, 6 x 5-way, reward best_val_acc (%)",
    )


def load_ecnas(bench_dir: Path) -> Table:
    folder = bench_dir / "ecnas_bench_5v9e"
    accuracy: dict[str, float] = {}
    with open(folder / "ecnas_5v9e_table.csv", newline="") as f:
        for row in csv.DictReader(f):
            accuracy[row["model_hash"]] = float(row["validation_accuracy"])
    names = ("e01", "e02", "e03", "e04", "e12", "e13", "e14", "e23", "e24", "e34")
    names += ("op1", "op2", "op3")
    reward: dict[tuple[int, ...], float | None] = {}
    with open(folder / "ecnas_5v9e_decisions.csv", newline="") as f:
        for row in csv.DictReader(f):
            key = tuple(int(row[n]) for n in names)
            reward[key] = accuracy[row["model_hash"]] if row["status"] == "ok" else None
    space = DecisionSpace({n: [0, 1] if n.startswith("e") else [0, 1, 2] for n in names})
    if len(reward) != space.size:
        raise SystemExit(f"{folder}: expected {space.size} decision vectors, found {len(reward)}")
    return Table(
        "ecnas",
        space,
        reward.__getitem__,
        np.array(list(accuracy.values())),
        "EC-NAS-Bench 5V9E, 10 x 2-way + 3 x 3-way, reward validation_accuracy; "
        f"{sum(v is None for v in reward.values()):,} of {space.size:,} vectors invalid",
    )


def synthetic_table(decisions: int, choices: int, seed: int) -> Table:
    """A random objective: additive terms plus pairwise interactions of comparable weight.

    f(x) = sum_i a_i[x_i] + sum_{(i,j) in P} b_ij[x_i, x_j], a ~ N(0, 1), b ~ N(0, 1), where P
    holds every decision's pairs with its two successors (a ring), so the optimum is not the
    per-decision argmax. Rows: every architecture if there are at most 10^6, else 10^6 uniform
    samples (the top quantiles are then estimates).
    """
    rng = np.random.default_rng(seed)
    unary = rng.normal(size=(decisions, choices))
    pairs = [(i, (i + k) % decisions) for i in range(decisions) for k in (1, 2) if decisions > k]
    pairs = sorted({tuple(sorted(p)) for p in pairs if p[0] != p[1]})
    binary = rng.normal(size=(len(pairs), choices, choices))
    left = np.array([p[0] for p in pairs], dtype=np.int64)
    right = np.array([p[1] for p in pairs], dtype=np.int64)

    def value(x: np.ndarray) -> np.ndarray:  # x: [N, D] indices
        total = unary[np.arange(decisions), x].sum(axis=1)
        total += binary[np.arange(len(pairs)), x[:, left], x[:, right]].sum(axis=1)
        return total

    size = choices**decisions
    if size <= 10**6:
        grid = np.array(list(itertools.product(range(choices), repeat=decisions)))
    else:
        grid = np.random.default_rng(seed + 1).integers(0, choices, size=(10**6, decisions))
    space = DecisionSpace({f"d{i}": list(range(choices)) for i in range(decisions)})
    return Table(
        f"synth:{decisions}x{choices}:{seed}",
        space,
        lambda key: float(value(np.array([key]))[0]),
        value(grid),
        f"synthetic {decisions} x {choices}-way, additive + ring pairwise, seed {seed}"
        + ("" if size <= 10**6 else " (quantiles from 10^6 samples)"),
    )


def load_table(spec: str, bench_dir: Path) -> Table:
    if spec == "spikenas":
        return load_spikenas(bench_dir)
    if spec == "ecnas":
        return load_ecnas(bench_dir)
    if spec.startswith("synth:"):
        _, shape, seed = spec.split(":")
        d, k = shape.split("x")
        return synthetic_table(int(d), int(k), int(seed))
    raise SystemExit(f"unknown table {spec!r}: use spikenas, ecnas or synth:DxK:SEED")


# ----- strategies ---------------------------------------------------------------------------------
def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(";")):
        key, _, text = item.partition("=")
        try:
            kwargs[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = text.strip()
    return name, kwargs


def make_strategy(spec: str, space: DecisionSpace, seed: int) -> Strategy:
    name, kwargs = parse_strategy(spec)
    if name == "random":
        return RandomSearch(space, seed=seed, **kwargs)
    if name == "evolution":
        return RegularizedEvolution(space, seed=seed, **kwargs)
    if name == "reinforce":
        settings = kwargs.pop("preset", None)
        if settings is None:
            return Reinforce(space, seed=seed, **kwargs)
        return Reinforce(space, settings, seed=seed, **kwargs)
    if name == "ppo":
        return PPO(space, seed=seed, **kwargs)
    raise SystemExit(f"unknown strategy {name!r}")


# ----- one run ------------------------------------------------------------------------------------
@dataclass
class Run:
    best: list[float]  # best reward seen after each query (index q-1); -inf until a success
    tells: int
    seconds: float


def run_once(
    table: Table, spec: str, seed: int, budget: int, max_tells: int, patience: int = 1000
) -> Run:
    torch.set_num_threads(1)
    strategy = make_strategy(spec, table.space, seed)
    batch = getattr(strategy, "batch_size", 1)
    cache: dict[tuple[int, ...], float | None] = {}
    best: list[float] = []
    current, tells, stale = -math.inf, 0, 0
    start = time.perf_counter()
    while len(best) < budget and tells < max_tells and stale < patience:
        archs = strategy.ask(batch)
        rewards: list[float | None] = []
        for arch in archs:
            key = tuple(table.space.encode(arch))
            stale += 1
            if key not in cache:
                stale = 0
                if len(best) == budget:
                    break
                cache[key] = table.objective(key)
                reward = cache[key]
                if reward is not None and reward > current:
                    current = reward
                best.append(current)
            rewards.append(cache[key])
        if len(rewards) < len(archs):
            break  # the budget ended inside this batch
        strategy.tell(archs, rewards)
        tells += len(archs)
    return Run(best, tells, time.perf_counter() - start)


# the table of the runs in flight: worker processes are forked after it is set, so a task
# names it instead of pickling it (a synthetic table's objective is a closure)
_TABLE: Table | None = None


def _task(args: tuple[str, int, int, int, int]) -> Run:
    assert _TABLE is not None
    return run_once(_TABLE, *args)


def run_all(table: Table, tasks: list[tuple[str, int, int, int, int]], jobs: int) -> list[Run]:
    global _TABLE
    _TABLE = table
    if jobs <= 1:
        return [_task(t) for t in tasks]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(_task, tasks, chunksize=1)


# ----- summaries ----------------------------------------------------------------------------------
def queries_to(run: Run, threshold: float) -> int | None:
    for q, value in enumerate(run.best, 1):
        if value >= threshold:
            return q
    return None


def mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.0f} ± {sd:.0f}"


def best_after(run: Run, q: int) -> float | None:
    """Best reward after q queries (a run that stopped early, see --max-tells: its last)."""
    if not run.best:
        return None
    return run.best[min(q, len(run.best)) - 1]


def summarize(table: Table, spec: str, runs: list[Run], budget: int) -> dict[str, Any]:
    row: dict[str, Any] = {"strategy": spec}
    for top in TOPS:
        hits = [queries_to(r, table.threshold(top)) for r in runs]
        row[f"top{top:g}"] = [h if h is not None else budget for h in hits]
        row[f"reached{top:g}"] = sum(h is not None for h in hits)
    for q in CHECKPOINTS:
        if q <= budget:
            values = [best_after(r, q) for r in runs]
            row[f"best@{q}"] = [v for v in values if v is not None and v > -math.inf]
    row["queries"] = statistics.mean(len(r.best) for r in runs)
    row["tells"] = statistics.mean(r.tells for r in runs)
    row["seconds"] = statistics.mean(r.seconds for r in runs)
    return row


def format_rows(table: Table, rows: list[dict[str, Any]], budget: int, seeds: int) -> str:
    t1, t01 = table.threshold(0.01), table.threshold(0.001)
    lines = [
        f"### {table.name}: {table.note}",
        "",
        f"{len(table.values):,} rows; top 1% >= {t1:.4g}, top 0.1% >= {t01:.4g}, best "
        f"{table.values.max():.4g}; {seeds} seeds, budget {budget} queries. Queries to a target: "
        "mean ± sd over seeds (a run that misses counts as the budget) and median; "
        "best: mean ± sd of the best reward after q queries.",
        "",
    ]
    qs = [q for q in CHECKPOINTS if q <= budget]
    header = ["strategy", "q → top 1%", "median", "hit", "q → top 0.1%", "median", "hit"]
    header += [f"best@{q}" for q in qs] + ["queries", "tells", "s/run"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in rows:
        cells = [f"`{row['strategy']}`"]
        for top in TOPS:
            values = row[f"top{top:g}"]
            cells += [
                mean_sd(values),
                f"{statistics.median(values):.0f}",
                f"{row[f'reached{top:g}']}/{len(values)}",
            ]
        for q in qs:
            values = row[f"best@{q}"]
            if not values:
                cells.append("-")
            else:
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4g} ± {sd:.2g}")
        cells += [f"{row['queries']:.0f}", f"{row['tells']:.0f}", f"{row['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----- overhead -----------------------------------------------------------------------------------
def overhead(specs: Sequence[str], decisions: int, rounds: int) -> str:
    """Median ms per architecture of ask + tell, on a space of `decisions` 4-way decisions."""
    torch.set_num_threads(1)
    space = DecisionSpace({f"d{i}": list(range(4)) for i in range(decisions)})
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(decisions, 4))

    def objective(arch: dict[str, int]) -> float:
        return float(sum(weights[i, v] for i, v in enumerate(arch.values())))

    strategies = {spec: make_strategy(spec, space, 0) for spec in specs}
    times: dict[str, list[float]] = {spec: [] for spec in specs}
    for _ in range(rounds):  # the strategies take turns: a change of load hits them alike
        for spec, strategy in strategies.items():
            n = getattr(strategy, "batch_size", 1)
            t0 = time.perf_counter()
            archs = strategy.ask(n)
            t1 = time.perf_counter()
            rewards = [objective(a) for a in archs]  # not timed
            t2 = time.perf_counter()
            strategy.tell(archs, rewards)
            t3 = time.perf_counter()
            times[spec].append((t1 - t0 + t3 - t2) / n * 1e3)
    lines = [
        f"ask + tell on a {decisions}-decision space (4 choices each), median ms per "
        f"architecture over {rounds} batches (first 10% dropped as warm-up):",
        "",
        "| strategy | batch | ms / arch (median) | p90 |",
        "|---|---|---|---|",
    ]
    for spec, values in times.items():
        values = values[len(values) // 10 :]
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        n = getattr(strategies[spec], "batch_size", 1)
        lines.append(f"| `{spec}` | {n} | {statistics.median(values):.2f} | {p90:.2f} |")
    return "\n".join(lines)


# ----- main ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench-dir", type=Path, default=Path("../shared/benchmarks"))
    p.add_argument("--tables", default="spikenas,ecnas")
    p.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--max-tells", type=int, default=0, help="default: 20 x budget")
    p.add_argument("--patience", type=int, default=1000, help="tells without a new architecture")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (1 torch thread each)")
    p.add_argument("--overhead", action="store_true", help="time ask + tell instead")
    p.add_argument("--decisions", type=int, default=34, help="--overhead: space size")
    p.add_argument("--rounds", type=int, default=300, help="--overhead: batches per strategy")
    args = p.parse_args(argv)
    specs = [s.strip() for s in args.strategies.split(",") if s.strip()]
    print(f"$ python {' '.join(sys.argv)}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}; torch {torch.__version__}, 1 thread per process"
    )
    if args.overhead:
        print(overhead(specs, args.decisions, args.rounds))
        return 0
    if not args.bench_dir.is_dir() and any(
        t in ("spikenas", "ecnas") for t in args.tables.split(",")
    ):
        print(f"error: benchmark directory {args.bench_dir} not found (--bench-dir)")
        return 2
    max_tells = args.max_tells or 20 * args.budget
    start = time.perf_counter()
    for table_spec in args.tables.split(","):
        table = load_table(table_spec.strip(), args.bench_dir)
        tasks = [
            (s, seed, args.budget, max_tells, args.patience)
            for s in specs
            for seed in range(args.seeds)
        ]
        runs = run_all(table, tasks, args.jobs)
        rows = [
            summarize(table, s, runs[i * args.seeds : (i + 1) * args.seeds], args.budget)
            for i, s in enumerate(specs)
        ]
        print(format_rows(table, rows, args.budget, args.seeds), flush=True)
        print()
    print(f"total {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
