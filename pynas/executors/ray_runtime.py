"""Ray is optional: imported only for ``--executor ray``; starting or joining an instance.

``connect(None)`` starts a private local instance (loopback only, no dashboard, no usage
statistics); ``connect("host:port")`` joins a running cluster after checking that its address
answers at all, so a typo is a clear usage error instead of a long hang.
"""

from __future__ import annotations

import logging
import os
import socket
from types import ModuleType

from pynas.argtypes import UsageError

RAY_REQUIREMENT = "ray==2.60.0"


def import_ray() -> ModuleType:
    """The ``ray`` module, or a UsageError saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise UsageError(
            f"--executor ray needs Ray, which is not installed: pip install 'pynas[ray]' "
            f"(or pip install '{RAY_REQUIREMENT}')"
        ) from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Raise UsageError unless `address` (``host:port``) accepts a TCP connection."""
    if address == "auto" or address.startswith("ray://"):
        return  # Ray resolves these itself
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--address: expected HOST:PORT of a Ray cluster's head, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(
            f"--address {address}: no Ray cluster answers there ({exc}); start the head with "
            "`ray start --head --port PORT` and give its HOST:PORT"
        ) from None


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start (address None) or join a Ray instance; True if this call started or joined it.

    If Ray is already initialised in this process (a test, a notebook) it is used as it is and
    False is returned: the caller must then not shut it down.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    common = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            check_address(address)
            ray.init(address=address, **common)
        else:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **common,
            )
    except UsageError:
        raise
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
        raise UsageError(f"could not {where}: {type(exc).__name__}: {exc}") from None
    return True


def cluster_cpus() -> float:
    """CPUs the connected Ray instance has (all nodes)."""
    ray = import_ray()
    return float(ray.cluster_resources().get("CPU", 0.0))
