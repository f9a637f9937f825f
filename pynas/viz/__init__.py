"""Plots of a search run (``python -m pynas.show RUN --plot``); needs matplotlib.

* :func:`plot_rewards`: reward per child, best so far, the REINFORCE baseline.
* :func:`plot_entropy`: the controller's entropy per sampled child.
* :func:`draw_cell`: the tree of a recurrent cell; :func:`draw_conv_net`: a CNN's layer graph.
"""

from __future__ import annotations

from typing import Any

from pynas.viz.backend import INSTALL_HINT, PlotUnavailable, pyplot


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


__all__ = [
    "INSTALL_HINT",
    "PlotUnavailable",
    "draw_cell",
    "draw_conv_net",
    "plot_entropy",
    "plot_rewards",
    "pyplot",
]
