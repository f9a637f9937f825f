"""The retrain summary as Markdown (``summary.md``)."""

from __future__ import annotations

import json
from typing import Any

from pynas.retrain.grid import point_label
from pynas.runs import render_arch


def _num(value: Any, fmt: str = ".4g") -> str:
    return "—" if value is None else format(value, fmt)


def _baselines(summary: dict[str, Any]) -> str:
    names = [row["baseline"] for row in summary["rows"] if row.get("baseline")]
    return " and ".join(f"the {n} baseline" for n in names)


def to_markdown(summary: dict[str, Any], run: str) -> str:
    metric = summary["metric"]
    better = "higher" if summary["higher_is_better"] else "lower"
    settings = ", ".join(f"{k}={v}" for k, v in summary["settings"].items())
    lines = [
        f"# Retrain of {run}",
        "",
        f"Task {summary['task']}; the {summary['top']} best architectures of the search"
        + (f" and {_baselines(summary)}" if _baselines(summary) else "")
        + ", each "
        f"trained from scratch at {len(summary['grid'])} grid points "
        f"({'; '.join(point_label(p) for p in summary['grid'])}); the point with the best "
        f"validation {metric} ({better} is better) is evaluated on the test split."
        + ("" if summary["complete"] else " **Incomplete: run the same command to continue.**"),
        "",
        f"Settings: {settings}",
        "",
        f"| rank | arch | search (child, reward) | best point | valid {metric} | test {metric} "
        "| params | model |",
        "|---:|---|---|---|---:|---:|---:|---|",
    ]
    for row in summary["rows"]:
        point = point_label(row["best_point"]) if row["best_point"] else "—"
        if row["valid"] is None and row["points_failed"]:
            point = f"all {row['points_failed']} points failed"
        search = (
            f"{row['baseline']} baseline"
            if row.get("baseline")
            else f"#{row['search_rank']} (child {row['search_index']}, "
            f"{row['search_reward']:.4g})"
        )
        lines.append(
            f"| {row['rank']} | `{row['arch_id']}` | {search} | {point} "
            f"| {_num(row['valid'])} | {_num(row['test'])} | {_num(row['params'], ',')} "
            f"| {row['model'] or '—'} |"
        )
    lines += ["", "## Grid", ""]
    for row in summary["rows"]:
        cells = [
            f"{point_label(g['point'])}: " + (_num(g["valid"]) if g["status"] == "ok" else "failed")
            for g in row["grid"]
        ]
        lines.append(f"- `{row['arch_id']}`: " + "; ".join(cells))
        for reason in row["failure_reasons"]:
            lines.append(f"  - failure: {reason}")
    lines += ["", "## Architectures", ""]
    for row in summary["rows"]:
        lines += [
            f"### {row['rank']}. `{row['arch_id']}`",
            "",
            "```text",
            render_arch(row["arch"]),
            "```",
            "",
            "```json",
            json.dumps(row["arch"], separators=(",", ":")),
            "```",
            "",
        ]
    return "\n".join(lines)
