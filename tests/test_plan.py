"""A report shows exactly the plan's runs: an earlier configuration's runs are stale, listed and
pruned, never mixed in (issue 22's reproduction, on the smoke profile and the fixture corpora)."""

import yaml

from helpers.paths import EXPERIMENTS_ENV, EXPERIMENTS_FILE
from helpers.study.adaptation import run_methods
from helpers.study.experiment import open_study
from helpers.study.inventory import planned_keys, prune, stale_runs
from helpers.study.store import Store

METHODS = ["none", "all", "wise_ft_backbone"]


def test_a_changed_setting_makes_the_old_runs_stale_and_only_the_new_are_read(
    fixture_data, tmp_path, monkeypatch
):
    old = run_methods(open_study("books_to_dvd", "smoke", fixture_data, tmp_path, False), METHODS)
    raw = yaml.safe_load(EXPERIMENTS_FILE.read_text())
    raw["profiles"]["smoke"]["train"]["epochs"] = 2
    changed = tmp_path / "experiments.yaml"
    changed.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(changed))
    study = open_study("books_to_dvd", "smoke", fixture_data, tmp_path, False)
    new = run_methods(study, METHODS)
    keys, missing = planned_keys([study])
    assert not {f"books_to_dvd {m}" for m in METHODS} & set(missing)  # the rest was never run
    trained = new[new["method"] != "none"]["run_key"]
    assert set(trained) <= keys and not set(old[old["method"] != "none"]["run_key"]) & keys
    shown = Store(tmp_path).collect("metrics", profile="smoke", keys=keys)
    shown = shown[shown["method"] != "source"]  # the source run: the same under both settings
    assert set(shown["run_key"]) == set(new["run_key"])  # the new numbers, and only them
    stale = {p.name for p in stale_runs([study])}
    assert set(old[old["method"] != "none"]["run_key"]) <= stale  # old grid runs, old trials
    assert not stale & keys
    assert {p.name for p in prune([study], dry_run=True)} == stale  # a dry run removes nothing
    assert {p.name for p in stale_runs([study])} == stale
    prune([study], dry_run=False)
    assert not stale_runs([study])
    left = Store(tmp_path).collect("metrics", profile="smoke")
    assert set(left[left["method"] != "source"]["run_key"]) == set(new["run_key"])
