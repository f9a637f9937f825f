"""Live progress of a search: one updating status line on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from pynas.io import finite_float
from pynas.progress_bar import format_seconds

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 24) -> str:
    """One bar per value; a value that is not a finite number is a blank."""
    values = values[-width:]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    lo, hi = min(finite), max(finite)
    span = hi - lo
    if not math.isfinite(span):  # e.g. -1e308 .. 1e308
        lo, span = lo / 2, hi / 2 - lo / 2
        values = [v / 2 for v in values]
    return "".join(
        (SPARK[int((v - lo) / span * (len(SPARK) - 1)) if span else 0] if math.isfinite(v) else " ")
        for v in values
    )


class SearchDisplay:
    """Children done/total, best reward (and ppl), reward trend per batch, ETA."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        enabled: bool = True,
        plain_interval: float = 10.0,
        time_limit: float | None = None,
        elapsed_before: float = 0.0,
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.plain_interval = plain_interval
        self.time_limit = time_limit  # seconds of search over all sessions, None: no limit
        self.elapsed_before = elapsed_before
        self.done = 0
        self.failed = 0
        self.best: dict[str, Any] | None = None
        self.batch_means: list[float] = []
        self.start = time.monotonic()
        self.session_done = 0
        self._last_plain = 0.0

    # ----- events -----------------------------------------------------------------------------
    def restored(self, records: list[dict[str, Any]], batch_means: list[float]) -> None:
        for r in records:
            self._count(r)
        self.batch_means = list(batch_means)

    def child(self, record: dict[str, Any], rendered: str | None = None) -> None:
        improved = self._count(record)
        self.session_done += 1
        if improved and rendered is not None:
            self._clear()
            self._write(
                f"new best: child {record['index']} reward {record['reward']:.6g}"
                f"{_ppl(record)}\n{rendered}\n"
            )
        self._status()

    def batch(self, mean_reward: float) -> None:
        self.batch_means.append(mean_reward)
        if not self.tty:
            self._status(force=True)

    def message(self, text: str) -> None:
        self._clear()
        self._write(text + "\n")

    def close(self) -> None:
        if self.enabled and self.tty:
            self._write("\r" + self.line() + "\x1b[K\n")

    # ----- formatting -------------------------------------------------------------------------
    def eta_seconds(self) -> float:
        """Until the children budget is used up or the time limit is reached, whichever first."""
        elapsed = time.monotonic() - self.start
        if not self.session_done:
            return math.nan
        eta = elapsed / self.session_done * (self.total - self.done)
        if self.time_limit is not None:
            eta = min(eta, max(0.0, self.time_limit - self.elapsed_before - elapsed))
        return eta

    def line(self) -> str:
        best = "-"
        if self.best is not None:
            best = f"{self.best['reward']:.4g}{_ppl(self.best)} (child {self.best['index']})"
        trend = ""
        if self.batch_means:
            first, last = self.batch_means[0], self.batch_means[-1]
            trend = f" | batch mean reward {first:.3g} -> {last:.3g} {sparkline(self.batch_means)}"
        eta = self.eta_seconds()
        eta_text = format_seconds(eta) if eta == eta else "?"
        fails = f" ({self.failed} failed)" if self.failed else ""
        return (
            f"children {self.done}/{self.total}{fails} | best {best}{trend} | "
            f"elapsed {format_seconds(time.monotonic() - self.start)} ETA {eta_text}"
        )

    def _count(self, record: dict[str, Any]) -> bool:
        self.done += 1
        if record.get("status") != "ok":
            self.failed += 1
        reward = finite_float(record.get("reward"))  # None: the placeholder of a damaged line
        if record.get("status") != "ok":  # a failure's reward 0 is no architecture to show
            return False
        if reward is not None and (self.best is None or reward > self.best["reward"]):
            self.best = record
            return True
        return False

    def _status(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            self._write("\r" + self.line() + "\x1b[K")
            return
        now = time.monotonic()
        if force or now - self._last_plain >= self.plain_interval:
            self._write(self.line() + "\n")
            self._last_plain = now

    def _clear(self) -> None:
        if self.enabled and self.tty:
            self._write("\r\x1b[K")

    def _write(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text)
            self.stream.flush()


def _ppl(record: dict[str, Any]) -> str:
    ppl = finite_float(record.get("ppl"))
    return f" (ppl {ppl:.1f})" if ppl is not None else ""
