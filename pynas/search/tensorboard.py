"""Optional TensorBoard logging of a search (``python -m pynas.search --tensorboard [DIR]``).

Per child (step = child index): ``child/reward``, ``child/best_reward`` (best so far),
``child/ppl`` or ``child/accuracy``, and, for REINFORCE, ``controller/baseline``,
``controller/entropy`` and ``controller/log_prob``. Each session rewrites the whole history from
``children.jsonl`` (older events are purged), so a resumed run shows every child exactly once.
A value that is not a finite number (a failed child's ``inf`` perplexity, a missing field, the
placeholder of a damaged log line) is skipped, not logged: one ``inf`` or ``NaN`` point would
blank or squash TensorBoard's whole chart; the record in ``children.jsonl`` keeps the value.
Needs the ``tensorboard`` package (``pip install 'pynas[tensorboard]'``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pynas.argtypes import UsageError
from pynas.io import finite_float

INSTALL_HINT = "pip install 'pynas[tensorboard]' (or: pip install tensorboard)"


def require_tensorboard() -> None:
    """Raise UsageError (exit 2) when torch's SummaryWriter cannot be used."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"--tensorboard needs the tensorboard package ({exc}); install it with {INSTALL_HINT}"
        ) from None


class TensorBoardLogger:
    """Writes child records as scalars; ``log`` is a search ``on_record`` listener."""

    def __init__(self, log_dir: str | os.PathLike[str], records: list[dict[str, Any]]) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        # purge_step=0: events of earlier sessions are hidden; the history is re-logged below
        self.writer = SummaryWriter(str(self.log_dir), purge_step=0, flush_secs=10)
        self.best: float | None = None
        for record in sorted(records, key=lambda r: r.get("index", 0)):
            self.log(record, flush=False)
        self.writer.flush()

    def log(self, record: dict[str, Any], flush: bool = True) -> None:
        step = int(record["index"])
        scalars: dict[str, float | None] = {"child/reward": finite_float(record.get("reward"))}
        reward = scalars["child/reward"]
        if reward is not None:
            self.best = reward if self.best is None else max(self.best, reward)
        scalars["child/best_reward"] = self.best
        scalars["child/ppl"] = finite_float(record.get("ppl"))
        metrics = record.get("metrics")
        accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
        scalars["child/accuracy"] = finite_float(accuracy)
        for key in ("baseline", "entropy", "log_prob"):
            scalars[f"controller/{key}"] = finite_float(record.get(key))
        for tag, value in scalars.items():
            if value is not None:
                self.writer.add_scalar(tag, value, step)
        if flush:
            self.writer.flush()

    def close(self) -> None:
        self.writer.close()
