"""Runs along the profile's design axes: training-set size and the coefficients' learning rate.

Two of the poster's claims cannot be judged on the main grid: "CBV fails to beat all-layer
fine-tuning on the largest data set" needs several training sizes (each method at the learning
rates tuned for the main grid), and "optimising the alphas is slow at usual learning rates"
needs the same model at several coefficient rates, with and without the study's sum
normalisation (a controlled comparison: both at the profile's own weight learning rate). Each
axis runs its methods at one delta and every seed, and stores them under ``<profile>/<axis>``
so they never mix with the main grid's runs.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from helpers.spec.experiments import Axis
from helpers.study.experiment import Study
from helpers.study.runs import run_method
from helpers.study.tuning import tune


def axis_study(study: Study, axis: Axis, value: float) -> Study:
    """The study seen from one point of an axis (same data, models in memory and choices)."""
    profile = study.profile
    if axis.name == "train_size":
        profile = replace(profile, n_train=int(value))
    return replace(study, profile=profile, axis=axis.name, kept=study.kept, choices=study.choices)


def run_axes(study: Study) -> pd.DataFrame:
    """Every axis that lists this experiment: its methods x values x seeds (stored runs skip)."""
    frames = []
    for axis in study.profile.axes:
        if study.experiment.name not in axis.experiments:
            continue
        if axis.name == "train_size":
            tune(study, axis.methods)  # each method at the main grid's learning rates
        for value in axis.values:
            point = axis_study(study, axis, value)
            for seed in study.profile.seeds:
                for name in axis.methods:
                    overrides = (
                        {"alpha_lr": value} if axis.name == "alpha_rate" else study.choices[name]
                    )
                    run = run_method(point, name, axis.delta, seed, overrides)
                    frames.append(run.assign(axis=axis.name, axis_value=value))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
