"""A study's task family: every experiment of its group under the same profile, data and
store (tuning with ``tune.pool: family`` picks one setting for all of them)."""

from __future__ import annotations

from helpers.config.experiments import experiment_names, load_experiment
from helpers.study.experiment import Study, open_study


def family_members(studies: list[Study]):
    """``members(study)``: every experiment of the study's task family under the same profile,
    data and store (the studies given are reused; the others opened), for tuning by family."""

    def members(study: Study) -> list[Study]:
        mine = {s.experiment.name: s for s in studies if s.profile.name == study.profile.name}
        family = []
        for name in experiment_names():
            if load_experiment(name).group != study.experiment.group:
                continue
            if name not in mine:
                reports = study.store.root.parent
                mine[name] = open_study(name, study.profile.name, study.data_root, reports, False)
            family.append(mine[name])
        return family

    return members
