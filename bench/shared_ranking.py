"""Ranking quality of the shared weights (issue 12, item 6), and the shared training behind it.

Stages (each writes into --out and is skipped when its output is there, so a stopped run
continues where it stopped):

1. ``train``: train the shared model (``SharedEngine``) on uniformly random base-8 cells, m per
   step (or m of the 9 probe cells below: --train-on probes, a search that has concentrated
   on a few cells; or one named cell alone: --train-on nas_cell), for --train-steps steps or
   --train-minutes minutes. ``train.jsonl``: one line per step (loss, masked rows, skipped);
   ``probe.jsonl``: every --probe-every steps, the shared-weight ppl of a fixed probe set (the
   NAS cell, random cells, two cells built to explode) on the first 2,800 validation tokens.
   ``engine.pt``: the engine's state_dict.
   ``summary``: from ``train.jsonl`` and ``probe.jsonl``, how often rows were masked and why
   (share of all training rows), steps with masking, re-run or skipped, the masked share by
   step range, and the probe cells' last ppl (the isolation table of bench/RESULTS.md).
2. ``select``: score --candidates random cells with the shared weights on the first 8
   validation windows (10 rows) and keep the --top best ("sampled": what random search with
   weight sharing would pick), --random others drawn uniformly, and the NAS cell ->
   ``archs.jsonl``.
3. ``shared``: each selected cell's shared-weight ppl on the first --valid-tokens validation
   tokens -> ``shared.jsonl``.
4. ``standalone``: each selected cell trained from scratch (``pynas.tasks.ptb.train_child``,
   the PTB child's defaults at --hidden, one epoch over the first --standalone-tokens training
   tokens), its ppl on the same validation tokens -> ``standalone.jsonl`` (one line per cell).
5. report: Kendall tau and Spearman rho between shared and standalone ppl (failures rank
   last), top-k overlap, the table.

    python bench/shared_ranking.py --out runs/shared_rank --train-minutes 15 --threads 1
    python bench/shared_ranking.py --out runs/ab_keep --train-steps 300 --stages train
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from pynas.arch import NAMED_CELLS, RNNCell
from pynas.io import JsonlFile
from pynas.spaces import RNNCellSpace
from pynas.tasks.ptb import PTBConfig, load_corpus, train_child
from pynas.tasks.ptb.shared import NONFINITE_LOSS, SharedConfig, SharedEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rank_stats import kendall_tau, spearman_rho, top_overlap  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"
STAGES = ("train", "summary", "select", "shared", "standalone", "report")


def uniform_cell(leaf, internal, inject=("add", "identity")) -> RNNCell:
    nodes = (leaf,) * 8 + (internal,) * 7
    return RNNCell(base=8, nodes=nodes, inject=inject, c_out=14, inject_at=14)


def probe_set() -> dict[str, RNNCell]:
    space, rng = RNNCellSpace(8), random.Random(1)
    probes = {"nas_cell": NAMED_CELLS["nas_cell"]}
    probes.update({f"random{i}": space.to_arch(space.sample(rng)) for i in range(8)})
    # a linear recurrence (sum of all leaves) and a product of sums: built to explode
    probes["explode_sum"] = uniform_cell(("add", "identity"), ("add", "identity"))
    probes["explode_prod"] = RNNCell(
        base=8,
        nodes=(("add", "identity"),) * 12 + (("elem_mult", "identity"),) * 3,
        inject=("elem_mult", "identity"), c_out=14, inject_at=12,
    )  # fmt: skip
    return probes


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    JsonlFile(path).append(record)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return JsonlFile(path).read().records


def ppl_of(result) -> float:
    """The result's ppl, also of a diverged (failed) one; inf when it has none."""
    return result.metrics.get("ppl", math.inf)


def save_engine(engine: SharedEngine, path: Path, seconds: float) -> None:
    state = engine.state_dict()
    state["bench_seconds"] = seconds
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_engine(path: Path, corpus) -> tuple[SharedEngine, float]:
    state = torch.load(path, weights_only=False)
    engine = SharedEngine(SharedConfig(**state["config"]), corpus)
    engine.load_state_dict(state)
    return engine, state.get("bench_seconds", 0.0)


