"""Parameter-server shards (SPEC §6): each owns a disjoint slice of the controller's parameters.

A shard holds its slice's tensors, the slice's Adam state and a version counter. Replicas
``pull`` the slice (with the version) and later ``push`` a gradient slice tagged with a unique
id and the version it was computed against. A shard keeps every id it ever received, so a
re-sent gradient (a replica restarted after a partial push) is ignored: each gradient is
applied exactly once. Once ``grads_per_update`` gradients have accumulated their mean is
applied with Adam and the version increments; each applied gradient is logged with the version
it was computed at and the version it was applied to (their difference is its staleness).

Shard 0 also keeps the REINFORCE baseline (Reinforce's moving average of rewards): a push
to shard 0 carries the batch's rewards, so the baseline and the gradients that saw it are in
one consistent state, and a snapshot of shard 0 holds both.

Adam is elementwise, so Adam on S slices is exactly Adam on the whole parameter vector; the
slices' states merge into one ``torch.optim.Adam`` state dict (:func:`merge_adam_states`).

This module does not import Ray: the class is made an actor with ``ray.remote`` by the driver.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from pynas.strategies.reinforce import apply_mean_gradient, moving_baseline


def split_names(sizes: Mapping[str, int], shards: int) -> list[list[str]]:
    """Assign parameter names to `shards` disjoint slices of balanced size (largest first)."""
    if shards < 1:
        raise ValueError(f"need at least one shard, got {shards}")
    if shards > len(sizes):
        raise ValueError(
            f"{shards} shards for {len(sizes)} parameter tensors: use at most {len(sizes)}"
        )
    slices: list[list[str]] = [[] for _ in range(shards)]
    load = [0] * shards
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        s = min(range(shards), key=lambda i: (load[i], i))
        slices[s].append(name)
        load[s] += sizes[name]
    order = list(sizes)
    return [sorted(names, key=order.index) for names in slices]


class ParameterShard:
    def __init__(
        self,
        shard_id: int,
        params: Mapping[str, torch.Tensor],
        lr: float,
        betas: tuple[float, float],
        grads_per_update: int,
        baseline_decay: float | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        torch.set_num_threads(1)
        if grads_per_update < 1:
            raise ValueError("grads_per_update must be >= 1")
        self.shard_id = shard_id
        self.grads_per_update = grads_per_update
        self.baseline_decay = baseline_decay  # not None on the shard that keeps the baseline
        self.params = {n: torch.nn.Parameter(t.detach().clone().float()) for n, t in params.items()}
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=lr, betas=betas)
        self.version = 0
        self.baseline: float | None = None
        self.buffer: list[dict[str, Any]] = []  # received, not yet applied
        self.received: set[int] = set()
        self.applied: list[dict[str, Any]] = []
        if state is not None:
            self.load(state)

    # ----- replicas ---------------------------------------------------------------------------
    def pull(self) -> tuple[int, dict[str, torch.Tensor], float | None]:
        """(version, a copy of the slice, the baseline if this shard keeps it)."""
        with torch.no_grad():
            tensors = {n: p.detach().clone() for n, p in self.params.items()}
        return self.version, tensors, self.baseline

    def push(
        self,
        grad_id: int,
        version: int,
        tensors: Mapping[str, torch.Tensor],
        info: Mapping[str, Any] | None = None,
        rewards: Sequence[float] | None = None,
    ) -> bool:
        """Accept one gradient slice; False (and nothing changes) if `grad_id` came before."""
        if grad_id in self.received:
            return False
        if set(tensors) != set(self.params):
            raise ValueError(
                f"shard {self.shard_id}: gradient {grad_id} has tensors {sorted(tensors)}, "
                f"expected {sorted(self.params)}"
            )
        self.received.add(grad_id)
        if rewards is not None and self.baseline_decay is not None:
            self.baseline = moving_baseline(self.baseline, map(float, rewards), self.baseline_decay)
        self.buffer.append(
            {"id": grad_id, "version": version, "tensors": dict(tensors), "info": dict(info or {})}
        )
        if len(self.buffer) >= self.grads_per_update:
            self._apply()
        return True

    def _apply(self) -> None:
        apply_mean_gradient(self.optimizer, self.params, [g["tensors"] for g in self.buffer])
        for g in self.buffer:
            self.applied.append(
                {
                    "id": g["id"],
                    "version_computed": g["version"],
                    "version_applied": self.version,
                    **g["info"],
                }
            )
        self.version += 1
        self.buffer = []

    # ----- driver -----------------------------------------------------------------------------
    def received_count(self) -> int:
        return len(self.received)

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to restore this shard exactly (a deep copy)."""
        return copy.deepcopy(
            {
                "shard": self.shard_id,
                "params": {n: p.detach() for n, p in self.params.items()},
                "optimizer": self.optimizer.state_dict(),
                "version": self.version,
                "baseline": self.baseline,
                "buffer": self.buffer,
                "received": sorted(self.received),
                "applied": self.applied,
            }
        )

    def load(self, state: Mapping[str, Any]) -> None:
        state = copy.deepcopy(dict(state))
        if set(state["params"]) != set(self.params):
            raise ValueError(f"shard {self.shard_id}: snapshot holds other parameters")
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["params"][n])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = int(state["version"])
        self.baseline = state["baseline"]
        self.buffer = list(state["buffer"])
        self.received = set(state["received"])
        self.applied = list(state["applied"])


# ----- merging slices into the local search's formats ------------------------------------------
def merge_params(snapshots: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for snap in snapshots:
        out.update(snap["params"])
    return out


def merge_adam_states(
    snapshots: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> dict[str, Any]:
    """One ``torch.optim.Adam`` state dict over `names` (the controller's parameter order)."""
    position = {n: i for i, n in enumerate(names)}
    state: dict[int, Any] = {}
    group: dict[str, Any] | None = None
    for snap in snapshots:
        opt = snap["optimizer"]
        local_names = list(snap["params"])
        for local, entry in opt["state"].items():
            state[position[local_names[int(local)]]] = copy.deepcopy(entry)
        group = {k: v for k, v in opt["param_groups"][0].items() if k != "params"}
    assert group is not None
    return {"state": state, "param_groups": [{**group, "params": list(range(len(names)))}]}
