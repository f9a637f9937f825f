"""matplotlib for the plots, on a backend that writes files only; a clear error without it."""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "pip install 'pynas[plot]' (or: pip install matplotlib)"


class PlotUnavailable(ImportError):
    """matplotlib is not installed."""


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (files only, no display)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotUnavailable(
            f"plots need matplotlib ({exc}); install it with {INSTALL_HINT}"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
