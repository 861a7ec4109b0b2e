"""The comparison is fair: tuned on validation only, evaluated on whole test pools, models shared.

One smoke study on the team's fixture corpora (tiny model, seconds), run once per module.
"""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.evaluation.metrics import confusion, metrics_from_confusion
from helpers.paths import ROOT
from helpers.study.adaptation import run_methods
from helpers.study.experiment import open_study
from helpers.study.source import degradation
from helpers.study.tuning import tune

FIXTURES = ROOT / "tests" / "fixtures" / "data"
METHODS = ["none", "head", "all", "lp_ft", "cbv_weight", "cbv_two_stage", "wise_ft"]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    study = open_study("hate_to_stormfront", "smoke", FIXTURES, reports, progress=False)
    choices, table = tune([study], METHODS)
    return study, run_methods(study, METHODS), choices, table


def test_choices_are_the_best_validation_scores_and_the_runs_use_them(done):
    study, results, choices, table = done
    mine = choices[study.experiment.name]
    assert set(table["method"]) == {"head", "all", "lp_ft", "cbv_weight", "cbv_two_stage"}
    for (method, setting), g in table.groupby(["method", "setting"]):
        assert g["chosen"].sum() == 1
        assert g.loc[g["chosen"], "score"].iat[0] == g["score"].max()  # validation decides
        value = g.loc[g["chosen"], "value"].iat[0]
        assert mine[method][setting] == value
        configs = results[results["method"] == method]["config"].unique()
        assert all(json.loads(c)["train"][setting] == value for c in configs)  # every run
    assert mine["none"] == {} and mine["wise_ft"] == {}


def test_every_trained_method_gets_the_same_number_of_trials(done):
    study, _, _, table = done
    trials = study.store.collect("metrics", profile="smoke/tuning")
    trials = trials[trials["method"] != "source"].drop_duplicates("run_key")
    per_method = trials.groupby("method")["run_key"].nunique()
    assert set(per_method) == {study.profile.tune.trials}, per_method  # 1 seed per trial here
    assert set(per_method.index) == set(table["method"])


def test_the_fine_tuning_stream_follows_the_seed_and_precision_and_device_are_keyed(done):
    _, results, _, _ = done
    for config in results["config"].unique():
        c = json.loads(config)
        assert c["train"]["seed"] == c["seed"]
        assert c["compute"] == {"device": "cpu", "precision": c["train"]["precision"]}


def test_the_mixture_metric_is_exact_from_both_whole_test_pools(done):
    study, results, _, _ = done
    run = results[(results["method"] == "all") & (results["split"] == "test")]
    config = json.loads(run["config"].iat[0])
    delta = config["delta"]
    preds = study.store.load(config, "predictions")
    assert len(preds) == sum(len(c.frame) for c in study.pools["test"])  # whole pools
    per = {
        s: confusion(g["label"].to_numpy(), g["pred"].to_numpy(), 2)
        for s, g in preds.groupby("source")
    }
    mixed = sum(w * per[s] / per[s].sum() for s, w in study.weights(delta).items())
    expected = metrics_from_confusion(mixed, study.label_names)["macro_f1"]
    got = run[run["metric"] == "macro_f1"]["value"].iat[0]
    assert got == pytest.approx(float(expected), abs=1e-12)


def test_every_run_reports_its_validation_score_cost_and_top_class_share(done):
    _, results, _, _ = done
    for _, run in results.groupby("run_key"):
        splits = set(run["split"])
        assert {"validation", "test", "cost"} <= splits
        share = run[(run["split"] == "test") & (run["metric"] == "top_class_share")]["value"]
        assert 0.5 <= share.iat[0] <= 1.0


def test_the_source_model_is_shared_by_experiments_with_the_same_corpus_a(done, tmp_path):
    study, _, _, _ = done
    other = open_study(
        "hate_to_davidson", "smoke", FIXTURES, study.store.root.parent, progress=False
    )
    assert other.source_model_dir(0) == study.source_model_dir(0)
    before = (study.source_model_dir(0) / "model" / "sha256.json").stat().st_mtime_ns
    curve = degradation(other)  # its own evaluation on Davidson, the same model
    assert (study.source_model_dir(0) / "model" / "sha256.json").stat().st_mtime_ns == before
    assert set(curve["estimate"]) == {"expected", "sampled", "majority"}
    majority = curve[(curve["estimate"] == "majority") & (curve["metric"] == "top_class_share")]
    assert np.allclose(majority["value"], 1.0)  # the constant classifier, as the floor


