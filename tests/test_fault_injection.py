"""Fault injection on a copy of the fixture corpora and a fresh store: nothing silently wrong.

Each probe damages a corpus file or a stored run the way a disk, a transfer or a person does,
and asserts either a clear one-line error (exit code 2 on the command line) or a correct
recovery to the identical result, and that no other stored result was changed or lost.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sums import accept

from helpers.data import integrity
from helpers.data.corpora import fingerprint, load_corpus
from helpers.errors import UserError
from helpers.files import sha256_file
from helpers.paths import ROOT
from helpers.study.adaptation import run_methods
from helpers.study.experiment import open_study
from helpers.study.plan import Run
from helpers.study.source import degradation
from helpers.study.store import stored

FIXTURES = ROOT / "tests" / "fixtures" / "data"
BOOKS_NEG = "amazon_multidomain/sorted_data_acl/books/negative.review"
DAVIDSON = "davidson/data/labeled_data.csv"
EXPERIMENT = "books_to_dvd"
METHODS = ["head", "cbv_weight"]


@pytest.fixture
def data(tmp_path) -> Path:
    """A private copy of the fixture corpora, with their SHA256SUMS."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "data"))


def one_line_error(call) -> str:
    with pytest.raises(UserError) as e:
        call()
    message = str(e.value)
    assert "\n" not in message
    return message


def cut_at_review_boundary(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    half = text.index("<review>", len(text) // 2)
    path.write_text(text[:half], encoding="utf-8")


# ---------------------------------------------------------------- corpora


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(cut_at_review_boundary, id="cut-at-review-boundary"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes() + random.Random(0).randbytes(64 * 1024)),
            id="random-bytes-appended",
        ),
        pytest.param(
            lambda p: p.write_bytes(p.read_text(encoding="utf-8").encode("utf-16")), id="utf-16"
        ),
    ],
)
def test_a_changed_amazon_file_is_refused_naming_file_digests_and_fix(data, damage):
    path = data / BOOKS_NEG
    before = sha256_file(path)
    damage(path)
    message = one_line_error(lambda: load_corpus("amazon_books", "train", data_root=data))
    assert str(path) in message and before in message and sha256_file(path) in message
    assert "python -m helpers download --corpora amazon_books" in message
    assert "SHA256SUMS" in message  # how to accept a change on purpose


