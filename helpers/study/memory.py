"""The fitted models one process keeps in memory, by the key of the run that made them.

Source models (every method starts from one) and the bases other methods build on (``all``
for WiSE-FT and two-stage CBV, an axis's CBV runs for their converged companions) are kept so
the runs that follow reuse them. The runs of one seed and delta are walked together, so a few
are enough: past ``LIMIT`` the least recently used model is dropped, and read back from its
checkpoint if it is asked for again. This is the only per-process state of the study: the
experiment's data and its plan are immutable.
"""

from __future__ import annotations

from collections import OrderedDict

LIMIT = 8  # models kept at once: a seed's source models and the bases of one (seed, delta)

MODELS: OrderedDict[str, object] = OrderedDict()  # run key -> fitted model or Adapted
CHECKED: set[str] = set()  # run keys this process has seen stored (no need to look again)


def slot(store, key: str) -> str:
    """Where a run's model is kept: by store and key (two stores may hold the same key)."""
    return f"{store.root}:{key}"


def recall(key: str):
    """The model kept under ``key`` (now the most recently used), or None."""
    if key not in MODELS:
        return None
    MODELS.move_to_end(key)
    return MODELS[key]


def remember(key: str, model) -> None:
    """Keep ``model`` under ``key``, dropping the least recently used beyond ``LIMIT``."""
    MODELS[key] = model
    MODELS.move_to_end(key)
    while len(MODELS) > LIMIT:
        MODELS.popitem(last=False)


def forget() -> None:
    """Drop every kept model (tests; a long-lived kernel that moves to another profile)."""
    MODELS.clear()
    CHECKED.clear()
