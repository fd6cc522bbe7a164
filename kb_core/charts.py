"""PNG charts: a matplotlib figure as bytes, and bytes as a ``data:`` URI.

Shared by the effect report (``kb_core.effect.report``) and the evaluation report
(``evals/report.py``), so both draw at the same resolution and inline their charts the
same way: one self-contained HTML file or Markdown cell, no separate image files. The
Agg backend needs no display, as on a server.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and none needed

import matplotlib.pyplot as plt


def figure_png(figure: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps open ones alive)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI for ``<img src>`` or a Markdown image."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
