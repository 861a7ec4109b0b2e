"""A researcher's own corpora, declared in experiments.yaml: refused early when bad, and run
through all four notebooks (smoke profile) when good, leaving `git status` unchanged; an
experiment's own sample sizes, the own-data example of docs/data.md as written, and the run
keys of an experiment that sets none."""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from helpers.errors import UserError
from helpers.paths import EXPERIMENTS_ENV, EXPERIMENTS_FILE, ROOT
from helpers.report.preflight import plan_run
from helpers.report.runner import ANALYSIS, PER_EXPERIMENT, run_report
from tests.conftest import git_status

SIZES = {"train": 80, "validation": 24, "test": 40}  # per corpus: the smoke profile fits
GOOD = ["great", "lovely", "superb", "charming", "brilliant", "delightful"]
BAD = ["awful", "dull", "broken", "tedious", "clumsy", "dreadful"]


def invented(topic_words: list[str], seed: int):
    """Unique short reviews with a sentiment cue: (text, positive?, split) rows."""
    combos = itertools.product(
        topic_words,
        GOOD + BAD,
        ["really", "quite", "very", "so"],
        ["today", "again", "overall", "honestly", "indeed"],
    )
    rows = [
        (f"the {topic} was {adv} {cue} {tail}", cue in GOOD) for topic, cue, adv, tail in combos
    ]
    random.Random(seed).shuffle(rows)  # classes spread over every split
    splits = [s for s, n in SIZES.items() for _ in range(n)]
    return [(t, pos, s) for (t, pos), s in zip(rows, splits)]


def write_corpora(folder: Path) -> tuple[Path, Path]:
    """A CSV of star ratings (source) and a JSON Lines file of label names (target)."""
    books = folder / "my_books.csv"
    with books.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars", "part"])
        for i, (text, pos, split) in enumerate(invented(["novel", "plot", "author"], 0)):
            w.writerow([text, 5 - i % 2 if pos else 1 + i % 2, split])
    films = folder / "my_films.jsonl"
    lines = [
        json.dumps({"body": t, "verdict": "positive" if pos else "negative", "part": s})
        for t, pos, s in invented(["film", "cast", "ending"], 1)
    ]
    films.write_text("\n".join(lines) + "\n")
    return books, films


def config_with(folder: Path, source: dict, target) -> Path:
    raw = yaml.safe_load(EXPERIMENTS_FILE.read_text())
    raw["experiments"] = {"my_shift": {"task": "sentiment", "source": source, "target": target}}
    path = folder / "experiments.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def declarations(books: Path, films: Path) -> tuple[dict, dict]:
    source = {
        "path": str(books),
        "text": "review",
        "label": "stars",
        "threshold": 4,
        "label_names": ["negative", "positive"],
        "split": "part",
    }
    target = {
        "path": str(films),
        "text": "body",
        "label": "verdict",
        "label_names": ["negative", "positive"],
        "split": "part",
    }
    return source, target


@pytest.fixture
def corpora(tmp_path, monkeypatch):
    books, films = write_corpora(tmp_path)
    monkeypatch.setenv(EXPERIMENTS_ENV, str(EXPERIMENTS_FILE))  # restored after the test
    return tmp_path, books, films


def plan(folder: Path, source, target, monkeypatch):
    monkeypatch.setenv(EXPERIMENTS_ENV, str(config_with(folder, source, target)))
    return plan_run("smoke", ["my_shift"], reports_dir=folder / "reports")


def test_a_declared_pair_loads_into_one_label_space(corpora, monkeypatch):
    from helpers.study.experiment import open_study

    folder, books, films = corpora
    source, target = declarations(books, films)
    p = plan(folder, source, target, monkeypatch)
    study = open_study("my_shift", "smoke", None, p.reports, progress=False)
    a, b = study.pools["test"]
    assert (a.name, b.name) == ("my_books", "my_films")
    assert (len(a.frame), len(b.frame)) == (40, 40) and a.label_names == ("negative", "positive")
    assert study.base_config(0)["source_data"]["path"] == str(books)


