"""Figures as files: written once per content, and shown in a notebook as the file written.

``save`` is the one function that writes figures (PNG under <figures>/<experiment>/). The same
drawing gives the same bytes (no metadata that varies), and a file that already holds them is
left alone, so rendering stored runs again leaves the committed figures as they are.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt

from helpers.files import atomic_write
from helpers.paths import figures_root


class Saved:
    """A figure as written: shown in a notebook as the PNG file itself, so a report shows exactly
    the figure that ``save`` wrote (its path is the text form)."""

    def __init__(self, path: Path):
        self.path = path

    def __repr__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def _repr_png_(self) -> bytes:
        return self.path.read_bytes()


def png_bytes(fig: plt.Figure) -> bytes:
    """The figure as PNG, the same bytes for the same drawing: no software or date metadata."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def save(fig: plt.Figure, experiment: str, name: str, root=None, profile=None) -> Saved:
    """Write a figure as PNG to <figures>/<experiment>/<name>.png, close it, and return it as
    ``Saved`` (a notebook cell ending in ``save`` shows the file written).

    The figures folder is ``root``, else $CBV_FIGURES_DIR, else figures/ for the published
    profile and reports/figures/<profile>/ for any other (``paths.figures_root``). A file that
    already holds the same bytes is left alone: rendering stored runs again touches nothing.
    """
    path = figures_root(root, profile) / experiment / f"{name}.png"
    data = png_bytes(fig)
    plt.close(fig)  # shown once, through the file; not again by the inline backend
    if not (path.is_file() and path.read_bytes() == data):
        # Atomic: two report processes on one folder never leave a figure half-written.
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return Saved(path)
