"""Shared command-line helpers: argument types and turning known errors into usage errors."""

from pynas.cli.usage import UsageError, fail, nonnegative_float, positive_int, run_main

__all__ = ["UsageError", "fail", "nonnegative_float", "positive_int", "run_main"]
