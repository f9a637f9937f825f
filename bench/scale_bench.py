"""Scale-out benchmark (issue 6): children per minute for 1 vs 2 local workers; Ray's overhead.

Three measurements, each on the same children for every setup:

* ``ptb``   small PTB children (the default search budget's: hidden 32, one epoch over 30k
  tokens) through the local worker pool with 1 and 2 workers. Workers are started and the
  corpus loaded before the clock starts (a warm-up child per worker), so this is the
  steady-state rate. The two pools take turns, round after round, so that a change in the
  machine's load hits both alike; the 2/1 ratio of the median rates is the scaling. The CPU
  seconds the workers used per child are reported too: if they stay put while the wall time
  per child grows, the workers were waiting for a CPU (other work on the machine).
* ``tiny``  toy children that take no time: the per-child cost of each executor (local pool of
  2 workers, Ray tasks on a local 2-CPU instance), warm as above.
* ``search`` a whole toy search (64 children of 50 ms, m = 4) with ``--workers 2`` and with
  ``--executor ray`` (parameter servers S = 2, replicas K = 2): seconds until the first child
  is logged (start-up) and children/minute from the first to the last logged child.

The machine is usually shared: the load average before and after each measurement is printed
with it. Run ``python bench/scale_bench.py`` (a few minutes; ``--quick`` for fewer children;
``--parts ptb --ptb-children 8`` for the PTB scaling alone on 8 children per round).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pynas.executors.child import ChildEvaluator, TaskSpec
from pynas.executors.pool import WorkerPool
from pynas.tasks.registry import TASKS

REPO = Path(__file__).resolve().parents[1]


def load() -> float:
    return os.getloadavg()[0]


def ptb_items(n: int, data_dir: str) -> tuple[TaskSpec, list[tuple[int, str]]]:
    from pynas.spaces import RNNCellSpace

    child = TASKS["ptb"].budget("default").child
    spec = TaskSpec("ptb", child, seed=0, data_dir=data_dir, threads=1)
    space = RNNCellSpace(child.base)
    from pynas.strategies import RandomSearch

    archs = RandomSearch(space, seed=0).ask(n)
    return spec, [(i, space.arch_to_json(a)) for i, a in enumerate(archs)]


def toy_items(n: int, delay: float = 0.0) -> tuple[TaskSpec, list[tuple[int, str]]]:
    from pynas.strategies import RandomSearch
    from pynas.tasks.toy import TOY_SPACE, ToyChild

    spec = TaskSpec("toy", ToyChild(delay=delay), seed=0)
    archs = RandomSearch(TOY_SPACE, seed=0).ask(n)
    return spec, [(i, TOY_SPACE.arch_to_json(a)) for i, a in enumerate(archs)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by `pids` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def timed(run: Any, items: list[tuple[int, str]], pids: list[int] | None = None) -> dict[str, Any]:
    """Time `items` through `run`; failures are counted, not hidden."""
    before = load()
    cpu = cpu_seconds(pids) if pids else None
    start = time.perf_counter()
    outcomes = list(run(items))
    wall = time.perf_counter() - start
    failed = sum(1 for o in outcomes if not o[2].ok)
    out = {
        "children": len(items), "failed": failed, "wall_s": round(wall, 3),
        "children_per_min": round(len(items) / wall * 60, 2),
        "ms_per_child": round(wall / len(items) * 1000, 2),
        "load_before": round(before, 2), "load_after": round(load(), 2),
    }  # fmt: skip
    if pids:
        used = cpu_seconds(pids) - (cpu or 0.0)
        out["cpu_s_per_child"] = round(used / len(items), 3)
        out["cpus_obtained"] = round(used / wall, 2)  # CPUs the workers got, on average
    return out


def warm_pool(spec: TaskSpec, workers: int, items: list[tuple[int, str]]) -> Any:
    """A started pool whose workers have built the task, and its map function."""
    evaluator = ChildEvaluator(spec)
    pool = WorkerPool(workers, retries=0, threads=1)
    list(pool.map(evaluator, [(10_000 + i, items[i % len(items)][1]) for i in range(workers)]))
    return pool, lambda xs: pool.map(evaluator, xs)


def ptb_scaling(spec: TaskSpec, items: list[tuple[int, str]], rounds: int) -> dict[str, Any]:
    pools = {w: warm_pool(spec, w, items) for w in (1, 2)}
    try:
        runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for r in range(rounds):
            for w, (pool, run) in pools.items():
                runs[w].append(timed(run, items, pool.pids()))
                print(f"ptb round {r}, {w} worker(s): {runs[w][-1]}", flush=True)
    finally:
        for pool, _ in pools.values():
            pool.close()
    rate = {w: statistics.median(x["children_per_min"] for x in runs[w]) for w in runs}
    return {
        "rounds": runs,
        "median_children_per_min": rate,
        "ratio_2_to_1": round(rate[2] / rate[1], 3),
        "paired_ratios": [
            round(b["children_per_min"] / a["children_per_min"], 3)
            for a, b in zip(runs[1], runs[2], strict=True)
        ],
    }


def pool_run(spec: TaskSpec, workers: int, items: list[tuple[int, str]]) -> dict[str, Any]:
    pool, run = warm_pool(spec, workers, items)
    try:
        return timed(run, items)
    finally:
        pool.close()


def ray_run(spec: TaskSpec, items: list[tuple[int, str]]) -> dict[str, Any]:
    from pynas.executors.ray_children import RayChildRunner

    runner = RayChildRunner(ChildEvaluator(spec), num_cpus=1, retries=0)
    list(runner.run([(10_000 + i, items[i % len(items)][1]) for i in range(2)]))  # warm up
    return timed(runner.run, items)


def search_run(argv: list[str]) -> dict[str, Any]:
    """A whole CLI search in this process; start-up and steady rate from record timestamps."""
    import pynas.search.cli as cli

    times: list[float] = []
    original = cli.make_search

    def make_search(*args: Any, **kwargs: Any) -> Any:  # the CLI's, plus a timing listener
        search, close = original(*args, **kwargs)
        search.on_record.append(lambda record: times.append(time.perf_counter()))
        return search, close

    cli.make_search = make_search
    try:
        with tempfile.TemporaryDirectory() as tmp:
            before = load()
            start = time.perf_counter()
            code = cli.main([*argv, "--run-dir", str(Path(tmp) / "run"), "--quiet"])
            wall = time.perf_counter() - start
    finally:
        cli.make_search = original
    assert code == 0, f"search failed with exit code {code}"
    steady = (len(times) - 1) / (times[-1] - times[0]) * 60 if len(times) > 1 else float("nan")
    return {
        "children": len(times), "wall_s": round(wall, 2),
        "startup_s": round(times[0] - start, 2) if times else None,
        "steady_children_per_min": round(steady, 1),
        "load_before": round(before, 2), "load_after": round(load(), 2),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "ptb"))
    p.add_argument("--quick", action="store_true", help="fewer children")
    p.add_argument("--output", help="also write the results as JSON here")
    p.add_argument("--parts", default="ptb,tiny,search", help="which measurements (comma list)")
    p.add_argument(
        "--ptb-children", type=int, help="PTB children per round and pool (default 12; 4 --quick)"
    )
    p.add_argument("--ptb-rounds", type=int, help="rounds of the PTB pools (default 3; 1 --quick)")
    args = p.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    torch.set_num_threads(1)
    n_ptb, rounds, n_tiny, n_search = (4, 1, 60, 32) if args.quick else (12, 3, 300, 64)
    n_ptb = args.ptb_children if args.ptb_children is not None else n_ptb
    rounds = args.ptb_rounds if args.ptb_rounds is not None else rounds
    if n_ptb < 1 or rounds < 1:
        p.error("--ptb-children and --ptb-rounds must be at least 1")
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
    }

    parts = set(args.parts.split(","))
    if "ptb" in parts:
        spec, items = ptb_items(n_ptb, args.data_dir)
        results["ptb"] = r = ptb_scaling(spec, items, rounds)
        print(f"ptb 2-worker / 1-worker children per minute (medians): {r['ratio_2_to_1']}, "
              f"per round {r['paired_ratios']}", flush=True)  # fmt: skip
    if parts & {"tiny", "search"}:
        ray_parts(results, parts, n_tiny, n_search)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()


def ray_parts(results: dict[str, Any], parts: set[str], n_tiny: int, n_search: int) -> None:
    """The tiny-children and whole-search comparisons of the local pool and Ray."""
    spec, items = toy_items(n_tiny)
    toy = ["--task", "toy", "--children", str(n_search), "--batch-size", "4",
           "--child-delay", "0.05", "--seed", "1"]  # fmt: skip
    if "tiny" in parts:
        results["tiny_local_2"] = r = pool_run(spec, 2, items)
        print(f"tiny, local pool, 2 workers: {r}", flush=True)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, _node_ip_address="127.0.0.1")  # fmt: skip
    try:
        if "tiny" in parts:
            results["tiny_ray_tasks"] = r = ray_run(spec, items)
            print(f"tiny, Ray tasks (2 CPUs): {r}", flush=True)
        if "search" in parts:
            results["search_ray_ps"] = r = search_run([*toy, "--executor", "ray"])
            print(f"toy search, Ray S=2 K=2: {r}", flush=True)
    finally:
        ray.shutdown()
    if "search" in parts:
        results["search_local_2"] = r = search_run([*toy, "--workers", "2"])
        print(f"toy search, local --workers 2: {r}", flush=True)


if __name__ == "__main__":
    main()
