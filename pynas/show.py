"""``python -m pynas.show RUN``: the leaderboard of a search run; ``--plot`` writes PNGs.

The leaderboard lists the run's distinct successful architectures, best reward first: rank,
reward, ppl (ptb) or validation accuracy (cifar10), parameters, the child that scored it and
how often the controller sampled it, then each one in text. For a weight-sharing search the
numbers are shared-weight scores: its final ranking (``ranking.json``) on one validation slice,
with each architecture's search score beside it; before that ranking exists, the search
scores (each on its own small slice), and the header says which. With ``--plot`` (needs matplotlib)
it writes to RUN/plots (or ``--out``):

* ``reward.png``: every child's reward (failed ones marked), the best so far, the baseline;
* ``entropy.png``: the controller's entropy per sampled child (REINFORCE runs);
* ``best_cell.png`` (ptb) / ``best_net.png`` (cifar10): a drawing of the best architecture.

A log written before pynas recorded baseline and entropy is plotted with what it has, and the
command says what is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from pynas.argtypes import UsageError, positive_int, run_main
from pynas.io import DamagedFileError, finite_float, read_json
from pynas.runs import Ranked, RunData, RunError, open_run, record_metric, render_arch, task_metric
from pynas.search.records import DAMAGED_STATUS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pynas.show",
        description="Show a search run: leaderboard of the best architectures (in text), "
        "and with --plot PNGs of its progress and of the best architecture.",
    )
    p.add_argument("run", metavar="RUN", help="run directory of a search (python -m pynas.search)")
    p.add_argument("--top", type=positive_int, default=5, help="leaderboard length (5)")
    p.add_argument("--plot", action="store_true", help="write PNGs (needs matplotlib)")
    p.add_argument("--out", help="directory for the PNGs (default: RUN/plots)")
    return p


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _read_summary(path: Path, fix: str) -> dict[str, Any] | None:
    """A summary.json, None if there is none; RunError (exit 2) if it is damaged."""
    if not path.is_file():
        return None
    try:
        summary = read_json(path)
    except DamagedFileError as exc:
        raise RunError(f"{exc}; {fix}") from None
    if not isinstance(summary, dict):
        raise RunError(f"{path} is damaged (not a JSON object); {fix}")
    return summary


def _header(run: RunData) -> str:
    meta = run.meta
    status = "search in progress or interrupted (no summary.json yet)"
    summary = _read_summary(
        run.path / "summary.json",
        f"it is rewritten by `python -m pynas.search --resume {run.path}` (which trains "
        "nothing more if the search was complete), or delete it",
    )
    if summary is not None:
        if summary.get("complete"):
            status = "complete"
        elif summary.get("stopped_by_time_limit"):
            status = "stopped at its time limit"
        else:
            status = "stopped before its child count"
    preset = f" (preset {meta.get('preset')})" if meta.get("strategy") == "reinforce" else ""
    damaged = f", {len(run.damaged)} of them damaged log lines" if run.damaged else ""
    if run.shared:
        return (
            f"run {run.path}: task {run.task}, weight sharing, strategy "
            f"{meta.get('strategy', '?')}{preset}; {len(run.records)} architectures scored with "
            f"the shared weights ({len(run.failed)} failed{damaged}); {status}\n"
            + _shared_basis(run)
        )
    return (
        f"run {run.path}: task {run.task}, strategy {meta.get('strategy', '?')}{preset}, "
        f"budget {meta.get('budget', '?')}; {len(run.records)} children "
        f"({len(run.failed)} failed{damaged}); {status}"
    )


def _shared_basis(run: RunData) -> str:
    """What a weight-sharing run's leaderboard numbers are."""
    if run.ranking is None:
        return (
            "leaderboard: search scores with the shared weights, each on its own small validation "
            "slice (the final ranking is written when the search ends)"
        )
    return (
        f"leaderboard: the best {len(run.ranking['entries'])} distinct architectures by search "
        f"score, ranked with the shared weights on {run.ranking.get('valid_tokens') or 0:,} "
        "validation tokens; shared-weight scores only rank, retrain for real numbers"
    )


def leaderboard(run: RunData, top: int, stream: TextIO) -> list[Ranked]:
    """Print the header, the table of the `top` architectures and each one in text."""
    print(_header(run), file=stream)
    if run.torn_bytes:
        print(f"(an incomplete last line of children.jsonl, {run.torn_bytes} bytes, is not shown)",
              file=stream)  # fmt: skip
    ranked = run.ranked()[:top]
    if not ranked:
        return ranked
    if run.ranking is not None:
        _shared_table(run, ranked, stream)
    else:
        _table(run, ranked, stream)
    for entry in ranked:
        print(f"\n#{entry.rank} (child {entry.record['index']}):", file=stream)
        for line in render_arch(entry.arch).splitlines():
            print(f"  {line}", file=stream)
    return ranked


def _table(run: RunData, ranked: list[Ranked], stream: TextIO) -> None:
    metric = task_metric(run.task)
    col = metric.column if metric is not None else ""
    print(f"\n{'rank':>4}  {'reward':>11}  {col:>8}  {'params':>11}  {'child':>6}  {'sampled':>7}",
          file=stream)  # fmt: skip
    for entry in ranked:
        r = entry.record
        print(
            f"{entry.rank:>4}  {r['reward']:>11.5g}  "
            f"{metric.text(record_metric(r, run.task)) if metric else '':>8}  "
            f"{_fmt(r.get('params'), ','):>11}  {r['index']:>6}  {entry.count:>6}x",
            file=stream,
        )


