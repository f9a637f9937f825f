"""The one error type for malformed architectures."""

from __future__ import annotations

from typing import Any


class ArchitectureError(ValueError):
    """An architecture description is malformed.

    The message names the field, the bad value and what is allowed, so a user can fix the file.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"architecture field '{field}' has invalid value {value!r}: {allowed}")
