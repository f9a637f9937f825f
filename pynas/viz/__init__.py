"""Plots of a search run (``python -m pynas.show RUN --plot``); needs matplotlib.

* :func:`plot_rewards`: reward per child, best so far, the REINFORCE baseline.
* :func:`plot_entropy`: the controller's entropy per sampled child.
* :func:`draw_cell`: the tree of a recurrent cell; :func:`draw_conv_net`: a CNN's layer graph.
"""

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


def __getattr__(name: str) -> Any:
    if name in ("plot_rewards", "plot_entropy"):
        from pynas.viz import curves

        return getattr(curves, name)
    if name == "draw_cell":
        from pynas.viz.cell import draw_cell

        return draw_cell
    if name == "draw_conv_net":
        from pynas.viz.conv_net import draw_conv_net

        return draw_conv_net
    raise AttributeError(f"module 'pynas.viz' has no attribute {name!r}")


__all__ = ["PlotUnavailable", "draw_cell", "draw_conv_net", "plot_entropy", "plot_rewards"]
