"""The coordinator actor: which replica trains which children, and what happened to them.

It hands out *batches* (a batch id and a range of child indices, m children) to replicas, keeps
each open batch's architectures and finished children's rewards, and queues events for the
driver, which drains them in order:

* ``allocated`` — a batch was given to a replica (indices ``start .. start+n-1``),
* ``sampled`` — the replica sampled the batch's architectures (at the given versions),
* ``child`` — a child finished (the record for ``children.jsonl``),
* ``died`` — the worker training a child died (it counts against the child's retries, also
  when another replica finishes the batch),
* ``pushed`` — the batch's gradient reached every parameter-server shard.

A replica reports in that order and waits for each report, so when a gradient is in the
servers every event of its batch is already queued. A replica that asks for work while it
still holds an open batch was restarted after dying: it gets that batch back, with the rewards
of the children that finished, and trains only the rest. Batches restored from a checkpoint
are handed out again before new ones.

This module does not import Ray: the class is made an actor with ``ray.remote`` by the driver.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any


class Coordinator:
    def __init__(
        self,
        children: int,
        batch_size: int,
        next_index: int = 0,
        next_batch: int = 0,
        open_batches: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.children = children
        self.batch_size = batch_size
        self.next_index = next_index
        self.next_batch = next_batch
        self.batches: dict[int, dict[str, Any]] = {}
        for b in open_batches:
            self.batches[b["id"]] = {
                "id": b["id"], "start": b["start"], "n": b["n"], "archs": b.get("archs"),
                "results": dict(b.get("results", {})), "replica": None,
                "deaths": {int(i): d for i, d in (b.get("deaths") or {}).items()},
            }  # fmt: skip
        self.redo: deque[int] = deque(sorted(self.batches))
        self.stopped = False
        self.events: list[tuple[str, dict[str, Any]]] = []

    @staticmethod
    def _job(batch: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "start", "n", "archs", "results", "deaths")
        return {k: (dict(batch[k]) if k in ("results", "deaths") else batch[k]) for k in keys}

    def next_batch_for(self, replica: int) -> dict[str, Any] | None:
        """The batch `replica` should work on next, or None when there is no more work."""
        for batch in self.batches.values():
            if batch["replica"] == replica:  # restarted after dying: finish that batch
                return self._job(batch)
        if self.stopped:
            return None
        if self.redo:
            batch = self.batches[self.redo.popleft()]
        else:
            n = min(self.batch_size, self.children - self.next_index)
            if n <= 0:
                return None
            batch = {"id": self.next_batch, "start": self.next_index, "n": n, "archs": None,
                     "results": {}, "replica": None, "deaths": {}}  # fmt: skip
            self.batches[batch["id"]] = batch
            self.next_batch += 1
            self.next_index += n
        batch["replica"] = replica
        self.events.append(
            ("allocated", {k: batch[k] for k in ("id", "start", "n", "replica", "archs")})
        )
        return self._job(batch)

    def sampled(self, batch_id: int, archs: Sequence[str], versions: Sequence[int]) -> None:
        batch = self.batches[batch_id]
        if batch["archs"] is None:
            batch["archs"] = list(archs)
            self.events.append(
                ("sampled", {"id": batch_id, "archs": list(archs), "versions": list(versions)})
            )

    def child_done(self, batch_id: int, record: dict[str, Any]) -> bool:
        """Queue a finished child's record; False if that child was reported before."""
        batch = self.batches.get(batch_id)
        index = record["index"]
        if batch is None or index in batch["results"]:
            return False
        batch["results"][index] = record["reward"]
        self.events.append(("child", {"id": batch_id, "record": record}))
        return True

    def child_died(self, batch_id: int, index: int) -> None:
        """The worker training child `index` died (one attempt used)."""
        batch = self.batches.get(batch_id)
        if batch is not None:
            batch["deaths"][index] = batch["deaths"].get(index, 0) + 1
            self.events.append(("died", {"id": batch_id, "index": index}))

    def batch_done(self, batch_id: int, info: dict[str, Any]) -> None:
        batch = self.batches.pop(batch_id, None)
        if batch is not None:
            indices = range(batch["start"], batch["start"] + batch["n"])
            rewards = [batch["results"][i] for i in indices if i in batch["results"]]
            self.events.append(("pushed", {"id": batch_id, "rewards": rewards, **info}))

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        events, self.events = self.events, []
        return events

    def stop(self) -> None:
        """Hand out no more batches (replicas finish the ones they hold)."""
        self.stopped = True

    def open_batches(self) -> list[int]:
        return sorted(self.batches)
