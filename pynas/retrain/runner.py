"""Retrain the K best architectures of a run over a grid; choose by validation; test once.

For each architecture (best search reward first) and each grid point not yet in the results
log: train from scratch, save the model if it is the architecture's best so far (by validation),
then append the result. When all points of an architecture are done, its best point's saved
model is loaded with :func:`pynas.load_model` and evaluated on the test split (once; the
result is logged too). A killed retrain therefore redoes at most the point it was training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynas.argtypes import UsageError
from pynas.export import build_model, load_model, save_model
from pynas.io import DamagedLinesError
from pynas.retrain.grid import Point, point_key, point_label, point_slug
from pynas.retrain.store import RetrainDir, arch_id
from pynas.runs import Ranked, arch_key
from pynas.tasks.base import Retraining, Trained

Say = Callable[[str], None]


class Retrain:
    def __init__(
        self,
        task: Retraining,
        out: RetrainDir,
        entries: list[Ranked],
        grid: list[Point],
        say: Say = lambda _: None,
    ) -> None:
        self.task = task
        self.out = out
        self.entries = entries
        self.grid = grid
        self.say = say
        self.trained: dict[tuple[str, str], dict[str, Any]] = {}
        self.tested: dict[tuple[str, str], dict[str, Any]] = {}

    # ----- state ------------------------------------------------------------------------------
    def restore(self, repair_log: bool = False) -> int:
        """Load the results log; the number of grid points already done.

        Damaged lines before the last raise UsageError, or with `repair_log` are moved to
        ``results.jsonl.damaged`` (their grid points or tests are simply done again).
        """
        try:
            report = self.out.log.read(repair=True, allow_damaged=repair_log)
        except DamagedLinesError as exc:
            raise UsageError(
                f"{exc}. Run the same command with --repair-log to move the damaged lines to "
                f"{self.out.log.damaged_path.name} and train their grid points again"
            ) from None
        if report.torn_bytes:
            self.say(
                f"results.jsonl: dropped a torn last line ({report.torn_bytes} bytes) left by "
                "an interrupted write; that grid point will be trained again"
            )
        if report.damaged:
            aside = self.out.log.set_aside(report.damaged)
            self.say(
                f"results.jsonl: moved {len(report.damaged)} damaged line(s) "
                f"({', '.join(str(d.number) for d in report.damaged)}) to {aside.name}; their "
                "grid points are trained again"
            )
        for r in report.records:
            key = (arch_key(r.get("arch")), point_key(r.get("point") or {}))
            if r.get("kind") == "train":
                self.trained[key] = r
            elif r.get("kind") == "test":
                self.tested[key] = r
        return len(self.trained)

    def _points(self, akey: str) -> list[tuple[Point, dict[str, Any]]]:
        """(point, record) of the current grid's finished points of one architecture."""
        out = []
        for point in self.grid:
            record = self.trained.get((akey, point_key(point)))
            if record is not None:
                out.append((point, record))
        return out

    def _best(self, akey: str) -> tuple[Point, dict[str, Any]] | None:
        best = None
        for point, record in self._points(akey):
            if record["status"] != "ok":
                continue
            if best is None or self.task.better(record["valid"], best[1]["valid"]):
                best = (point, record)
        return best

    # ----- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        total = len(self.entries) * len(self.grid)
        done = sum(1 for e in self.entries for _ in self._points(arch_key(e.arch)))
        for n, entry in enumerate(self.entries, 1):
            akey = arch_key(entry.arch)
            for point in self.grid:
                if (akey, point_key(point)) in self.trained:
                    continue
                done += 1
                where = (
                    f"[{done}/{total}] arch {n}/{len(self.entries)} "
                    f"({entry.label}), {point_label(point)}"
                )
                self.say(f"{where}: training")
                record = self._train_point(entry, akey, point)
                self.say(f"{where}: {_outcome(self.task, record)}")
            self._test(entry, akey)

    def _train(self, arch: Any, point: Point) -> Trained:
        """Train `arch` at `point`; the model is made by pynas.build_model (so it can be saved)."""
        return self.task.train(
            arch, point, lambda a, options: build_model(a, task=self.task.name, **options)
        )

    def _record(
        self, entry: Ranked, point: Point, trained: Trained, model: str | None
    ) -> dict[str, Any]:
        return {
            "kind": "train",
            "arch": entry.arch,
            "point": point,
            "status": trained.status,
            "reason": trained.reason,
            "metric": self.task.metric.name,
            "valid": trained.valid,
            "params": trained.params,
            "seconds": trained.seconds,
            "curve": trained.curve,
            "model": model,
            "search_index": entry.record["index"],
            "search_reward": entry.record["reward"],
        }

    def _train_point(self, entry: Ranked, akey: str, point: Point) -> dict[str, Any]:
        trained = self._train(entry.arch, point)
        model = None
        if trained.ok and trained.model is not None:
            best = self._best(akey)
            if best is None or self.task.better(trained.valid, best[1]["valid"]):
                path = self.out.model_path(arch_id(akey), point_slug(point))
                save_model(trained.model, path)  # before the record: a kill in between redoes it
                model = self.out.relative(path)
        record = self._record(entry, point, trained, model)
        self.out.log.append(record)
        self.trained[(akey, point_key(point))] = record
        if model is not None:
            self._remove_other_models(akey, keep=model)
        return record

    def _remove_other_models(self, akey: str, keep: str) -> None:
        for path in self.out.models.glob(f"{arch_id(akey)}-*.pt"):
            if self.out.relative(path) != keep:
                path.unlink(missing_ok=True)

    def _test(self, entry: Ranked, akey: str) -> None:
        best = self._best(akey)
        if best is None:
            return
        point, record = best
        key = (akey, point_key(point))
        path = self.out.model_path(arch_id(akey), point_slug(point))
        if not path.is_file():  # lost by a kill between saving and logging, or a grid change
            self.say(f"model of {entry.label} at {point_label(point)} "
                     "is missing: training that point again to save it")  # fmt: skip
            trained = self._train(entry.arch, point)
            if trained.model is None:
                self.say(f"  retraining failed ({trained.reason}); no test result for this arch")
                return
            save_model(trained.model, path)
            self._remove_other_models(akey, keep=self.out.relative(path))
            self.tested.pop(key, None)
        if key in self.tested and self.tested[key].get("model") == self.out.relative(path):
            return
        value = self.task.evaluate(load_model(path))  # the saved file, as a user would load it
        test = {
            "kind": "test",
            "arch": entry.arch,
            "point": point,
            "metric": self.task.metric.name,
            "test": value,
            "model": self.out.relative(path),
        }
        self.out.log.append(test)
        self.tested[key] = test
        metric = self.task.metric.name
        self.say(f"  {entry.label}: best {point_label(point)}, "
                 f"valid {metric} {record['valid']:.4g}, test {value:.4g}")  # fmt: skip

    # ----- results ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        rows = []
        for entry in self.entries:
            akey = arch_key(entry.arch)
            points = self._points(akey)
            best = self._best(akey)
            test = self.tested.get((akey, point_key(best[0]))) if best else None
            reasons = sorted({str(r["reason"]) for _, r in points if r["status"] != "ok"})
            rows.append(
                {
                    "arch_id": arch_id(akey),
                    "search_rank": entry.rank,
                    "search_index": entry.record["index"],
                    "search_reward": entry.record["reward"],
                    "baseline": entry.record.get("baseline"),
                    "search_metric": entry.record.get(self.task.metric.name)
                    or (entry.record.get("metrics") or {}).get(self.task.metric.name),
                    "best_point": best[0] if best else None,
                    "valid": best[1]["valid"] if best else None,
                    "test": test["test"] if test else None,
                    "params": best[1]["params"] if best else None,
                    "model": test["model"] if test else None,
                    "points_done": len(points),
                    "points_failed": sum(1 for _, r in points if r["status"] != "ok"),
                    "failure_reasons": reasons,
                    "grid": [
                        {"point": p, "status": r["status"], "valid": r["valid"]} for p, r in points
                    ],  # fmt: skip
                    "arch": entry.arch,
                }
            )
        sign = -1.0 if self.task.metric.higher_is_better else 1.0
        rows.sort(key=lambda r: (r["valid"] is None, sign * (r["valid"] or 0.0),
                                 r["search_rank"] is None, r["search_rank"] or 0))  # fmt: skip
        for i, row in enumerate(rows, 1):
            row["rank"] = i
        complete = all(r["points_done"] == len(self.grid) for r in rows)
        return {
            "task": self.task.name,
            "metric": self.task.metric.name,
            "higher_is_better": self.task.metric.higher_is_better,
            "settings": self.task.settings,
            "grid": self.grid,
            "top": sum(e.rank is not None for e in self.entries),
            "complete": complete and all(r["test"] is not None or r["valid"] is None for r in rows),
            "rows": rows,
        }


def _outcome(task: Retraining, record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"failed ({record['reason']})"
    saved = ", saved as the best so far" if record["model"] else ""
    return f"valid {task.metric.name} {record['valid']:.4g} ({record['seconds']:.1f} s{saved})"
