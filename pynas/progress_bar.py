"""A small progress bar: redraws one line on a terminal, prints sparse lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """`update(n, **fields)` advances by n; fields (e.g. loss=5.1) show after the bar."""

    def __init__(
        self,
        total: int,
        desc: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        min_interval: float = 0.2,
        plain_every: float = 0.1,
    ) -> None:
        self.total = max(total, 1)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.plain_every = plain_every  # fraction of the total between plain-text lines
        self.count = 0
        self.fields: dict[str, Any] = {}
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._next_plain = plain_every

    def line(self) -> str:
        frac = min(self.count / self.total, 1.0)
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac * (1 - frac) if frac > 0 else float("nan")
        width = 24
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        fields = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fields.items()
        )
        eta_text = format_seconds(eta) if eta == eta else "?"
        return (
            f"{self.desc} [{bar}] {self.count}/{self.total} "
            f"{format_seconds(elapsed)}<{eta_text} {fields}".rstrip()
        )

    def update(self, n: int = 1, **fields: Any) -> None:
        self.count += n
        self.fields.update(fields)
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= self.min_interval or self.count >= self.total:
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
        elif self.count / self.total >= self._next_plain:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            while self._next_plain <= self.count / self.total:
                self._next_plain += self.plain_every

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