def _shared_table(run: RunData, ranked: list[Ranked], stream: TextIO) -> None:
    """A weight-sharing run's ranking: the ranking's numbers and the search score beside them."""
    failed = [e for e in (run.ranking or {}).get("entries", []) if e.get("status") != "ok"]
    print(f"\n{'rank':>4}  {'reward':>11}  {'ppl':>8}  {'search ppl':>10}  {'child':>6}  "
          f"{'sampled':>7}", file=stream)  # fmt: skip
    for entry in ranked:
        r = entry.record
        print(
            f"{entry.rank:>4}  {r['reward']:>11.5g}  {_fmt(finite_float(r.get('ppl')), '.1f'):>8}"
            f"  {_fmt(finite_float(r.get('search_ppl')), '.1f'):>10}  {r['index']:>6}  "
            f"{entry.count:>6}x",
            file=stream,
        )
    for e in failed:
        print(f"  (child {e['index']} failed on the ranking slice: {e.get('reason')})",
              file=stream)  # fmt: skip


def retrain_table(run: RunData, stream: TextIO) -> None:
    path = run.path / "retrain" / "summary.json"
    summary = _read_summary(
        path,
        f"run the retrain command again (`python -m pynas.retrain {run.path} ...`) to "
        "rewrite it, or delete it",
    )
    if summary is None:
        return
    metric = summary.get("metric", "")
    state = "" if summary.get("complete") else " (incomplete)"
    print(f"\nretrained{state} ({path.parent}/summary.md):", file=stream)
    for row in summary.get("rows", []):
        point = ", ".join(f"{k} {v:g}" for k, v in (row.get("best_point") or {}).items()) or "-"
        which = f"{row['baseline']} baseline" if row.get("baseline") else (
            f"child {row['search_index']}"
        )
        print(
            f"  {row['rank']}. {which}: {point}; valid {metric} "
            f"{_fmt(row.get('valid'), '.4g')}, test {metric} {_fmt(row.get('test'), '.4g')}",
            file=stream,
        )


def missing_fields(run: RunData) -> list[str]:
    """What the log lacks for the plots (old logs, strategies without a controller)."""
    out = []
    for field in ("baseline", "entropy"):
        if not any(r.get(field) is not None for r in run.records):
            out.append(field)
    return out


def plot(run: RunData, best: Ranked | None, out: Path, stream: TextIO) -> list[Path]:
    """Write the PNGs; print each path and what could not be drawn."""
    from pynas.viz import PlotUnavailable
    from pynas.viz.curves import plot_entropy, plot_rewards

    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        name = f"{run.task} run {run.path.name}"
        records = [r for r in run.records if r.get("status") != DAMAGED_STATUS]  # no reward
        notes = plot_rewards(records, out / "reward.png", f"reward per child — {name}")
        written.append(out / "reward.png")
        if run.damaged:
            notes.append(f"{len(run.damaged)} children with damaged log lines are not plotted")
        if plot_entropy(records, out / "entropy.png", f"controller entropy — {name}"):
            written.append(out / "entropy.png")
        else:
            notes.append(
                "no entropy in children.jsonl (not a REINFORCE run, or a log written before "
                "pynas recorded it): entropy.png not written"
            )
        if best is not None:
            arch = best.arch
            kind = arch.get("kind") if isinstance(arch, dict) else None
            title = f"best architecture: child {best.record['index']}, " + (
                f"reward {best.record['reward']:.4g}"
            )
            value = record_metric(best.record, run.task)
            metric = task_metric(run.task)
            if value is not None and metric is not None:
                title += f", {metric.name} {metric.text(value)}"
            if kind == "rnn_cell":
                from pynas.arch import RNNCell
                from pynas.viz.cell import draw_cell

                draw_cell(RNNCell.from_dict(arch), out / "best_cell.png", title)
                written.append(out / "best_cell.png")
            elif kind == "conv_net":
                from pynas.arch import ConvNet
                from pynas.viz.conv_net import draw_conv_net

                draw_conv_net(ConvNet.from_dict(arch), out / "best_net.png", title)
                written.append(out / "best_net.png")
            else:
                notes.append(f"no drawing for {run.task} architectures (not a cell or a CNN)")
    except PlotUnavailable as exc:
        raise UsageError(f"--plot: {exc}") from None
    for path in written:
        print(f"wrote {path}", file=stream)
    for note in notes:
        print(f"note: {note}", file=stream)
    return written


def main_body(args: argparse.Namespace) -> int:
    run = open_run(args.run)
    if not run.records:
        raise UsageError(f"{run.path} has no finished children yet; nothing to show")
    ranked = leaderboard(run, args.top, sys.stdout)
    if not ranked:
        print(f"\nall {len(run.records)} children failed; no leaderboard", file=sys.stdout)
    retrain_table(run, sys.stdout)
    missing = missing_fields(run)
    if missing:
        print(f"\nnot in this log: {', '.join(missing)} (older pynas, or a strategy without a "
              "controller)", file=sys.stdout)  # fmt: skip
    if args.plot:
        print("", file=sys.stdout)
        out = Path(args.out) if args.out else run.path / "plots"
        plot(run, ranked[0] if ranked else None, out, sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), main_body, argv, usage_errors=(RunError,))


if __name__ == "__main__":
    sys.exit(main())