def stage_train(args, corpus, out: Path) -> SharedEngine:
    path = out / "engine.pt"
    config = SharedConfig(
        hidden=args.hidden, batch_size=args.batch_size, lr=args.lr, dropout=args.dropout,
        carry_state=args.carry, seed=args.seed, outlier_nats=args.outlier_nats or None,
        clip_per_arch=args.clip_per_arch,
    )  # fmt: skip
    if path.exists():
        engine, seconds = load_engine(path, corpus)
        if engine.config != config:
            sys.exit(f"{path} was trained with other settings: {engine.config}")
    else:
        engine, seconds = SharedEngine(config, corpus), 0.0
    space = RNNCellSpace(8)
    rng = random.Random(args.seed * 1000 + engine.totals.steps)  # resumed runs draw on
    probes = probe_set()
    probe_data = engine.valid_data[: 8 * config.bptt + 1]
    limit_steps = args.train_steps or math.inf
    limit_seconds = args.train_minutes * 60 if args.train_minutes else math.inf
    start = time.monotonic() - seconds
    while engine.totals.steps < limit_steps and time.monotonic() - start < limit_seconds:
        if args.train_on == "random":
            archs = [space.to_arch(space.sample(rng)) for _ in range(args.m)]
        elif args.train_on == "probes":  # the NAS cell and random0..random7
            archs = rng.sample(list(probes.values())[:9], args.m)
        else:  # one named cell: the shared model as a plain child, for comparison
            archs = [NAMED_CELLS[args.train_on]]
        report = engine.train_step(archs)
        append_jsonl(out / "train.jsonl", {
            "step": report.step, "epoch": report.epoch, "loss": report.loss,
            "masked": sum(report.masked_rows), "failed_archs": sum(report.failed),
            "reasons": report.reasons, "skipped": report.skipped, "attempts": report.attempts,
            "seconds": round(time.monotonic() - start, 2),
        })  # fmt: skip
        if engine.totals.steps % args.probe_every == 0:
            results = engine.evaluate(list(probes.values()), probe_data)
            ppl = {name: ppl_of(r) for name, r in zip(probes, results, strict=True)}
            append_jsonl(out / "probe.jsonl", {"step": engine.totals.steps, "ppl": ppl})
            print(f"step {engine.totals.steps} {time.monotonic() - start:.0f}s "
                  f"masked {engine.totals.masked_rows / engine.totals.rows:.2%} "
                  + " ".join(f"{k}={v:.0f}" for k, v in ppl.items()), flush=True)  # fmt: skip
            save_engine(engine, path, time.monotonic() - start)
    save_engine(engine, path, time.monotonic() - start)
    totals = engine.totals
    fraction = totals.masked_rows / totals.rows
    print(f"trained {totals.steps} steps in {time.monotonic() - start:.0f} s: "
          f"{totals.masked_rows}/{totals.rows} rows masked ({fraction:.2%}), "
          f"{totals.steps_with_masking} steps with masking, {totals.skipped_steps} skipped; "
          f"reasons {dict(totals.reasons)}")  # fmt: skip
    return engine


