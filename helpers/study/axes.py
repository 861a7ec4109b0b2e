"""Runs along the profile's design axes: training-set size and the coefficients' learning rate.

Two of the poster's claims cannot be judged on the main grid: "CBV fails to beat all-layer
fine-tuning on the largest data set" needs several training sizes, each method tuned at each size
as the main grid is at its own; and "optimising the alphas is slow at usual learning rates"
needs the same model at several coefficient rates (the weights at their tuned rate), each run
paired with its coefficients fitted to convergence with the weights held at their end point
(``Method.converged``), with and without the study's sum normalisation. Each axis runs its
methods at one delta and every seed, stored under ``<profile>/<axis>`` apart from the main grid.
"""

from __future__ import annotations

from dataclasses import replace

from helpers.config.experiments import Axis
from helpers.config.methods import converged
from helpers.study.experiment import Study
from helpers.study.plan import Run, plan_run
from helpers.study.tuning import tune


def axis_study(study: Study, axis: Axis, value: float) -> Study:
    """The study seen from one point of an axis (same data; its own sizes and store area)."""
    profile = study.profile
    if axis.name == "train_size":
        profile = replace(profile, n_train=int(value))
    return study.view(axis.name, profile)


def axis_runs(study: Study, choices: dict, dry: bool = False) -> list[Run]:
    """Every run of every axis that lists this experiment, tuned where the axis needs it (at a
    training size other than the main grid's): its methods x values x seeds. ``dry``: tuning
    only replayed from the store; a method with no stored choice is left out."""
    runs: list[Run] = []
    for axis in study.profile.axes:
        if study.experiment.name not in axis.experiments:
            continue
        for value in axis.values:
            point = axis_study(study, axis, value)
            if axis.name == "train_size":
                if point.size("train") == study.size("train"):
                    continue  # the main grid's own runs are this point of the axis
                picked = tune([point], axis.methods, dry=dry)[0][study.experiment.name]
                names = [m for m in axis.methods if m in picked]
            else:  # the coefficients' rate set, the weights' rate as tuned
                known = [m for m in axis.methods if m in choices]
                picked = {m: {**choices[m], "alpha_lr": value} for m in known}
                names = [*known, *(converged(m) for m in known)]
            keep = set(axis.methods) if axis.name == "alpha_rate" else set()
            for seed in study.profile.seeds:
                runs += [
                    plan_run(point, name, axis.delta, seed, picked, keep=name in keep)
                    for name in names
                ]
    return runs
