"""Bad input -> one clear message and exit code 2 (argparse's convention), never a traceback."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn


class UsageError(Exception):
    """A problem with what the user asked for; the message names the problem and the fix."""


def fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Print usage and `message` to stderr and exit with code 2."""
    parser.error(message)


def run_main(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
    argv: list[str] | None = None,
    usage_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Parse `argv` and run `body`; UsageError and `usage_errors` become exit code 2."""
    args = parser.parse_args(argv)
    try:
        return body(args)
    except (UsageError, *usage_errors) as exc:
        fail(parser, str(exc))


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def size_limit(text: str) -> int | None:
    """argparse type: a positive count, or 'all' (no limit)."""
    if text == "all":
        return None
    return positive_int(text)


def float_list(minimum: float, strict: bool) -> Callable[[str], list[float]]:
    """argparse type: comma-separated finite floats (> or >= `minimum`), duplicates dropped."""

    def parse(text: str) -> list[float]:
        values: list[float] = []
        for part in text.split(","):
            try:
                value = float(part)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated numbers like 20,10, got {text!r}"
                ) from None
            bad = value <= minimum if strict else value < minimum
            if not math.isfinite(value) or bad:
                bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
                raise argparse.ArgumentTypeError(f"every value must be finite and {bound}: {part}")
            if value not in values:
                values.append(value)
        return values

    return parse