def test_a_declared_table_mixes_with_a_built_in_corpus(corpora, fixture_data, monkeypatch):
    folder, books, films = corpora
    source, _ = declarations(books, films)
    p = plan(folder, source, "amazon_dvd", monkeypatch)
    assert p.experiments[0].target == "amazon_dvd" and p.data_root == fixture_data


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda s, t: s.update(path="/nowhere/x.csv"), ["source.path", "missing file"]),
        (lambda s, t: s.update(text="body"), ["no column(s) body", "review"]),
        (lambda s, t: s.update(threshold=9), ["holds one class only", "threshold"]),
        (lambda s, t: t.pop("label_names"), ["holds names", "label_names"]),
        (
            lambda s, t: t.update(label_names=["bad", "good"]),
            ["holds 'negative'", "not in label_names ['bad', 'good']"],
        ),
        (
            lambda s, t: s.update(label_names=["low", "high"]),
            ["('low', 'high')", "'sentiment' task", "label_names: [negative, positive]"],
        ),
        (lambda s, t: t.update(path=s["path"]), ["both named 'my_books'"]),
    ],
)
def test_a_bad_declaration_is_one_clear_line_before_training(corpora, monkeypatch, change, words):
    folder, books, films = corpora
    source, target = declarations(books, films)
    change(source, target)
    with pytest.raises(UserError) as e:
        plan(folder, source, target, monkeypatch)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert not (folder / "reports" / "store").exists()


@pytest.mark.slow
def test_a_hand_written_csv_runs_through_all_four_notebooks(corpora, monkeypatch):
    """The worked example of docs/data.md: one experiments.yaml entry, four reports, clean."""
    folder, books, films = corpora
    before = git_status()
    config = config_with(folder, *declarations(books, films))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(config))  # the notebook kernels inherit it
    reports = folder / "reports"
    html = run_report("smoke", ["my_shift"], reports_dir=reports)
    assert len(html) == 4
    for name in [*PER_EXPERIMENT, ANALYSIS]:
        sub = "analysis" if name == ANALYSIS else "my_shift"
        nb = nbformat.read(reports / sub / f"{name}.ipynb", as_version=4)
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    figures = reports / "figures" / "smoke"
    assert (figures / "my_shift" / "01_degradation.png").is_file()
    assert (figures / "analysis" / "04_methods_grid.png").is_file()
    assert git_status() == before  # nothing under figures/ (or anywhere tracked) changed


# ------------------------------------------------------- sizes, and the example of docs/data.md


def readme_example() -> tuple[str, dict, list[str]]:
    """The own-data example of docs/data.md as written: (experiment name, its entry, CSV
    columns)."""
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    section = text[text.index("### Your own data") :]
    columns = re.search(r"```csv\n(.*?)\n", section).group(1).split(",")
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    [(name, entry)] = yaml.safe_load(block).items()
    return name, entry, columns


