"""The one way pynas writes and reads its files: JSON records and logs, atomic replacement, locks.

Every file of a run directory goes through this module: ``run.json``, ``children.jsonl``,
``gradients.jsonl``, ``summary.json``, the checkpoints, and the retrain directory's
``config.json``, ``results.jsonl``, ``summary.json`` and models; so do saved models and fetched
data. It is the foundation layer: it imports nothing of pynas.

**Non-finite numbers.** JSON has no NaN or infinity, and a failed child's numbers often are
(an ``inf`` validation perplexity, a ``nan`` loss). Wherever one occurs (top level, nested
dicts, lists), it is written as the JSON string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``,
and reading turns exactly those strings back into floats, so every file is strict JSON
(``jq``, JavaScript and ``json.loads`` read it) and every value written reads back equal.

* The value of a key ``"arch"`` (at any depth) is an architecture's canonical JSON: it is
  written and read untouched (a decision may well have the string choice ``"NaN"``).
* A string that would read back as a number is escaped with a leading ``~`` (``"NaN"`` is
  written ``"~NaN"``, ``"~NaN"`` is ``"~~NaN"``) and unescaped on reading, so strings survive too.
* For files of earlier versions, reading also accepts the strings ``"nan"``, ``"inf"`` and
  ``"-inf"`` (what ``ChildResult.to_dict`` wrote for top-level metrics) and the bare tokens
  ``NaN``/``Infinity`` (which ``json.dumps`` wrote into ``summary.json``).
* Numbers of other types (numpy scalars) are written as int or float; ints of any size are
  kept exactly. Dict keys are strings (JSON's own rule).

**Durability.** A JSONL line is appended with one ``write`` of the whole line, then fsynced,
so a kill can only leave a torn *last* line; reading drops it (and, when asked, cuts it off).
A damaged line anywhere else is never skipped silently: reading raises
:class:`DamagedLinesError` naming each one, and :meth:`JsonlFile.set_aside` moves such lines
into ``<file>.damaged`` (with their line numbers and exact bytes) when the user asks for it.
Whole files are replaced atomically (:func:`replacing`, :func:`write_atomic`: temporary file,
fsync, rename, fsync of the directory), torch objects too (:func:`save_torch`). A directory in
use by one process is locked with :class:`DirLock`.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import numbers
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NAN, INFINITY, NEG_INFINITY = "NaN", "Infinity", "-Infinity"
_WRITE = {NAN: math.nan, INFINITY: math.inf, NEG_INFINITY: -math.inf}
# read as numbers too: what ChildResult.to_dict wrote before this module existed
_LEGACY = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_READ = {**_WRITE, **_LEGACY}
ESCAPE = "~"
ARCH_KEY = "arch"  # its value is an architecture's canonical JSON: never transformed


# ----- the codec ----------------------------------------------------------------------------
def _float_text(value: float) -> str:
    return NAN if value != value else (INFINITY if value > 0 else NEG_INFINITY)


def to_jsonable(value: Any) -> Any:
    """`value` with non-finite floats as their strings and colliding strings escaped."""
    if isinstance(value, str):
        return ESCAPE + value if value.lstrip(ESCAPE) in _READ else value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _float_text(value)
    if isinstance(value, dict):
        return {k: (v if k == ARCH_KEY else to_jsonable(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, numbers.Integral):  # numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # numpy floats
        return to_jsonable(float(value))
    return value  # json.dumps raises TypeError naming the type


def from_jsonable(value: Any) -> Any:
    """The inverse of :func:`to_jsonable` on what ``json.loads`` returns."""
    if isinstance(value, str):
        if value in _READ:
            return _READ[value]
        if value.startswith(ESCAPE) and value.lstrip(ESCAPE) in _READ:
            return value[1:]
        return value
    if isinstance(value, dict):
        return {k: (v if k == ARCH_KEY else from_jsonable(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def encode(value: Any, indent: int | None = None) -> str:
    """Strict JSON text of `value` (compact unless `indent`); no trailing newline."""
    separators = (",", ":") if indent is None else None
    return json.dumps(to_jsonable(value), indent=indent, separators=separators, allow_nan=False)


def decode(text: str | bytes) -> Any:
    """The value :func:`encode` wrote (ValueError if `text` is not JSON)."""
    return from_jsonable(json.loads(text))


def finite_float(value: Any) -> float | None:
    """`value` as a finite float if it is a real number (not a bool) that has one, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None


