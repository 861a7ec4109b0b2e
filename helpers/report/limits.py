"""How long a notebook cell may run in a report run, and the one line that says one ran past.

A cell whose kernel reply is lost (seen with ipykernel 7 on a loaded machine), or one waiting on
a front end that a headless run does not have, would otherwise hold the run for ever. Every
cell gets ``DEFAULT_CELL_TIMEOUT`` seconds, except those tagged ``trains`` in the committed
notebooks (they may train a whole grid: hours on a big profile), which get no limit by default.
$CBV_CELL_TIMEOUT sets one limit for every cell, training ones included.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.errors import UserError

CELL_TIMEOUT_ENV = "CBV_CELL_TIMEOUT"
TRAINS = "trains"  # the tag of a cell that may train (no default limit)
# Rendering the committed reference run (`make results`: 19 notebooks, nothing trained), the
# slowest cell took 29 s on this 2-core machine at a load of 7 (04's paired differences; 03's
# coefficient trajectories took as long until their band stopped bootstrapping). Twenty times
# that leaves room for a slower machine or a bigger store, and a lost reply still ends in minutes.
DEFAULT_CELL_TIMEOUT = 600


def cell_timeout() -> int | None:
    """$CBV_CELL_TIMEOUT in seconds, None when unset; a UserError when it is not a number."""
    raw = os.environ.get(CELL_TIMEOUT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise UserError(
            f"${CELL_TIMEOUT_ENV} must be a whole number of seconds, got {raw!r}; fix or unset it"
        )
    return int(raw)


class CellLimit:
    """nbclient's ``timeout_func`` for one notebook: each cell's limit, and the cell it was
    last asked about (the one running when a limit is passed)."""

    def __init__(self, notebook: Path, label: str):
        import nbformat

        self.label = label  # how the run names the notebook: <folder>/<name>
        self.chosen = cell_timeout()
        self.source = nbformat.read(notebook, as_version=4).cells
        self.cell, self.seconds = None, None

    def __call__(self, cell) -> int | None:
        self.cell, self.seconds = cell, self.limit(cell)
        return self.seconds

    def limit(self, cell) -> int | None:
        """$CBV_CELL_TIMEOUT when set; else none for a training cell, the default otherwise."""
        if self.chosen is not None:
            return self.chosen
        return None if TRAINS in cell.get("metadata", {}).get("tags", []) else DEFAULT_CELL_TIMEOUT

    def where(self) -> str:
        """The running cell as the committed notebook numbers it (1-based), with its first line."""
        cell = self.cell or {}
        ids = [c.get("id") for c in self.source]
        texts = [c.get("source") for c in self.source]
        if cell.get("id") in ids:
            number = ids.index(cell.get("id")) + 1
        elif cell.get("source") in texts:
            number = texts.index(cell.get("source")) + 1
        else:
            return "the injected parameters cell"
        first = next((ln for ln in cell.get("source", "").splitlines() if ln.strip()), "")
        return f"cell {number} of {len(self.source)} ({first[:60]!r})"

    def message(self) -> str:
        """One line: which notebook and cell ran past which limit, and how to change it."""
        how = (
            f"set by ${CELL_TIMEOUT_ENV}"
            if self.chosen is not None
            else f"the default; set ${CELL_TIMEOUT_ENV} to allow more"
        )
        return (
            f"{self.label}: {self.where()} ran past its limit of {self.seconds} s ({how}); "
            "its earlier report, if any, is kept"
        )