def stage_summary(out: Path, batch_size: int) -> None:
    steps = read_jsonl(out / "train.jsonl")
    if not steps:
        print(f"summary: no {out / 'train.jsonl'}; run the train stage first")
        return
    rows = batch_size * len(steps)
    reasons: Counter = Counter()
    for step in steps:
        for per_arch in step["reasons"]:
            reasons.update(per_arch)
    masked = sum(step["masked"] for step in steps)
    archs = sum(len(step["reasons"]) for step in steps)
    print(f"{len(steps)} steps, {rows:,} rows (B = {batch_size}): {masked / rows:.1%} masked; "
          + ", ".join(f"{k} {v / rows:.1%}" for k, v in sorted(reasons.items())))  # fmt: skip
    failed = sum(s["failed_archs"] for s in steps) / archs
    print(f"architectures failed (every row masked) {failed:.1%}"
          f"; steps with masking {sum(s['masked'] > 0 for s in steps) / len(steps):.0%}, "
          f"re-run {sum(s['attempts'] > 1 for s in steps) / len(steps):.0%}, "
          f"skipped {sum(s['skipped'] is not None for s in steps)}")  # fmt: skip
    span = max(50, len(steps) // 6)
    shares = []
    for first in range(0, len(steps), span):
        chunk = steps[first : first + span]
        share = sum(s["masked"] for s in chunk) / (batch_size * len(chunk))
        nonfinite = sum(r.get(NONFINITE_LOSS, 0) for s in chunk for r in s["reasons"]) / (
            batch_size * len(chunk)
        )
        shares.append(f"{first}-{first + len(chunk) - 1}: {share:.1%} ({nonfinite:.1%})")
    print("masked rows by steps (non-finite loss): " + ", ".join(shares))
    probes = read_jsonl(out / "probe.jsonl")
    for probe in [p for p in probes if p["step"] == 300] + probes[-1:]:
        ppl = {k: v for k, v in probe["ppl"].items() if v is not None}
        randoms = {k: v for k, v in ppl.items() if k.startswith("random")}
        best = min(randoms, key=randoms.get)
        print(f"probe at step {probe['step']}: nas_cell {ppl['nas_cell']:.0f}, random2 "
              f"(constant output) {ppl['random2']:.0f}, best random probe {best} "
              f"{randoms[best]:.0f}")  # fmt: skip


def stage_select(args, engine: SharedEngine, out: Path) -> list[dict[str, Any]]:
    path = out / "archs.jsonl"
    if path.exists():
        return read_jsonl(path)
    space, rng = RNNCellSpace(8), random.Random(args.seed + 7)
    candidates = [space.to_arch(space.sample(rng)) for _ in range(args.candidates)]
    data = engine.valid_data[: 8 * engine.config.bptt + 1]
    scores = []
    for first in range(0, len(candidates), 8):
        scores += [ppl_of(r) for r in engine.evaluate(candidates[first : first + 8], data)]
    order = sorted(range(len(candidates)), key=lambda i: scores[i])
    top = order[: args.top]
    others = rng.sample(order[args.top :], args.random)
    records = [{"origin": f"top{args.top}_of_{args.candidates}", "index": i} for i in top]
    records += [{"origin": "random", "index": i} for i in others]
    for r in records:
        r["arch"] = candidates[r["index"]].to_dict()
        r["select_ppl"] = scores[r["index"]]
    records.append({"origin": "nas_cell", "index": None, "arch": NAMED_CELLS["nas_cell"].to_dict()})
    for r in records:
        append_jsonl(path, r)
    return records


def stage_shared(args, engine: SharedEngine, archs: list[dict[str, Any]], out: Path) -> list[float]:
    path = out / "shared.jsonl"
    if not path.exists():
        cells = [RNNCell.from_dict(r["arch"]) for r in archs]
        start = time.monotonic()
        results = engine.rank(cells, valid_tokens=args.valid_tokens)
        seconds = time.monotonic() - start
        for r in results:
            append_jsonl(path, {"ppl": ppl_of(r), "status": r.status, "reason": r.reason,
                                "seconds_all": seconds})  # fmt: skip
    return [r["ppl"] for r in read_jsonl(path)]


def stage_standalone(args, corpus, archs: list[dict[str, Any]], out: Path) -> list[float]:
    path = out / "standalone.jsonl"
    done = read_jsonl(path)
    config = PTBConfig(
        hidden=args.hidden, train_tokens=args.standalone_tokens, valid_tokens=args.valid_tokens,
        seed=args.seed,
    )  # fmt: skip
    for k in range(len(done), len(archs)):
        result = train_child(RNNCell.from_dict(archs[k]["arch"]), config, corpus)
        record = {"k": k, "ppl": ppl_of(result), "status": result.status,
                  "reason": result.reason, "seconds": result.metrics.get("seconds")}  # fmt: skip
        append_jsonl(path, record)
        print(f"standalone {k + 1}/{len(archs)} ({archs[k]['origin']}): ppl {record['ppl']:.1f}"
              f" in {record['seconds']:.0f} s", flush=True)  # fmt: skip
    return [r["ppl"] for r in read_jsonl(path)]


def report(archs, shared: list[float], standalone: list[float]) -> None:
    print("\n| # | origin | shared ppl | standalone ppl | shared rank | standalone rank |")
    print("|---:|---|---:|---:|---:|---:|")
    rank_s = {i: r for r, i in enumerate(sorted(range(len(shared)), key=lambda i: shared[i]), 1)}
    rank_t = {
        i: r for r, i in enumerate(sorted(range(len(standalone)), key=lambda i: standalone[i]), 1)
    }
    for i in sorted(range(len(archs)), key=lambda i: standalone[i]):
        print(f"| {i} | {archs[i]['origin']} | {shared[i]:.1f} | {standalone[i]:.1f} | "
              f"{rank_s[i]} | {rank_t[i]} |")  # fmt: skip
    n = len(archs)
    print(f"\nn = {n}: Kendall tau {kendall_tau(shared, standalone):.3f}, "
          f"Spearman rho {spearman_rho(shared, standalone):.3f}, "
          f"top-5 overlap {top_overlap(shared, standalone, 5)}/5")  # fmt: skip
    finite = [i for i in range(n) if math.isfinite(shared[i]) and math.isfinite(standalone[i])]
    if len(finite) < n and len(finite) > 2:
        s, t = [shared[i] for i in finite], [standalone[i] for i in finite]
        print(f"without failures (n = {len(finite)}): tau {kendall_tau(s, t):.3f}, "
              f"rho {spearman_rho(s, t):.3f}")  # fmt: skip
    origins = sorted({a["origin"] for a in archs})
    for origin in origins:
        idx = [i for i in range(n) if archs[i]["origin"] == origin]
        print(
            f"{origin}: median standalone ppl {statistics.median(standalone[i] for i in idx):.1f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="directory for the stages' outputs")
    p.add_argument("--stages", default=",".join(STAGES), help="comma list of " + ", ".join(STAGES))
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-minutes", type=float, default=0, help="shared training time")
    p.add_argument("--train-steps", type=int, default=0, help="or a number of steps")
    p.add_argument("--m", type=int, default=8, help="architectures per training step")
    p.add_argument(
        "--train-on",
        default="random",
        choices=["random", "probes", *NAMED_CELLS],
        help="uniformly random cells (m per step), m of the NAS cell and the 8 random probe "
        "cells, or one named cell alone",
    )
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=SharedConfig.batch_size)
    p.add_argument("--lr", type=float, default=SharedConfig.lr)
    p.add_argument("--dropout", type=float, default=SharedConfig.dropout)
    p.add_argument("--carry", default=SharedConfig.carry_state, choices=("keep", "reset"))
    p.add_argument("--outlier-nats", type=float, default=SharedConfig.outlier_nats, help="0: off")
    p.add_argument(
        "--clip-per-arch",
        action=argparse.BooleanOptionalAction,
        default=SharedConfig.clip_per_arch,
        help="SharedConfig.clip_per_arch",
    )
    p.add_argument("--probe-every", type=int, default=50)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--top", type=int, default=6)
    p.add_argument("--random", type=int, default=13)
    p.add_argument("--valid-tokens", type=int, default=20_000)
    p.add_argument("--standalone-tokens", type=int, default=100_000)
    args = p.parse_args()
    stages = set(args.stages.split(","))
    if stages - set(STAGES):
        p.error(f"unknown stage(s) {sorted(stages - set(STAGES))}; choose from {STAGES}")
    if "train" in stages and not (args.train_minutes or args.train_steps):
        p.error("the train stage needs --train-minutes or --train-steps")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args.data_dir)
    if "train" in stages:
        engine = stage_train(args, corpus, out)
    elif stages & {"select", "shared"}:
        engine, _ = load_engine(out / "engine.pt", corpus)
    if "summary" in stages:
        config = torch.load(out / "engine.pt", weights_only=False)["config"]
        stage_summary(out, config["batch_size"])
    if "select" in stages:
        stage_select(args, engine, out)
    archs = read_jsonl(out / "archs.jsonl")
    if "shared" in stages:
        stage_shared(args, engine, archs, out)
    if "standalone" in stages:
        stage_standalone(args, corpus, archs, out)
    if "report" in stages:
        shared = [r["ppl"] for r in read_jsonl(out / "shared.jsonl")]
        standalone = [r["ppl"] for r in read_jsonl(out / "standalone.jsonl")]
        if len(shared) == len(standalone) == len(archs) and archs:
            report(archs, shared, standalone)
        else:
            print(f"report: {len(archs)} archs, {len(shared)} shared, {len(standalone)} "
                  "standalone results; run the missing stages first")  # fmt: skip


if __name__ == "__main__":
    main()