def test_design_axes_are_stored_apart_from_the_main_grid(tmp_path):
    from helpers.study.adaptation import run_axes
    from helpers.study.store import Store

    study = open_study("books_to_dvd", "smoke", FIXTURES, tmp_path, progress=False)
    runs = run_axes(study)
    sizes = runs[runs["axis"] == "train_size"]
    assert set(sizes["method"]) == {"all", "cbv_weight"}
    # the axis's sizes, each tuned there (the profile's own size would be the main grid's runs)
    assert {json.loads(c)["sizes"]["train"] for c in sizes["config"]} == {16, 64}
    tuned = store_trials = Store(tmp_path).collect("metrics", profile="smoke/train_size/tuning")
    assert set(store_trials["method"]) - {"source"} == {"all", "cbv_weight"} and len(tuned)
    rates = runs[runs["axis"] == "alpha_rate"]
    assert set(rates["method"]) == {
        "cbv_study",
        "cbv_study_free",
        "cbv_study_converged",
        "cbv_study_free_converged",
    }
    plain = rates[~rates["method"].str.endswith("_converged")]
    assert {json.loads(c)["train"]["alpha_lr"] for c in plain["config"]} == {0.001, 0.1}
    store = Store(tmp_path)
    main = store.collect("metrics", profile="smoke")  # the source run and no grid
    assert main.empty or set(main["method"]) <= {"source"}


def test_the_axis_claims_are_judged_from_the_axis_runs(tmp_path):
    from helpers.report import analysis
    from helpers.study.adaptation import run_axes
    from helpers.study.store import Store

    study = open_study("books_to_dvd", "smoke", FIXTURES, tmp_path, progress=False)
    run_methods(study, ["none", "all", "cbv_weight"])
    run_axes(study)
    store = Store(tmp_path)
    tables = {t: store.collect(t, profile="smoke") for t in ("metrics", "predictions")}
    axes = analysis.axis_tables(store, None, "smoke")
    coefficients = store.collect("coefficients", profile="smoke")
    table = analysis.claims(tables["metrics"], tables["predictions"], coefficients, axes).set_index(
        "key"
    )
    for claim in ("III:largest", "III:slow"):  # one seed: a value each, and no test
        assert table.loc[claim, "units"] == 1
        assert np.isfinite(table.loc[claim, "effect"])
        assert table.loc[claim, "verdict"] == "not testable here"


def test_tuning_prints_a_line_per_trial_it_computes_and_none_when_stored(tmp_path, capsys):
    for expected in (["lr=0.1", "lr=0.316228"], []):
        study = open_study("hate_to_stormfront", "smoke", FIXTURES, tmp_path, progress=False)
        capsys.readouterr()
        tune([study], ["head"])
        lines = [x for x in capsys.readouterr().err.splitlines() if "tuning" in x]
        assert [x.split("seed=0 ")[1].split(" [")[0] for x in lines] == expected


def test_run_costs_count_every_stored_run_once(done):
    from helpers.report.analysis import run_costs

    study, results, _, _ = done
    costs = run_costs(study.store, "smoke").set_index("part")
    trials = study.store.collect("metrics", profile="smoke/tuning")
    assert costs.loc["tuning", "runs computed"] == trials["run_key"].nunique() - 1  # no source
    main = results[(results["split"] == "cost") & (results["metric"] == "seconds")]
    assert costs.loc["main grid", "runs computed"] == len(main)
    assert costs.loc["main grid", "seconds per run"] > 0


def test_tuning_trials_are_scored_on_validation_only(done):
    study, _, _, _ = done
    trials = study.store.collect("metrics", profile="smoke/tuning")
    tuned = trials[trials["method"] != "source"]
    assert set(tuned["split"]) == {"validation", "cost"}  # no test pool is looked at
    preds = study.store.collect("predictions", profile="smoke/tuning")
    assert preds.empty or set(preds["method"]) <= {"source"}  # nor predicted


def test_a_rerun_replays_tuning_from_the_stored_trials_without_training(done, monkeypatch):
    from helpers.training import strategies

    study, _, choices, table = done
    fits = []
    real = strategies.fit
    monkeypatch.setattr(strategies, "fit", lambda *a, **k: fits.append(1) or real(*a, **k))
    again, replayed = tune([study], METHODS)
    assert not fits  # every trial is read back from the store
    assert again == choices
    pd.testing.assert_frame_equal(replayed, table)
