"""A controller replica (SPEC §6): pull, sample m architectures, train them, push a gradient.

``run()`` loops until the coordinator has no more work:

1. take a batch from the coordinator (a new one, or the one this replica held when it died);
2. pull the parameters (and their versions) from every shard, and the baseline from shard 0
   (everything the batch's gradient is computed with is what was pulled here);
3. sample the batch's m architectures with a generator seeded by (search seed, batch id)
   (a batch restored from a checkpoint already has its architectures) and report them;
4. train the children that have not finished yet as Ray tasks (with retries on worker death,
   counted by the coordinator so that a restarted replica keeps a child's retry budget),
   reporting each finished child as it arrives;
5. compute the REINFORCE gradient at the pulled parameters with the pulled baseline
   (:meth:`pynas.strategies.Reinforce.gradient`, i.e. :func:`pynas.controller.compute_gradient`)
   and push each shard its slice, tagged with the batch id and the version it was pulled at;
6. tell the coordinator the batch is done.

This module does not import Ray at import time: the class is made an actor by the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pynas.executors.child import ChildEvaluator, TaskSpec, build_task
from pynas.executors.ray_children import RayChildRunner
from pynas.executors.worker import set_process_name


def batch_seed(seed: int, batch_id: int) -> int:
    """Seed of the generator that samples batch `batch_id` (the same after any restart)."""
    return (seed * 1_000_003 + 7_919 * batch_id + 1) % (2**63)


class Replica:
    def __init__(
        self,
        replica_id: int,
        shards: Sequence[Any],
        coordinator: Any,
        spec: TaskSpec,
        settings: Any,
        slices: Sequence[Sequence[str]],
        child_cpus: float = 1.0,
        child_gpus: float = 0.0,
        retries: int = 2,
    ) -> None:
        torch.set_num_threads(1)
        self.replica_id = replica_id
        self.shards = list(shards)
        self.coordinator = coordinator
        self.seed = int(settings.seed)
        self.slices = [list(s) for s in slices]
        self.task = build_task(spec)  # its space (and depth schedule) for sampling
        # the run's strategy (pynas.search.settings.RunSettings builds it)
        self.strategy = settings.make_strategy(self.task.space)
        self.runner = RayChildRunner(ChildEvaluator(spec), child_cpus, child_gpus, retries)

    def run(self) -> int:
        """Work until there are no more batches; the number of batches this call finished."""
        import ray

        done = 0
        while True:
            job = ray.get(self.coordinator.next_batch_for.remote(self.replica_id))
            if job is None:
                return done
            self._batch(job)
            done += 1

    def _pull(self) -> list[int]:
        """Load the shards' parameters and shard 0's baseline; the versions pulled."""
        import ray

        pulled = ray.get([s.pull.remote() for s in self.shards])
        params: dict[str, torch.Tensor] = {}
        for _, tensors, _ in pulled:
            params.update(tensors)
        self.strategy.controller.load_state_dict(params)
        self.strategy.baseline = pulled[0][2]
        return [version for version, _, _ in pulled]

    def _batch(self, job: dict[str, Any]) -> None:
        import ray

        from pynas.search.policy import policy_stats
        from pynas.search.records import child_record

        space = self.task.space
        batch_id, start, n = job["id"], job["start"], job["n"]
        set_process_name(f"pynas-b{batch_id}")  # `ps -o comm`: the batch this replica works on
        versions = self._pull()
        if job["archs"] is None:
            if self.task.before_ask is not None:  # e.g. CNN depth from children sampled so far
                self.task.before_ask(start)
            self.strategy.generator.manual_seed(batch_seed(self.seed, batch_id))
            archs_json = [space.arch_to_json(a) for a in self.strategy.ask(n)]
            ray.get(self.coordinator.sampled.remote(batch_id, archs_json, versions))
        else:
            archs_json = list(job["archs"])
        # baseline, log_prob, entropy per child, as the local search logs them
        policy = policy_stats(self.strategy, space, start, archs_json)
        rewards = {int(i): float(r) for i, r in job["results"].items()}
        todo = [(start + k, a) for k, a in enumerate(archs_json) if start + k not in rewards]
        deaths = {int(i): int(d) for i, d in job["deaths"].items()}

        def died(item: tuple[int, str]) -> None:
            ray.get(self.coordinator.child_died.remote(batch_id, item[0]))

        for outcome in self.runner.run(todo, lambda item: deaths.get(item[0], 0), died):
            record = child_record(*outcome, extra=policy.get(outcome[0]))
            ray.get(self.coordinator.child_done.remote(batch_id, record))
            rewards[record["index"]] = record["reward"]
        batch_rewards = [rewards[start + k] for k in range(n)]
        archs = [space.arch_from_json(a) for a in archs_json]
        grad = self.strategy.gradient(archs, batch_rewards)
        info = {"replica": self.replica_id, "start": start, "n": n}
        ray.get(
            [
                shard.push.remote(
                    batch_id,
                    versions[s],
                    {name: grad.tensors[name] for name in self.slices[s]},
                    info,
                    batch_rewards if s == 0 else None,
                )
                for s, shard in enumerate(self.shards)
            ]
        )
        ray.get(self.coordinator.batch_done.remote(batch_id, info))
