"""The plan's run keys, and the stored runs outside it (stale: an earlier configuration).

Every report reads exactly the runs of the current plan: the source runs, the tuning trials
(their searches replayed from the store, never trained), the main grid and the design axes of
the profile as experiments.yaml now defines it. A stored run whose key is not among them was
computed under another configuration (a changed setting, corpus or code version): it is never
shown, and ``python -m helpers store prune`` lists it (``--dry-run``) or removes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers.config.methods import get_method
from helpers.study.adaptation import profile_methods, source_runs
from helpers.study.axes import axis_runs
from helpers.study.experiment import Study
from helpers.study.families import family_members
from helpers.study.manifest import MANIFEST
from helpers.study.plan import plan_grid
from helpers.study.tuning import pools, trial_runs, tune


def planned_keys(studies: list[Study]) -> tuple[set[str], list[str]]:
    """Every run key of the studies' plan, and the methods whose tuning is not yet stored
    (their runs' keys are unknown until it is: they are left out)."""
    keys = {r.key for r in source_runs(studies)}
    missing: list[str] = []
    methods = sorted({m for s in studies for m in profile_methods(s)})
    members = family_members(studies)
    choices, table = tune(studies, methods, dry=True, members=members)
    for s in studies:
        mine = choices.get(s.experiment.name, {})
        known = [m for m in profile_methods(s) if m in mine]
        names = [m for m in known if get_method(m).base is None or get_method(m).base in mine]
        missing += [f"{s.experiment.name} {m}" for m in profile_methods(s) if m not in names]
        keys |= {r.key for r in plan_grid(s, names, mine)}
        keys |= {r.key for r in axis_runs(s, mine, dry=True)}
    group = {s.experiment.name: pool for pool in pools(studies, members) for s in pool}
    everyone = {name: c for name, c in choices.items()}
    for pool in group.values():  # the pool members' own choices, for their bases' keys
        for s in pool:
            everyone.setdefault(s.experiment.name, choices.get(pool[0].experiment.name, {}))
    for row in table.drop_duplicates(["method", "setting", "rung"] + ["experiment"]).itertuples():
        runs = trial_runs(group[row.experiment], row.method, row.overrides, everyone)
        keys |= {r.key for r in runs}
    return keys, missing


def stored_experiments(results, profile: str) -> list[str]:
    """The experiments of experiments.yaml with runs of ``profile`` under ``results``' store."""
    from helpers.config.experiments import experiment_names

    store = Path(results) / "store"
    return [n for n in experiment_names() if (store / n / profile).is_dir()]


def profile_plan_keys(profile: str, data_root, results) -> set[str]:
    """The run keys of ``profile``'s plan over every experiment stored for it under
    ``results`` (the corpora are opened: a key holds their digests)."""
    from helpers.study.experiment import open_study

    names = stored_experiments(results, profile)
    keys, _ = planned_keys([open_study(n, profile, data_root, results, False) for n in names])
    return keys


def read_plan_keys(path) -> set[str] | None:
    """Plan keys written as a JSON list (the report runner's ``plan_keys.json``); None for no
    file named (every stored run)."""
    import json

    return None if path is None else set(json.loads(Path(path).read_text(encoding="utf-8")))


def stale_runs(studies: list[Study]) -> list[Path]:
    """Stored run folders of these experiments and their profile's areas outside the plan
    (among the runs made under the plan's compute)."""
    keys, _ = planned_keys(studies)
    out = []
    for s in studies:
        area = s.store.root / s.experiment.name / s.profile.name
        for manifest in sorted(area.rglob(MANIFEST)):
            if manifest.parent.name not in keys and _made_here(manifest.parent, s):
                out.append(manifest.parent)
    return out


def _made_here(folder: Path, study: Study) -> bool:
    """Whether a stored run was made under this plan's compute (device, precision): another
    machine's runs are never judged stale here (set $CBV_COMPUTE to judge them)."""
    from helpers.study.manifest import read_manifest

    config = (read_manifest(folder) or {}).get("config", {})
    return config.get("compute", study.compute) == study.compute


def prune(studies: list[Study], dry_run: bool = True) -> list[Path]:
    """List (``dry_run``) or remove the stale runs; returns them."""
    stale = stale_runs(studies)
    if not dry_run:
        for folder in stale:
            shutil.rmtree(folder)
    return stale
