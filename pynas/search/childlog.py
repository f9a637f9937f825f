"""The append-only log of finished children: one JSON object per line, ``children.jsonl``.

Every line is written with a single ``write`` of the complete line, then flushed and fsynced,
so a kill can only ever leave a torn *last* line. Reading drops such a line (and truncates the
file back to its last complete line, so later appends stay well-formed); damage anywhere else
is an error, never silently skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ChildLogError(Exception):
    """The log is damaged in a way a kill cannot explain (a bad line that is not the last)."""


@dataclass
class LogReadReport:
    records: list[dict[str, Any]]
    dropped_bytes: int  # size of a torn last line that was removed, 0 if none


def encode_record(record: dict[str, Any]) -> str:
    """One compact JSON line (keys in the record's order), newline included."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"


class ChildLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self, repair: bool = True) -> LogReadReport:
        """All complete records; a torn last line is dropped (and cut off if `repair`)."""
        if not self.path.exists():
            return LogReadReport([], 0)
        data = self.path.read_bytes()
        records: list[dict[str, Any]] = []
        pos = 0
        dropped = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            line = data[pos:] if end < 0 else data[pos:end]
            last = end < 0 or end == len(data) - 1
            record = _parse(line)
            if record is None or end < 0:
                if not last:
                    raise ChildLogError(
                        f"{self.path}: line {len(records) + 1} is not a complete JSON record "
                        f"but is not the last line; the log was damaged, not just cut off"
                    )
                dropped = len(data) - pos
                break
            records.append(record)
            pos = end + 1
        if dropped and repair:
            with open(self.path, "r+b") as f:
                f.truncate(pos)
                f.flush()
                os.fsync(f.fileno())
        return LogReadReport(records, dropped)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably: one write of the whole line, flush, fsync."""
        line = encode_record(record).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a regular file takes the whole line or raises
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
