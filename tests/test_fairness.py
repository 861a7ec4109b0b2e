"""The comparison is fair: tuned on validation only, evaluated on whole test pools, models shared.

One smoke study on the team's fixture corpora (tiny model, seconds), run once per module.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from helpers.evaluation.metrics import confusion, metrics_from_confusion
from helpers.paths import ROOT
from helpers.study.adaptation import run_methods
from helpers.study.experiment import TUNING as TABLE
from helpers.study.experiment import open_study
from helpers.study.runs import run_method
from helpers.study.source import degradation

FIXTURES = ROOT / "tests" / "fixtures" / "data"
METHODS = ["none", "head", "all", "lp_ft", "cbv_weight", "cbv_two_stage", "wise_ft"]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    study = open_study("hate_to_stormfront", "smoke", FIXTURES, reports, progress=False)
    return study, run_methods(study, METHODS)


def test_choices_are_the_best_validation_scores_and_the_runs_use_them(done):
    study, results = done
    table = pd.read_parquet(study.store.root / study.experiment.name / "smoke" / TABLE)
    assert set(table["method"]) == {"head", "all", "lp_ft", "cbv_weight", "cbv_two_stage"}
    for (method, setting), g in table.groupby(["method", "setting"]):
        assert g["chosen"].sum() == 1
        best = g.loc[g["val_macro_f1"].idxmax(), "val_macro_f1"]
        assert g.loc[g["chosen"], "val_macro_f1"].iat[0] == best  # validation decides
        value = g.loc[g["chosen"], "value"].iat[0]
        assert study.choices[method][setting] == value
        configs = results[results["method"] == method]["config"].unique()
        assert all(f'"{setting}":{value}' in c for c in configs)  # every seed and delta uses it
    assert study.choices["none"] == {} and study.choices["wise_ft"] == {}


def test_the_mixture_metric_is_exact_from_both_whole_test_pools(done):
    study, results = done
    run = results[(results["method"] == "all") & (results["split"] == "test")]
    delta = run["delta"].iat[0]
    preds = study.store.load(study.method_config("all", delta, 0), "predictions")
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
    _, results = done
    for _, run in results.groupby("run_key"):
        splits = set(run["split"])
        assert {"validation", "test", "cost"} <= splits
        share = run[(run["split"] == "test") & (run["metric"] == "top_class_share")]["value"]
        assert 0.5 <= share.iat[0] <= 1.0


def test_the_source_model_is_shared_by_experiments_with_the_same_corpus_a(done, tmp_path):
    study, _ = done
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
    from helpers.study.axes import run_axes
    from helpers.study.store import Store

    study = open_study("books_to_dvd", "smoke", FIXTURES, tmp_path, progress=False)
    runs = run_axes(study)
    sizes = runs[runs["axis"] == "train_size"]
    assert set(sizes["method"]) == {"all", "cbv_weight"}
    assert {json.loads(c)["sizes"]["train"] for c in sizes["config"]} == {16, 32}
    rates = runs[runs["axis"] == "alpha_rate"]
    assert set(rates["method"]) == {"cbv_study", "cbv_study_free"}
    assert {json.loads(c)["train"]["alpha_lr"] for c in rates["config"]} == {0.001, 0.1}
    store = Store(tmp_path)
    main = store.collect("metrics", profile="smoke")  # the source run and the tuning runs only
    assert set(main["method"]) <= {"source", "all", "cbv_weight"}
    # each view stores its own source run (its reference point), beside the axis' methods
    assert set(store.collect("metrics", profile="smoke/alpha_rate")["method"]) == {
        "source",
        "cbv_study",
        "cbv_study_free",
    }


def test_the_axis_claims_are_judged_from_the_axis_runs(tmp_path):
    from helpers.report import analysis
    from helpers.study.axes import run_axes
    from helpers.study.store import Store

    study = open_study("books_to_dvd", "smoke", FIXTURES, tmp_path, progress=False)
    run_methods(study, ["none", "all", "cbv_weight"])
    run_axes(study)
    store = Store(tmp_path)
    tables = {t: store.collect(t, profile="smoke") for t in ("metrics", "predictions", "history")}
    axes = analysis.axis_tables(store, None, "smoke")
    table = analysis.claims(
        tables["metrics"], tables["predictions"], tables["history"], n_boot=200, axes=axes
    ).set_index("claim")
    for claim in (
        "III. CBV fails to beat all-layer fine-tuning on the largest data set",
        "III. Optimising the alphas is slow at usual learning rates",
    ):
        assert table.loc[claim, "verdict"] in ("supported", "contradicted", "inconclusive")
        assert np.isfinite(table.loc[claim, "effect"])


def test_tuning_prints_a_line_per_trial_it_computes_and_none_when_stored(tmp_path, capsys):
    from helpers.study.tuning import tune

    for expected in (["lr=0.001", "lr=0.003"], []):
        study = open_study("hate_to_stormfront", "smoke", FIXTURES, tmp_path, progress=False)
        capsys.readouterr()
        tune(study, ["head"])
        lines = [x for x in capsys.readouterr().err.splitlines() if "tuning" in x]
        assert [x.rsplit(": ", 1)[1] for x in lines] == expected


def test_run_costs_count_every_stored_run_once(done):
    from helpers.report.analysis import run_costs

    study, results = done
    costs = run_costs(study.store, "smoke").set_index("part")
    trials = study.store.collect("metrics", profile="smoke/tuning")
    assert costs.loc["tuning", "runs computed"] == trials["run_key"].nunique() - 1  # no source
    main = results[(results["split"] == "cost") & (results["metric"] == "seconds")]
    assert costs.loc["main grid", "runs computed"] == len(main)
    assert costs.loc["main grid", "seconds per run"] > 0


def test_tuning_trials_are_scored_on_validation_only(done):
    study, _ = done
    trials = study.store.collect("metrics", profile="smoke/tuning")
    tuned = trials[trials["method"] != "source"]
    assert set(tuned["split"]) == {"validation", "cost"}  # no test pool is looked at
    preds = study.store.collect("predictions", profile="smoke/tuning")
    assert preds.empty or set(preds["method"]) <= {"source"}  # nor predicted


def test_the_chosen_trial_becomes_its_final_run_without_training_again(tmp_path, monkeypatch):
    from helpers.study import tuning
    from helpers.study.source import source_model
    from helpers.training import strategies

    study = open_study("hate_to_stormfront", "smoke", FIXTURES, tmp_path, progress=False)
    source_model(study, 0)
    fits = []
    real = strategies.fit
    monkeypatch.setattr(strategies, "fit", lambda *a, **k: fits.append(1) or real(*a, **k))
    table = tuning.tune(study, ["head"])
    assert len(fits) == len(table) == 2  # one fit per grid point, none for the final run

    chosen = table[table["chosen"]].iloc[0]
    final = study.store.load(
        study.method_config("head", float(chosen["delta"]), int(chosen["seed"]))
    )
    splits = set(final["split"])
    assert {"validation", "test", "cost"} <= splits  # the final run is evaluated on test
    val = final[(final["split"] == "validation") & (final["metric"] == "macro_f1")]["value"]
    assert val.iat[0] == chosen["val_macro_f1"]
    held = [k for k in study.kept if k[0] == "head"]
    assert not held  # the chosen model is released once stored (head is no base)


def test_a_base_keeps_only_its_chosen_trial_in_memory(tmp_path):
    from helpers.study import tuning

    study = open_study("hate_to_stormfront", "smoke", FIXTURES, tmp_path, progress=False)
    table = tuning.tune(study, ["all"])
    chosen = table[table["chosen"]].iloc[0]
    kept = [k for k in study.kept if k[0] == "all"]
    assert len(kept) == 1 and f'"lr":{chosen["value"]}' in kept[0][-1]  # others for reuse


def test_a_worker_without_the_chosen_model_trains_it_again_to_the_same_run(tmp_path):
    from helpers.study import tuning

    study = open_study("hate_to_stormfront", "smoke", FIXTURES, tmp_path, progress=False)
    table = tuning.tune(study, ["head"])
    chosen = table[table["chosen"]].iloc[0]
    config = study.method_config("head", float(chosen["delta"]), int(chosen["seed"]))
    first = study.store.load(config)
    shutil.rmtree(study.store.run_dir(config))  # as if another worker held the model and died

    again = open_study("hate_to_stormfront", "smoke", FIXTURES, tmp_path, progress=False)
    tuning.tune(again, ["head"])  # every trial stored: this worker holds no model ...
    assert not again.store.is_done(config)  # ... so it leaves the cell to the main grid
    run_method(again, "head", float(chosen["delta"]), int(chosen["seed"]))  # which trains it
    redone = again.store.load(config)
    pd.testing.assert_frame_equal(values(redone), values(first))


def values(frame: pd.DataFrame) -> pd.DataFrame:
    """A run's results, less its wall time."""
    return frame[frame["split"] != "cost"][["split", "metric", "value", "ci_low", "ci_high"]]
