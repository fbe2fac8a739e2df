"""A matplotlib figure a notebook shows as a PNG: no pyplot, no inline backend needed."""

from __future__ import annotations

import io
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Picture:
    """Shown as a PNG when it is a cell's last value; ``figure`` keeps what a check can look at."""

    figure: Figure

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        FigureCanvasAgg(self.figure).print_png(buffer)
        return buffer.getvalue()
