"""The body of a local worker process, and two Linux niceties for worker processes.

A worker reads ``(task_id, fn, item)`` from its pipe, runs ``fn(item)`` and sends back
``("ok", task_id, result)`` or ``("error", task_id, traceback)``; ``None`` asks it to exit.
While it runs a child its process name (``ps -o comm``) is ``pynas-c<index>``, otherwise
``pynas-idle``, so a user (or a test) can see which process trains which child.
"""

from __future__ import annotations

import ctypes
import os
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

PR_SET_PDEATHSIG = 1
IDLE_NAME = "pynas-idle"


def set_process_name(name: str) -> None:
    """Set this process's name as shown by ``ps -o comm`` (Linux; 15 bytes; else no-op)."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass


def child_process_name(item: Any) -> str:
    """``pynas-c<index>`` for a child item ``(index, arch_json)``, else ``pynas-busy``."""
    if isinstance(item, tuple) and item and isinstance(item[0], int):
        return f"pynas-c{item[0]}"
    return "pynas-busy"


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; else no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def worker_main(conn: Connection, parent_pid: int, threads: int) -> None:
    """Serve items from `conn` until told to stop or the parent goes away."""
    die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(threads)
    set_process_name(IDLE_NAME)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        except Exception:  # a message that cannot be unpickled here (e.g. an unknown fn)
            conn.send(("error", None, traceback.format_exc()))
            continue
        if message is None:
            return
        task_id, fn, item = message
        set_process_name(child_process_name(item))
        try:
            reply = ("ok", task_id, fn(item))
        except BaseException:
            reply = ("error", task_id, traceback.format_exc())
        set_process_name(IDLE_NAME)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