def star_reviews(path: Path, rows: int, columns: list[str]) -> None:
    """A CSV of ``rows`` invented reviews with 1-5 stars, in the example's columns."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for i, (text, positive, _) in enumerate(invented(["novel", "plot", "author"], 2)[:rows]):
            w.writerow([text, 4 + i % 2 if positive else 1 + i % 3])


def example_config(folder: Path, entry: dict, name: str, columns) -> Path:
    csv_file = folder / Path(entry["source"]["path"]).name
    star_reviews(csv_file, 300, columns)  # "a few hundred rows"
    entry = {**entry, "source": {**entry["source"], "path": str(csv_file)}}
    raw = yaml.safe_load(EXPERIMENTS_FILE.read_text())
    raw["experiments"] = {name: entry}
    config = folder / "experiments.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


def test_the_readme_example_fits_the_quick_profile_as_written(fixture_data, tmp_path, monkeypatch):
    from helpers.study.experiment import open_study

    name, entry, columns = readme_example()
    monkeypatch.setenv(EXPERIMENTS_ENV, str(example_config(tmp_path, entry, name, columns)))
    p = plan_run("quick", [name], fixture_data, tmp_path / "reports")
    assert dict(p.experiments[0].sizes)["n_val"] is None  # its own size, not quick's 128
    study = open_study(name, "quick", fixture_data, tmp_path / "reports", progress=False)
    a_train = study.pools["train"][0]
    assert study.profile.n_source_train is None and study.size("train") == len(a_train.frame)
    assert study.source_model_config(0)["n_val"] is None


def test_a_corpus_too_small_for_its_profile_is_one_line_before_any_notebook(
    fixture_data, tmp_path, monkeypatch, capsys
):
    """The example of docs/data.md without its sizes: refused once, with every size and the fix."""
    from helpers.__main__ import main

    name, entry, columns = readme_example()
    entry = {k: v for k, v in entry.items() if not k.startswith("n_")}
    config = example_config(tmp_path, entry, name, columns)
    monkeypatch.setenv(EXPERIMENTS_ENV, str(EXPERIMENTS_FILE))  # restored after --config
    reports = tmp_path / "reports"
    code = main(["report", "--profile", "quick", "--experiments", name, "--config", str(config)]
                + ["--data-dir", str(fixture_data), "--reports-dir", str(reports)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for size in ("n_source_train 1000, but", "n_train 256, but", "n_val 512, but"):
        assert size in err, err
    assert f"in its entry experiments.{name} of {config}" in err and "or null" in err
    assert not (reports / name).exists() and not (reports / "analysis").exists()


@pytest.mark.parametrize(
    "sizes, words",
    [
        ({"n_val": "5"}, ["experiments.my_shift.n_val", "'5' (text)"]),
        ({"n_train": 0}, ["experiments.my_shift.n_train", "whole number >= 1"]),
        ({"n_tests": 5}, ["unknown key 'n_tests'", "n_test"]),
    ],
)
def test_an_experiments_own_sizes_are_validated(corpora, monkeypatch, sizes, words):
    folder, books, films = corpora
    config = config_with(folder, *declarations(books, films))
    raw = yaml.safe_load(config.read_text())
    raw["experiments"]["my_shift"].update(sizes)
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(config))
    with pytest.raises(UserError) as e:
        plan_run("smoke", ["my_shift"], reports_dir=folder / "reports")
    assert all(w in str(e.value) for w in words), str(e.value)


def test_an_experiments_own_sizes_replace_its_profiles(corpora, monkeypatch):
    from helpers.study.experiment import open_study

    folder, books, films = corpora
    config = config_with(folder, *declarations(books, films))
    raw = yaml.safe_load(config.read_text())
    raw["experiments"]["my_shift"].update(n_train=24, n_test=None)
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(config))
    study = open_study("my_shift", "smoke", None, folder / "reports", progress=False)
    assert (study.profile.n_train, study.profile.n_test, study.profile.n_val) == (24, None, 16)
    assert study.method_config("head", 0.5, 0, study.train_config("head", 0))["sizes"] == {
        "train": 24,
        "validation": 16,
    }
    assert len(study.mixture("test", 0.5, 0)) == 40  # null: all both test pools allow


# Keys of books_to_dvd's smoke runs on the fixture corpora, as before experiments could set
# sizes: an experiment that sets none keeps its runs' keys. (A deliberate change to what enters
# a key, such as a new TrainConfig field, changes them: update them with that change.)
PINNED_KEYS = {"source model": "82863541b244f9ed", "source": "643f201168a6afc3"}
PINNED_KEYS["head"] = "e12b214382d7403d"


def test_a_built_in_experiment_keeps_its_run_keys(fixture_data, tmp_path):
    from helpers.study.experiment import open_study
    from helpers.study.store import run_key

    study = open_study("books_to_dvd", "smoke", fixture_data, tmp_path, progress=False)
    keys = {
        "source model": run_key(study.source_model_config(0)),
        "source": run_key(study.source_config(0)),
        "head": run_key(study.method_config("head", 0.5, 0, study.train_config("head", 0))),
    }
    assert keys == PINNED_KEYS