def test_the_command_line_refuses_a_changed_corpus_with_exit_code_2(data, tmp_path):
    cut_at_review_boundary(data / BOOKS_NEG)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke"]
        + ["--experiments", EXPERIMENT, "--data-dir", str(data), "--reports-dir", str(reports)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "negative.review has SHA-256" in proc.stderr
    assert not list(reports.glob("store/**/*.parquet"))  # nothing trained, nothing stored


def test_an_accepted_file_in_another_encoding_is_a_decoding_error(data):
    path = data / BOOKS_NEG
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    accept(data)  # the digest now matches: strict decoding must still refuse it
    message = one_line_error(lambda: load_corpus("amazon_books", "train", data_root=data))
    assert str(path) in message and "line 1" in message and "not valid UTF-8" in message


@pytest.mark.parametrize("bad", [b"caf\xe9", b"\x00"], ids=["latin-1", "nul"])
def test_an_accepted_file_with_a_bad_byte_names_corpus_line_and_true_offset(data, bad):
    path = data / DAVIDSON
    original = path.read_bytes()
    at = original.index(b"\n", len(original) // 2) + 1  # deep in the file, at a row's start
    path.write_bytes(original[:at] + bad + original[at:])
    accept(data)
    message = one_line_error(lambda: load_corpus("davidson", "train", data_root=data))
    line = original.count(b"\n", 0, at) + 1
    offset = at + bad.index(bad.lstrip(b"caf"))
    assert f"corpus 'davidson': {path}, line {line}: " in message, message
    assert f"at byte offset {offset}" in message and "re-download it" in message


def test_an_accepted_amazon_file_without_one_class_is_refused(data):
    path = data / BOOKS_NEG
    path.write_text("", encoding="utf-8")  # every negative review gone
    accept(data)
    message = one_line_error(lambda: load_corpus("amazon_books", "test", data_root=data))
    assert "no negative rows" in message and "train split" in message


def test_the_davidson_csv_cut_in_half_is_refused(data, monkeypatch):
    path = data / DAVIDSON
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[: len(lines) // 2]))
    message = one_line_error(lambda: load_corpus("davidson", "train", data_root=data))
    assert "labeled_data.csv has SHA-256" in message
    # A corpus without known digests is checked against the rows its authors document.
    source = integrity.read_sources()["davidson"]
    unlisted = {**integrity.read_sources(), "davidson": replace(source, files={}, rows=600)}
    monkeypatch.setattr(integrity, "read_sources", lambda: unlisted)
    (data / integrity.SUMS).unlink()
    (data / integrity.ROWS).unlink()
    message = one_line_error(lambda: load_corpus("davidson", "train", data_root=data))
    assert "far fewer than the 600 its authors document" in message


def cut_davidson_in_half(data: Path) -> int:
    """Keep the header and the first half of the rows (at a row boundary); the rows kept."""
    path = data / DAVIDSON
    records = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    kept = records[: 1 + (len(records) - 1) // 2]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    path.write_text(out.getvalue(), encoding="utf-8")
    return len(kept) - 1


def test_an_accepted_digest_keeps_the_row_count_check(data):
    """Accepting a cut file's digest vouches for its bytes, not for its rows: still refused,
    with how to accept the smaller count on purpose; once accepted, it loads."""
    rows_file = data / integrity.ROWS
    counts = rows_file.read_bytes()
    kept = cut_davidson_in_half(data)
    accept(data)
    rows_file.write_bytes(counts)  # the digests accepted, the row counts as before
    message = one_line_error(lambda: load_corpus("davidson", "train", data_root=data))
    assert f"holds {kept:,} rows, far fewer than the 600 {rows_file} accepts" in message
    assert f"accept its count by listing `{kept}  davidson` in {rows_file}" in message
    assert "python -m helpers download --corpora davidson" in message
    rows_file.unlink()  # no accepted counts: the authors' documented count applies
    message = one_line_error(lambda: load_corpus("davidson", "train", data_root=data))
    assert "far fewer than the 24,783 its authors document" in message
    rows_file.write_text(f"{kept}  davidson\n", encoding="utf-8")
    assert load_corpus("davidson", "train", data_root=data).summary["kept"] > 0


def test_class_counts_are_reported_per_split(data):
    summary = load_corpus("amazon_books", "train", data_root=data).summary
    assert summary["class:negative"] > 0 and summary["class:positive"] > 0
    assert summary["class:negative"] + summary["class:positive"] == summary["kept"]


# ---------------------------------------------------------------- stored runs


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One smoke experiment, stored: the source model, its curve and two methods."""
    base = tmp_path_factory.mktemp("finished")
    data = Path(shutil.copytree(FIXTURES, base / "data"))
    reports = base / "reports"
    study = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    degradation(study)
    run_methods(study, METHODS)
    return data, reports


@pytest.fixture
def store_copy(finished, tmp_path):
    """A private copy of the finished store (the data are not changed by these probes)."""
    data, reports = finished
    return data, Path(shutil.copytree(reports, tmp_path / "reports"))


def digests(reports: Path) -> dict[str, str]:
    return {
        p.relative_to(reports).as_posix(): sha256_file(p)
        for p in sorted(reports.rglob("*.parquet"))
    }


def values(frame: pd.DataFrame) -> pd.DataFrame:
    """A store's results, less the runs' wall times (a redone run takes its own time)."""
    cols = ["method", "split", "metric", "value", "ci_low", "ci_high", "run_key"]
    results = frame[frame["split"] != "cost"]
    return results[cols].sort_values(cols[:3]).reset_index(drop=True)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])


def test_a_truncated_metrics_table_is_reported_and_redone(store_copy, capfd):
    data, reports = store_copy
    study = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    whole = stored(study)
    before, files = values(whole), digests(reports)
    target = study.store.run_dir(_run(study, "head").config) / "metrics.parquet"
    truncate(target)
    assert "head" not in set(stored(study)["method"])  # never read while it fails
    again = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    run_methods(again, METHODS)
    err = capfd.readouterr().err
    assert "fails verification (metrics.parquet has SHA-256" in err and str(target.parent) in err
    redone = stored(again)
    pd.testing.assert_frame_equal(values(redone), before)  # identical result
    costs = redone[redone["split"] == "cost"]
    assert len(costs) == (whole["split"] == "cost").sum() and (costs["value"] > 0).all()
    after = digests(reports)
    changed = {k for k in files if after.get(k) != files[k]}
    assert all(k.startswith(target.parent.relative_to(reports).as_posix()) for k in changed)


def test_a_truncated_curve_is_reported_and_redone(store_copy, capfd):
    data, reports = store_copy
    study = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    curve, runs = degradation(study), values(stored(study, methods=METHODS))
    source_dir = study.store.run_dir(study.source_config(0))
    truncate(source_dir / "curve.parquet")
    again = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    pd.testing.assert_frame_equal(degradation(again), curve)
    assert "fails verification (curve.parquet" in capfd.readouterr().err
    pd.testing.assert_frame_equal(values(stored(again, methods=METHODS)), runs)  # not lost


def test_an_edited_config_json_does_not_change_what_is_credited(store_copy):
    data, reports = store_copy
    study = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    coefficients = stored(study, "coefficients")
    path = study.store.run_dir(_run(study, "cbv_weight").config) / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "method": "head", "delta": 1.0}))
    after = stored(study, "coefficients")
    assert set(after["method"]) == {"cbv_weight"} and set(after["delta"]) == {0.5}
    pd.testing.assert_frame_equal(after, coefficients)
    assert study.store.is_done(_run(study, "cbv_weight").config)


def test_a_corpus_fixed_after_a_run_is_not_served_old_runs(store_copy):
    data, reports = store_copy
    fixed = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
    old_keys, old_target = set(stored(fixed)["run_key"]), fixed.fingerprints["target"]
    # The runs above were computed on the corpus as it was; now one review file changes (and
    # is accepted on purpose, as after an upstream fix).
    path = data / "amazon_multidomain/sorted_data_acl/dvd/positive.review"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b"</review>", b" </review>", 1))
        sums = (data / integrity.SUMS).read_bytes()
        accept(data)
        changed = open_study(EXPERIMENT, "smoke", data, reports, progress=False)
        assert fingerprint("amazon_dvd", data) != old_target
        for method in METHODS:
            config = Run(changed, method, 0.5, 0).config  # at the profile's default rates
            assert not changed.store.is_done(config)  # a new key: the old run is not reused
            assert changed.store.run_dir(config).name not in old_keys
        assert not changed.store.is_done(changed.source_config(0))
    finally:
        path.write_bytes(original)
        (data / integrity.SUMS).write_bytes(sums)
    assert set(stored(fixed)["run_key"]) == old_keys  # the old runs are all still there


def _run(study, method: str, delta: float = 0.5, seed: int = 0):
    """The planned final run of ``method`` at (delta, seed), with its tuned rates."""
    from helpers.study.adaptation import planned

    return next(r for r in planned(study, [method]) if (r.delta, r.seed) == (delta, seed))


def drop_weights(listed: bool):
    """Remove a checkpoint's weights, leaving its digest listing them (``listed``) or not."""

    def damage(model: Path) -> None:
        (model / "model.safetensors").unlink()
        if not listed:
            sums = json.loads((model / "sha256.json").read_text())
            sums.pop("model.safetensors")
            (model / "sha256.json").write_text(json.dumps(sums))

    return damage


@pytest.mark.parametrize(
    "damage, words",
    [
        (drop_weights(listed=True), ["model.safetensors fails verification"]),
        (drop_weights(listed=False), ["holds no model.safetensors"]),
    ],
)
def test_a_checkpoint_without_its_weights_is_one_line_naming_the_fix(
    store_copy, capsys, damage, words
):
    from helpers.__main__ import main

    data, reports = store_copy
    model = next(reports.glob("store/_models/smoke/*/model"))
    damage(model)
    shutil.rmtree(reports / "store" / EXPERIMENT)  # its runs need the source model again
    code = main(["run", "--profile", "smoke", "--experiments", EXPERIMENT, "--methods", "head"]
                + ["--data-dir", str(data), "--reports-dir", str(reports)])  # fmt: skip
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("progress:")]
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words) and f"delete {model.parent}" in err[0], err
