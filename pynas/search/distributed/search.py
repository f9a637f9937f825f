"""REINFORCE on Ray with parameter servers (SPEC §6): the driver.

The driver starts S :class:`~pynas.search.distributed.server.ParameterShard` actors (the
controller's parameters, Adam state, version; shard 0 also the baseline), a
:class:`~pynas.search.distributed.coordinator.Coordinator` and K
:class:`~pynas.search.distributed.replica.Replica` actors, each of which trains batches of m
children as Ray tasks and pushes gradients asynchronously; the servers apply an update per g
gradients.
The driver only watches: it drains the coordinator's events, writes every finished child once
to ``children.jsonl``, restarts dead replicas, stops handing out work at the time limit, and
checkpoints.

Run directory (as for the local search, plus ``gradients.jsonl``): ``children.jsonl`` has the
same records (a child whose worker died and was re-run has ``metrics.attempts``);
``gradients.jsonl`` has one line per gradient applied on every shard: its id (the batch),
replica, children ``[start, start+n)``, and per shard the version it was computed at, the
version it was applied to, and their difference, the staleness. ``checkpoint.pt`` holds a
``strategy`` entry loadable by :class:`pynas.strategies.Reinforce` (controller, Adam state,
baseline, version) and under ``ray`` the exact shard states and the open batches.

Checkpoints are consistent cuts. A checkpoint is taken from shard snapshots that agree on the
set of received gradients; a gradient is pushed only after every event of its batch was queued,
so the events drained after the snapshot complete the record of every batch in it. Batches not
in the snapshot are saved as open, with their architectures, *before* any of their children is
written to the log. So after a kill of the driver (and with it of the local Ray instance and
all actors), ``--resume``:

* never loses or duplicates a finished child (the log is the truth; a torn last line is
  dropped and that child trained again);
* re-runs the children that were in flight, in their open batches (same indices and
  architectures); a batch whose children all finished only recomputes its gradient;
* restores the servers to the checkpoint: gradients applied after it are applied again (once)
  when their batches finish again, computed at the restored parameters.

A damaged ``checkpoint.pt`` falls back to ``checkpoint.prev.pt`` (see
:mod:`pynas.search.journal`). The same rules hold from there because a checkpoint that adds open
batches is written twice (it is then also the previous one) before any of their children is
logged: every logged child belongs to a batch that the previous checkpoint either holds as
open (re-used as above) or holds as received (its children were logged before it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pynas.argtypes import UsageError
from pynas.executors.base import death_reason
from pynas.executors.child import TaskSpec
from pynas.io import JsonlFile
from pynas.search.display import SearchDisplay
from pynas.search.distributed.server import merge_adam_states, merge_params, split_names
from pynas.search.journal import CHECKPOINT_FORMAT, Batch, RunDirError, RunJournal
from pynas.search.records import summarize
from pynas.search.settings import ExecutionSettings, RunSettings
from pynas.strategies import Reinforce
from pynas.tasks.base import SearchTask

GRADIENTS = "gradients.jsonl"
POLL_SECONDS = 0.25


MAX_REPLICA_RESTARTS = 10  # per replica, then the search stops with an error


class RaySearch:
    def __init__(
        self,
        run: RunJournal,
        task: SearchTask,
        spec: TaskSpec,
        run_settings: RunSettings,
        strategy: Reinforce,
        settings: ExecutionSettings,
        display: SearchDisplay | None = None,
    ) -> None:
        if not isinstance(strategy, Reinforce):
            raise UsageError("the Ray parameter-server search needs --strategy reinforce")
        if not strategy.settings.plain:
            raise UsageError(
                "the Ray parameter-server search runs the paper's REINFORCE (advantage R - b, one "
                "step per update); this run's preset needs more: use --preset paper or enas"
            )
        self.run = run
        self.task = task
        self.spec = spec
        self.run_settings = run_settings
        self.budget = budget = run_settings.budget
        self.strategy = strategy  # initial parameters, settings and the names' order
        self.settings = settings
        self.display = display or SearchDisplay(budget.children, enabled=False)
        self.names = [n for n, _ in strategy.controller.named_parameters()]
        sizes = {n: p.numel() for n, p in strategy.controller.named_parameters()}
        try:
            self.slices = split_names(sizes, settings.servers)
        except ValueError as exc:
            raise UsageError(f"--servers: {exc}") from None
        self.gradients = JsonlFile(run.path / GRADIENTS)
        # what the driver knows
        self.by_index: dict[int, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []  # in log order, as Search.records
        # called with each child record right after it is logged (e.g. TensorBoard)
        self.on_record: list[Callable[[dict[str, Any]], None]] = []
        self.batches: dict[int, Batch] = {}  # open batches (not in the saved snapshot)
        self.snapshot: list[dict[str, Any]] | None = None  # last saved consistent cut
        self.counts: list[int] | None = None
        self.next_index = 0
        self.next_batch = 0
        self.batch_means: list[tuple[int, float]] = []  # (batch id, mean reward), push order
        self.batch_seconds: list[float] = []
        self.allocated_at: dict[int, float] = {}
        self.written: set[int] = set()  # gradient ids in gradients.jsonl
        self.restarts: dict[int, int] = {}
        self.elapsed_before = 0.0
        self.session_start = time.monotonic()
        self.stopped_by_time = False
        self._ray: Any = None

    # ----- restore (no Ray needed) ------------------------------------------------------------
    def restore(self) -> None:
        say = self.display.message
        state, read = self.run.begin_restore(say)
        if state is None:
            self._rewrite_gradients([])
            return
        if state.get("format") != CHECKPOINT_FORMAT or state.get("executor") != "ray":
            raise RunDirError(
                f"{self.run.checkpoint_path}: not a checkpoint of a Ray search; resume this run "
                "with the executor it was started with"
            )
        saved = state["ray"]
        if len(saved["shards"]) != self.settings.servers:
            raise RunDirError(f"{self.run.checkpoint_path}: saved with a different --servers")
        self.snapshot = saved["shards"]
        self.next_index, self.next_batch = saved["next_index"], saved["next_batch"]
        self.batches = {b["id"]: Batch.from_dict(b) for b in saved["open"]}
        self.batch_means = [tuple(x) for x in saved["batch_means"]]  # type: ignore[misc]
        self.restarts = {int(k): v for k, v in saved.get("restarts", {}).items()}
        self.elapsed_before = state["elapsed"]
        self.display.elapsed_before = self.elapsed_before
        open_batches = list(self.batches.values())
        records = self.run.reconcile(read, self.next_index, open_batches, say)
        checked = self.run.check(records, self.next_index, open_batches)
        self.by_index = {r["index"]: r for r in checked}
        self.records = list(records)  # log order
        self._rewrite_gradients(self.snapshot)
        ordered = [self.by_index[i] for i in sorted(self.by_index)]
        self.display.restored(ordered, [m for _, m in self.batch_means])
        if ordered:
            reused = sum(1 for r in ordered if self._open_batch_of(r["index"]) is not None)
            say(
                f"resumed: {len(ordered)} children logged, {len(self.batches)} open batches"
                + (f" ({reused} of their children re-used)" if reused else "")
            )

    def _open_batch_of(self, index: int) -> Batch | None:
        for b in self.batches.values():
            if index in b.indices():
                return b
        return None

    # ----- the run ----------------------------------------------------------------------------
    def run_all(self) -> dict[str, Any]:
        from pynas.executors.ray_runtime import connect, import_ray

        ray = self._ray = import_ray()
        started = connect(self.settings.address)
        actors: list[Any] = []
        try:
            shards, coordinator, replicas = self._start_actors(actors)
            self._loop(shards, coordinator, replicas, actors)
        finally:
            if started:
                ray.shutdown()
            else:  # a Ray instance we did not start (tests, notebooks): leave it clean
                for actor in actors:
                    ray.kill(actor)
        self.display.close()
        return self.summary()

    def _start_actors(self, actors: list[Any]) -> tuple[list[Any], Any, dict[int, Any]]:
        from pynas.search.distributed.coordinator import Coordinator
        from pynas.search.distributed.server import ParameterShard

        ray = self._ray
        settings = self.strategy.settings
        shard_cls = ray.remote(num_cpus=0)(ParameterShard)
        params = dict(self.strategy.controller.named_parameters())
        shards = []
        for s, names in enumerate(self.slices):
            state = self.snapshot[s] if self.snapshot is not None else None
            shards.append(
                shard_cls.remote(
                    s,
                    {n: params[n].detach() for n in names},
                    settings.lr,
                    settings.adam_betas,
                    self.budget.grads_per_update,
                    settings.baseline_decay if s == 0 else None,
                    state,
                )
            )
        actors += shards
        logged = self.by_index
        open_batches = [
            {**b.to_dict(), "results": {i: logged[i]["reward"] for i in b.indices() if i in logged}}
            for b in self.batches.values()
        ]
        coordinator = ray.remote(num_cpus=0)(Coordinator).remote(
            self.budget.children,
            self.budget.batch_size,
            self.next_index,
            self.next_batch,
            open_batches,
        )
        actors.append(coordinator)
        replicas = {k: self._replica(k, shards, coordinator) for k in range(self.settings.replicas)}
        actors += replicas.values()
        if self.snapshot is None:  # fresh: the initial state, so a kill at once can resume
            self.snapshot = ray.get([s.snapshot.remote() for s in shards])
            self._save(self.snapshot)
        return shards, coordinator, replicas

    def _replica(self, k: int, shards: list[Any], coordinator: Any) -> Any:
        from pynas.search.distributed.replica import Replica

        s = self.settings
        return self._ray.remote(num_cpus=0, max_restarts=0)(Replica).remote(
            k,
            shards,
            coordinator,
            self.spec,
            self.run_settings,
            self.slices,
            s.child_cpus,
            s.child_gpus,
            s.child_retries,
        )

    def _loop(
        self, shards: list[Any], coordinator: Any, replicas: dict[int, Any], actors: list[Any]
    ) -> None:
        ray = self._ray
        from ray.exceptions import RayActorError

        runs = {replicas[k].run.remote(): k for k in replicas}
        while runs:
            ready, _ = ray.wait(list(runs), num_returns=len(runs), timeout=POLL_SECONDS)
            for ref in ready:
                k = runs.pop(ref)
                try:
                    ray.get(ref)
                except RayActorError as exc:
                    replicas[k] = self._restart(k, exc, shards, coordinator)
                    actors.append(replicas[k])
                    runs[replicas[k].run.remote()] = k
            self._cycle(shards, coordinator)
            self._check_time(coordinator)
        self._cycle(shards, coordinator)  # everything is in: a final consistent checkpoint

    def _restart(self, k: int, exc: BaseException, shards: list[Any], coordinator: Any) -> Any:
        self.restarts[k] = self.restarts.get(k, 0) + 1
        if self.restarts[k] > MAX_REPLICA_RESTARTS:
            raise RuntimeError(f"replica {k} died {self.restarts[k]} times; giving up: {exc}")
        self.display.message(
            f"{death_reason(exc, f'replica {k}')}; restarting it from the servers' parameters"
        )
        return self._replica(k, shards, coordinator)

    def _check_time(self, coordinator: Any) -> None:
        limit = self.budget.time_limit
        if limit is None or self.stopped_by_time:
            return
        per_batch = sum(self.batch_seconds) / len(self.batch_seconds) if self.batch_seconds else 0
        if self.elapsed() + per_batch > limit:
            self.stopped_by_time = True
            coordinator.stop.remote()

    # ----- one driver cycle: snapshot, drain, log, checkpoint ----------------------------------
    def _consistent_snapshot(
        self, shards: list[Any], tries: int = 5
    ) -> list[dict[str, Any]] | None:
        ray = self._ray
        for _ in range(tries):
            snaps = ray.get([s.snapshot.remote() for s in shards])
            if all(s["received"] == snaps[0]["received"] for s in snaps):
                return snaps
            time.sleep(0.02)
        return None  # a push is half-way (e.g. its replica died mid-push): next cycle

    def _cycle(self, shards: list[Any], coordinator: Any) -> None:
        ray = self._ray
        counts = ray.get([s.received_count.remote() for s in shards])
        snap = self._consistent_snapshot(shards) if counts != self.counts else None
        events = ray.get(coordinator.drain.remote())
        changed = False
        children = []
        for kind, data in events:
            if kind == "allocated":
                known = self.batches.get(data["id"])
                if known is None:  # a new batch (a restored one keeps its architectures)
                    self.batches[data["id"]] = Batch(
                        data["start"], data["n"], data["archs"], data["id"]
                    )
                else:
                    known.start, known.n = data["start"], data["n"]
                self.allocated_at[data["id"]] = time.monotonic()
                self.next_index = max(self.next_index, data["start"] + data["n"])
                self.next_batch = max(self.next_batch, data["id"] + 1)
                changed = True
            elif kind == "sampled":
                self.batches[data["id"]].archs = list(data["archs"])
                changed = True
            elif kind == "child":
                children.append(data["record"])
            elif kind == "died":  # a worker died on a child: its retry budget survives a resume
                deaths = self.batches[data["id"]].deaths
                deaths[data["index"]] = deaths.get(data["index"], 0) + 1
            elif kind == "pushed":
                if data["id"] in self.allocated_at:
                    self.batch_seconds.append(time.monotonic() - self.allocated_at.pop(data["id"]))
                if data["rewards"]:
                    mean = sum(data["rewards"]) / len(data["rewards"])
                    self.batch_means.append((data["id"], mean))
                    self.display.batch(mean)
        if changed:  # open batches must be saved before any of their children is logged:
            assert self.snapshot is not None
            self._save(self.snapshot)
            self._save(self.snapshot)  # twice: the previous checkpoint must hold them too
        for record in children:
            self._log(record)
        if snap is not None:
            self.counts = [len(s["received"]) for s in snap]
            self._save(snap)
            self._append_gradients(snap)

    def _log(self, record: dict[str, Any]) -> None:
        if record["index"] in self.by_index:  # reported twice: written once
            return
        self.run.append(record)
        self.by_index[record["index"]] = record
        self.records.append(record)
        for listener in self.on_record:
            listener(record)
        space = self.task.space
        arch = json.dumps(record["arch"], separators=(",", ":"))
        try:
            rendered = space.render(space.arch_from_json(arch))
        except Exception:  # e.g. a CNN space at another depth than the record's
            rendered = None
        self.display.child(record, rendered)

    # ----- checkpoint and gradients.jsonl -----------------------------------------------------
    def _save(self, snap: list[dict[str, Any]]) -> None:
        received = set(snap[0]["received"])
        self.batches = {i: b for i, b in self.batches.items() if i not in received}
        open_batches = [b.to_dict() for _, b in sorted(self.batches.items())]
        # Reinforce's own state format, with the learned parts from the servers
        strategy = self.strategy.state_dict_with(
            controller=merge_params(snap),
            optimizer=merge_adam_states(snap, self.names),
            baseline=snap[0]["baseline"],
            version=snap[0]["version"],
        )  # gradients received but not applied yet: per shard, under "ray"
        self.run.save_checkpoint(
            {
                "executor": "ray",
                "ray": {
                    "servers": len(snap),
                    "slices": self.slices,
                    "shards": snap,
                    "next_index": self.next_index,
                    "next_batch": self.next_batch,
                    "open": open_batches,
                    "batch_means": [list(x) for x in self.batch_means if x[0] in received],
                    "restarts": self.restarts,
                },
            },
            strategy,
            self.elapsed(),
        )
        self.snapshot = snap

    @staticmethod
    def _gradient_lines(snap: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One line per gradient applied on every shard, in order of the last application."""
        per_shard = [{a["id"]: a for a in s["applied"]} for s in snap]
        common = [a["id"] for a in snap[-1]["applied"] if all(a["id"] in p for p in per_shard)]
        lines = []
        for gid in common:
            entries = [p[gid] for p in per_shard]
            first = entries[0]
            computed = [e["version_computed"] for e in entries]
            applied = [e["version_applied"] for e in entries]
            lines.append(
                {
                    "id": gid,
                    "replica": first.get("replica"),
                    "children": [first.get("start"), first.get("start", 0) + first.get("n", 0)],
                    "version_computed": computed,
                    "version_applied": applied,
                    "staleness": [a - c for a, c in zip(applied, computed, strict=True)],
                }
            )
        return lines

    def _append_gradients(self, snap: list[dict[str, Any]]) -> None:
        new = [x for x in self._gradient_lines(snap) if x["id"] not in self.written]
        self.gradients.append_all(new)
        self.written.update(x["id"] for x in new)

    def _rewrite_gradients(self, snap: list[dict[str, Any]]) -> None:
        """gradients.jsonl as of the checkpoint (drops lines of gradients applied after it)."""
        lines = self._gradient_lines(snap) if snap else []
        self.gradients.rewrite(lines)
        self.written = {x["id"] for x in lines}

    # ----- results ----------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.session_start

    def summary(self) -> dict[str, Any]:
        records = [self.by_index[i] for i in sorted(self.by_index)]
        means = [m for _, m in self.batch_means]
        lines = self._gradient_lines(self.snapshot) if self.snapshot else []
        stale = [s for x in lines for s in x["staleness"]]
        out = summarize(
            self.task.name,
            self.strategy.name,
            records,
            means,
            self.budget,
            self.stopped_by_time,
            self.elapsed(),
        )
        out["executor"] = "ray"
        out["parameter_servers"] = {
            "servers": self.settings.servers,
            "replicas": self.settings.replicas,
            "batch_size": self.budget.batch_size,
            "grads_per_update": self.budget.grads_per_update,
            "gradients_applied": len(lines),
            "version": self.snapshot[0]["version"] if self.snapshot else 0,
            "staleness_mean": sum(stale) / len(stale) if stale else None,
            "staleness_max": max(stale) if stale else None,
            "replica_restarts": sum(self.restarts.values()),
            "child_retries": sum(r.get("metrics", {}).get("attempts", 1) - 1 for r in records),
        }
        return out