# ----- whole files ----------------------------------------------------------------------------
class DamagedFileError(ValueError):
    """A JSON file exists but cannot be read; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path} is damaged: {problem}")
        self.path = path
        self.problem = problem


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike[str], keep_previous: Path | None = None) -> Iterator[Path]:
    """A temporary path to write the new content of `path` to; it replaces `path` atomically.

    When the block ends without an exception the temporary file is fsynced and renamed over
    `path` (then the directory is fsynced), so `path` always holds either the old or the new
    content; on an exception it is removed and `path` is untouched. With `keep_previous`, the
    current content (if any) is first put at that path (atomically: a hard link or a copy,
    renamed into place), so a damaged new file can fall back to the one before.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_previous is not None and path.exists():
            link = keep_previous.with_name(f".{keep_previous.name}.tmp")
            link.unlink(missing_ok=True)
            try:
                os.link(path, link)
            except OSError:  # a file system without hard links: a copy, renamed into place
                shutil.copyfile(path, link)
            os.replace(link, keep_previous)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, keep_previous: Path | None = None
                 ) -> None:  # fmt: skip
    """Replace `path` by `data` atomically (see :func:`replacing`)."""
    with replacing(path, keep_previous) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def save_torch(obj: Any, path: str | os.PathLike[str], keep_previous: Path | None = None) -> None:
    """``torch.save`` `obj` so that `path` always holds either the old or the new one."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue(), keep_previous=keep_previous)


def load_torch(path: str | os.PathLike[str]) -> Any:
    """What :func:`save_torch` wrote, on the CPU. Not ``weights_only``: pynas's checkpoints hold
    Python RNG states and plain records it wrote itself; never load files of unknown origin."""
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=False)


class DirectoryInUse(Exception):
    """Another process holds the lock of a directory."""


class DirLock:
    """An exclusive lock on a directory (``DIR/.lock``), released by the OS when the process
    dies, so a killed process never leaves a stale lock."""

    def __init__(self, directory: str | os.PathLike[str], name: str = ".lock") -> None:
        self.path = Path(directory) / name
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; DirectoryInUse if another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DirectoryInUse(str(self.path.parent)) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_json(path: str | os.PathLike[str], value: Any) -> None:
    """`value` as indented JSON, replacing `path` atomically."""
    write_atomic(path, encode(value, indent=2) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """The value in a JSON file; DamagedFileError if it is not valid JSON (or not UTF-8)."""
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise DamagedFileError(path, "it is empty")
    try:
        return decode(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFileError(path, f"not valid JSON ({exc})") from None


# ----- JSONL logs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DamagedLine:
    number: int  # 1-based line number in the file
    offset: int  # byte offset of the line's start
    data: bytes  # the line without its newline

    def preview(self, width: int = 60) -> str:
        text = self.data.decode("utf-8", "replace")
        return repr(text if len(text) <= width else text[:width] + "...")


@dataclass
class JsonlRead:
    records: list[dict[str, Any]]
    torn_bytes: int = 0  # size of a torn last line that was dropped, 0 if none
    torn: DamagedLine | None = None  # that line
    damaged: list[DamagedLine] = field(default_factory=list)  # lines before the last


class DamagedLinesError(ValueError):
    """Lines before the last of a JSONL file are not JSON records (damage, not a kill)."""

    def __init__(self, path: Path, read: JsonlRead) -> None:
        lines = read.damaged
        shown = ", ".join(f"line {d.number} {d.preview()}" for d in lines[:3])
        more = f" and {len(lines) - 3} more" if len(lines) > 3 else ""
        super().__init__(
            f"{path} is damaged: {len(lines)} line(s) before its last are not JSON records "
            f"({shown}{more}); a killed write can only tear the last line"
        )
        self.path = path
        self.read = read


class JsonlFile:
    """An append-only file of JSON records, one per line."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def damaged_path(self) -> Path:
        return self.path.with_name(self.path.name + ".damaged")

    def read(self, repair: bool = True, allow_damaged: bool = False) -> JsonlRead:
        """All complete records in file order.

        A torn last line is dropped (and cut off the file if `repair`, so later appends stay
        well-formed). A bad line before the last raises DamagedLinesError unless
        `allow_damaged`, which returns the good records with the bad lines in ``damaged``.
        """
        if not self.path.exists():
            return JsonlRead([])
        data = self.path.read_bytes()
        out = JsonlRead([])
        pos, number = 0, 0
        while pos < len(data):
            number += 1
            end = data.find(b"\n", pos)
            line = data[pos:] if end < 0 else data[pos:end]
            record = _parse(line)
            if end < 0 or end == len(data) - 1:  # the last line
                if record is None or end < 0:
                    out.torn_bytes = len(data) - pos
                    out.torn = DamagedLine(number, pos, line)
                    break
            elif record is None:
                out.damaged.append(DamagedLine(number, pos, line))
                pos = end + 1
                continue
            out.records.append(record)
            pos = end + 1
        if repair:
            self.cut_torn(out)
        if out.damaged and not allow_damaged:
            raise DamagedLinesError(self.path, out)
        return out

    def cut_torn(self, read: JsonlRead) -> None:
        """Cut the torn last line of `read` off the file (later appends stay well-formed)."""
        if read.torn is None:
            return
        with open(self.path, "r+b") as f:
            f.truncate(read.torn.offset)
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably: one write of the whole line, flush, fsync."""
        self.append_all([record])

    def append_all(self, records: list[dict[str, Any]]) -> None:
        """Append records with one write of all their lines, then fsync."""
        if not records:
            return
        data = "".join(encode(r) + "\n" for r in records).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a regular file takes the whole write or raises
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the whole file by `records`, atomically."""
        write_atomic(self.path, "".join(encode(r) + "\n" for r in records))

    def set_aside(self, damaged: list[DamagedLine], append: list[dict[str, Any]] = ()) -> Path:
        """Move `damaged` lines into ``<file>.damaged``, then rewrite the file without them.

        Each moved line is a record ``{"line", "offset", "text", "moved"}`` whose ``text``
        gives back the exact bytes with ``text.encode("utf-8", "surrogateescape")``. A torn
        last line is dropped; the records in `append` are added at the end of the rewritten
        file. Returns the path of the ``.damaged`` file.
        """
        data = self.path.read_bytes()
        moved = datetime.now(timezone.utc).isoformat(timespec="seconds")
        keep, pos = [], 0
        for line in sorted(damaged, key=lambda d: d.offset):
            if data[line.offset : line.offset + len(line.data)] != line.data:
                raise ValueError(f"{self.path} changed while it was being repaired")
            keep.append(data[pos : line.offset])
            pos = line.offset + len(line.data) + 1  # and its newline
        tail = data[pos:]
        keep.append(tail[: tail.rfind(b"\n") + 1])  # without a torn last line
        aside = [
            {"line": d.number, "offset": d.offset, "moved": moved,
             "text": d.data.decode("utf-8", "surrogateescape")}
            for d in damaged
        ]  # fmt: skip
        JsonlFile(self.damaged_path).append_all(aside)
        extra = "".join(encode(r) + "\n" for r in append).encode()
        write_atomic(self.path, b"".join(keep) + extra)
        return self.damaged_path


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = decode(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
