"""Configuration checked before anything trains: experiments.yaml's schema, data root, folders.

Each fault is exit status 2 and one line naming the file, the key and the fix.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from helpers.__main__ import main
from helpers.paths import EXPERIMENTS_ENV, EXPERIMENTS_FILE, ROOT

BASE = yaml.safe_load(EXPERIMENTS_FILE.read_text())


@pytest.fixture(autouse=True)
def _restore_config(monkeypatch):
    """--config sets $CBV_EXPERIMENTS in this process; put it back after each test."""
    monkeypatch.setenv(EXPERIMENTS_ENV, str(EXPERIMENTS_FILE))


def smoke(**changes):
    def edit(raw):
        raw["profiles"]["smoke"].update(changes)

    return edit


def train(**changes):
    def edit(raw):
        raw["profiles"]["smoke"]["train"].update(changes)

    return edit


def experiment(**changes):
    def edit(raw):
        raw["experiments"]["books_to_dvd"].update(changes)

    return edit


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"


@pytest.mark.parametrize(
    "edit, words",
    [
        (train(lr="abc"), ["profiles.smoke.train.lr", "'abc'", "number"]),
        (train(lr="1e-4"), ["profiles.smoke.train.lr", "write it with a dot"]),
        (smoke(n_train="32"), ["profiles.smoke.n_train", "'32' (text)", "whole number"]),
        (smoke(n_train=2.5), ["profiles.smoke.n_train", "2.5", "whole number"]),
        (smoke(n_boot=0), ["profiles.smoke.n_boot", "whole number >= 1"]),
        (smoke(colour="red"), ["profiles.smoke", "unknown key 'colour'", "n_boot"]),
        (train(epochs=0), ["profiles.smoke.train", "epochs must be at least 1"]),
        (
            smoke(notebook_03=["cbv_wieght"]),
            ["profiles.smoke.notebook_03", "unknown method 'cbv_wieght'"],
        ),
        (smoke(cbv=["cbv_weight"]), ["profiles.smoke.cbv", "now named 'notebook_03'"]),
        (smoke(deltas=[0.5, 1.5]), ["profiles.smoke.deltas[1]", "[0, 1]"]),
        (smoke(seeds=[]), ["profiles.smoke.seeds", "list of seeds"]),
        (experiment(task="poetry"), ["experiments.books_to_dvd.task", "max_length"]),
        (experiment(source=3), ["experiments.books_to_dvd.source", "corpus name"]),
        (experiment(target={"path": "x.csv", "text": "t"}), ["target", "missing key 'label'"]),
        (experiment(source={"path": "x.txt", "text": "t", "label": "l"}), ["not a table file"]),
        (lambda raw: raw.update(extra=1), ["unknown key 'extra'"]),
        (lambda raw: raw.pop("profiles"), ["missing key 'profiles'"]),
    ],
)
def test_a_bad_configuration_is_one_line_naming_file_and_key(tmp_path, capsys, edit, words):
    raw = copy.deepcopy(BASE)
    edit(raw)
    config = tmp_path / "experiments.yaml"
    config.write_text(yaml.safe_dump(raw))
    reports = tmp_path / "reports"
    code, err = run_cli(
        capsys,
        "report",
        "--profile",
        "smoke",
        "--config",
        str(config),
        "--reports-dir",
        str(reports),
    )
    assert_one_line(code, err, str(config), *words)
    assert not reports.exists()  # refused before anything was written


@pytest.mark.parametrize("text, words", [("", ["the file is empty"]), ("a: [", ["not valid YAML"])])
def test_an_empty_or_broken_file_is_refused(tmp_path, capsys, text, words):
    config = tmp_path / "experiments.yaml"
    config.write_text(text)
    code, err = run_cli(capsys, "run", "--profile", "smoke", "--config", str(config))
    assert_one_line(code, err, str(config), *words)


def test_the_committed_configuration_passes(fixture_data, tmp_path):
    from helpers.report.preflight import plan_run

    plan = plan_run("smoke", ["books_to_dvd", "hate_to_davidson"], fixture_data, tmp_path)
    assert [e.name for e in plan.experiments] == ["books_to_dvd", "hate_to_davidson"]
    # A smoke run never writes the committed figures/: its figures go under the reports.
    assert set(plan.figures.values()) == {tmp_path / "figures" / "smoke"}


def test_a_data_root_without_the_corpora_is_refused_before_any_notebook(tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    code, err = run_cli(
        capsys,
        "report",
        "--profile",
        "smoke",
        "--experiments",
        "hate_to_davidson",
        "--data-dir",
        str(empty),
        "--reports-dir",
        str(tmp_path / "reports"),
    )
    assert_one_line(code, err, "needs corpus 'tweeteval_hate'", "python -m helpers download")
    assert not (tmp_path / "reports").exists()


def test_unwritable_output_folders_are_refused(fixture_data, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, err = run_cli(
        capsys,
        "report",
        "--profile",
        "smoke",
        "--experiments",
        "books_to_dvd",
        "--data-dir",
        str(fixture_data),
        "--reports-dir",
        str(blocker / "r"),
    )
    assert_one_line(code, err, "reports folder", "not writable", "--reports-dir")
    code, err = run_cli(
        capsys,
        "report",
        "--profile",
        "smoke",
        "--experiments",
        "books_to_dvd",
        "--data-dir",
        str(fixture_data),
        "--reports-dir",
        str(tmp_path / "r"),
        "--figures-dir",
        str(blocker / "f"),
    )
    assert_one_line(code, err, "figures folder", "not writable", "--figures-dir")


@pytest.mark.parametrize("command", ["report", "run"])
def test_experiments_without_names_is_an_error(command, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers",
            command,
            "--profile",
            "smoke",
            "--experiments",
            "--reports-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line(proc.returncode, proc.stderr.strip(), "--experiments was given without names")


@pytest.mark.parametrize("command", ["report", "run"])
def test_a_bad_file_is_refused_before_pandas_torch_or_transformers_load(command, tmp_path):
    """A typo costs a fraction of a second: the schema is checked before the heavy imports."""
    raw = copy.deepcopy(BASE)
    smoke(n_train="32")(raw)
    config = tmp_path / "experiments.yaml"
    config.write_text(yaml.safe_dump(raw))
    code = (
        "import sys\n"
        "from helpers.__main__ import main\n"
        f"code = main([{command!r}, '--profile', 'smoke', '--config', {str(config)!r}])\n"
        "print(code, sorted(m for m in ('pandas', 'torch', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr[-2000:]
    assert "profiles.smoke.n_train" in proc.stderr
