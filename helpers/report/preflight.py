"""Everything a report or a headless run needs, checked before the first notebook or step.

Configuration (the experiments.yaml schema and names), the data root (every file the chosen
experiments read; declared corpora loaded and their label spaces compared), the output folders
(writable), and where each experiment's figures go (``paths.figures_root``). Each fault is one
UserError, which the command line prints as one line with exit status 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers.config.experiments import (
    Experiment,
    Profile,
    experiment_names,
    load_experiment,
    load_profile,
)
from helpers.data.pools import check_present, experiment_pools
from helpers.errors import UserError
from helpers.paths import (
    PUBLISHED_PROFILE,
    data_root,
    figures_root,
    reports_root,
    require_data_root,
    require_writable,
    results_root,
)


@dataclass(frozen=True)
class Plan:
    """A checked run: profile, experiments, data root, and output folders."""

    profile: Profile
    experiments: tuple[Experiment, ...]
    data_root: Path
    reports: Path
    results: Path  # the folder holding the store: stored runs are read and written there
    figures: dict[str, Path]  # experiment name (and "analysis") -> figures root


def plan_run(
    profile: str,
    experiments=None,
    data_dir=None,
    reports_dir=None,
    figures_dir=None,
    results_dir=None,
) -> Plan:
    """Check the configuration, the data and the output folders; return what to run."""
    if experiments is not None and len(experiments) == 0:
        raise UserError(
            "--experiments was given without names; name one or more experiments, "
            "or leave the option out to run all"
        )
    prof = load_profile(profile)
    names = list(experiments or experiment_names())
    chosen = tuple(load_experiment(n, prof) for n in names)
    builtin = [e for e in chosen if e.builtin]
    root = (
        require_data_root(data_dir)
        if any(e.source_data is None or e.target_data is None for e in chosen)
        else data_root(data_dir)
    )
    check_present(list(chosen), root)
    for e in chosen:
        if not e.builtin:  # declared files are small: load them now, so a bad one fails here
            experiment_pools(e, root)
    reports = require_writable(reports_root(reports_dir), "reports")
    results = require_writable(results_root(results_dir, prof.name, reports), "results")
    every_builtin = {n for n in experiment_names() if load_experiment(n).builtin}
    full_set = len(builtin) == len(chosen) and {e.name for e in chosen} == every_builtin
    published = prof.name == PUBLISHED_PROFILE
    figures = {
        e.name: figures_root(figures_dir, prof.name, reports, published and e.builtin)
        for e in chosen
    }
    figures["analysis"] = figures_root(figures_dir, prof.name, reports, published and full_set)
    for folder in set(figures.values()):
        require_writable(folder, "figures")
    return Plan(prof, chosen, root, reports, results, figures)
