"""An experiment end to end under the smoke profile, on the fixture corpora; bad input up front."""

import shutil
import subprocess
import sys

import pytest

from helpers.errors import UserError
from helpers.paths import ROOT
from helpers.study.adaptation import run_methods
from helpers.study.experiment import open_study
from helpers.study.source import degradation
from helpers.study.store import stored


@pytest.fixture(scope="module")
def study(fixture_data, tmp_path_factory):
    return open_study(
        "hate_to_stormfront",
        "smoke",
        fixture_data,
        tmp_path_factory.mktemp("reports"),
        progress=False,
    )


def test_degradation_curve_is_complete(study):
    curve = degradation(study)
    expected = curve[curve["estimate"] == "expected"]
    assert sorted(expected["delta"].unique()) == [i / 10 for i in range(11)]
    sampled = curve[(curve["estimate"] == "sampled") & (curve["metric"] == "accuracy")]
    assert (sampled["ci_low"] <= sampled["value"]).all()
    assert (sampled["value"] <= sampled["ci_high"]).all()


def test_every_method_runs_and_a_rerun_is_skipped(study):
    methods = [*study.profile.notebook_02, *study.profile.notebook_03]
    first = run_methods(study, methods)
    assert set(first["method"]) == set(methods)
    assert set(first["split"]) == {
        "validation",
        "test",
        "test:tweeteval_hate",
        "test:stormfront",
        "cost",
    }
    keys = set(first["run_key"])
    again = run_methods(study, methods)
    assert set(again["run_key"]) == keys  # same configs, same stored runs
    coefficients = stored(study, "coefficients")
    assert {"cbv_weight", "cbv_output", "cbv_study", "cbv_two_stage"} <= set(coefficients["method"])
    assert coefficients["alpha"].between(0, 1).all()


def test_a_stored_experiment_reruns_without_its_models(study, fixture_data):
    # Committed results hold tables only: a rerun over them must neither train nor load a model.
    methods = [*study.profile.notebook_02, *study.profile.notebook_03]
    degradation(study)
    keys = set(run_methods(study, methods)["run_key"])
    shutil.rmtree(study.store.root / "_models")
    reports = study.store.root.parent
    again = open_study("hate_to_stormfront", "smoke", fixture_data, reports, progress=False)
    assert not degradation(again).empty
    assert set(run_methods(again, methods)["run_key"]) == keys
    assert not (study.store.root / "_models").exists()


def test_runs_do_not_recompute_known_test_predictions(fixture_data, tmp_path, monkeypatch):
    """``none`` has the source run's test predictions; ``head`` runs the test pools from its
    frozen prefix's cached features: neither runs the whole model over the test pools."""
    import helpers.study.runs as runs

    study = open_study("hate_to_stormfront", "smoke", fixture_data, tmp_path, progress=False)
    sizes, plain = [], runs.predict
    monkeypatch.setattr(
        runs, "predict", lambda m, data, *a, **k: sizes.append(len(data)) or plain(m, data, *a, **k)
    )
    run_methods(study, ["none", "head"])
    assert set(sizes) == {study.size("validation")}  # validation mixtures only
    source = study.store.load(study.source_config(0), "predictions")
    none = stored(study, "predictions", methods=["none"])[source.columns]
    assert none.reset_index(drop=True).equals(source)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(experiment="books_to_mars"), "unknown experiment 'books_to_mars'; choose one of"),
        (
            dict(profile="huge"),
            "unknown profile 'huge'; choose one of: full, quick, reference, smoke",
        ),
        (dict(data_root="/nonexistent/data"), "python -m helpers download"),
    ],
)
def test_bad_input_is_caught_before_any_work(kwargs, message, fixture_data, tmp_path):
    args = (
        dict(
            experiment="books_to_dvd", profile="smoke", data_root=fixture_data, reports_dir=tmp_path
        )
        | kwargs
    )
    with pytest.raises(UserError, match=message):
        open_study(**args)
    assert not any(tmp_path.iterdir())  # nothing written


def test_sizes_beyond_the_pools_fail_before_training(fixture_data, tmp_path, monkeypatch):
    from dataclasses import replace

    from helpers.study import experiment as study_module

    profile = replace(study_module.load_profile("smoke"), n_test=5000)
    monkeypatch.setattr(study_module, "load_profile", lambda name: profile)
    with pytest.raises(UserError, match=r"n_test 5000, but the test pools hold .*set n_test: \d+ "):
        open_study("books_to_dvd", "smoke", fixture_data, tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_non_finite_run_is_reported_and_the_others_go_on(study, monkeypatch):
    """A method whose head holds NaN: the real engine stops it; the other methods still run."""
    import copy
    from dataclasses import replace

    import torch

    from helpers.config import methods
    from helpers.training import strategies

    def poisoned(method, x):
        source = copy.deepcopy(x.source)
        with torch.no_grad():
            source.classifier.weight.fill_(float("nan"))
        return strategies.fit_subset(method, replace(x, source=source))

    monkeypatch.setitem(strategies.STRATEGIES, "subset", poisoned)
    monkeypatch.setitem(
        methods.METHODS,
        "nan_head",
        methods.Method("nan_head", "surgical", "head with NaN weights", train=("head",)),
    )
    out = run_methods(study, ["nan_head", "none"])
    assert len(out.attrs["failed"]) == 1 and "nan_head" in out.attrs["failed"][0]
    assert set(out["method"]) == {"none"}


def test_unknown_method_and_bad_delta(study):
    with pytest.raises(UserError, match="unknown method 'best'"):
        run_methods(study, ["head", "best"])
    from helpers.study.plan import Run

    with pytest.raises(UserError, match=r"delta must lie in \[0, 1\]"):
        Run(study, "head", 1.2, 0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "--profile", "huge"], "unknown profile"),
        (["report", "--profile", "smoke", "--experiments", "nope"], "unknown experiment"),
        (["download", "--corpora", "imdb"], "unknown corpus"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(argv, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "helpers", *argv, "--data-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
