"""Declared corpora at their edges: separators, classes to map or drop, bytes that are not text.

Each case is a small real file declared in an experiments.yaml and loaded the way a run loads it
(``plan_run``, then the pools): good files load with what cleaning did counted, bad ones are
one line naming the declaration's key, the file, the line and the true byte offset.
"""

from __future__ import annotations

import csv
import gzip
import io

import pytest
import yaml

from helpers.data.pools import experiment_pools
from helpers.data.tables import load_table
from helpers.errors import UserError
from helpers.paths import EXPERIMENTS_ENV, EXPERIMENTS_FILE
from helpers.report.preflight import plan_run

WORDS = {"negative": ["dull", "awful", "tedious", "clumsy"], "positive": ["superb", "lovely"]}


def reviews(n: int = 240, neutral: bool = False) -> list[tuple[str, str]]:
    """(text, label) rows, both classes in every split, unique texts; commas inside the texts."""
    labels = ["negative", "positive"] + (["neutral"] if neutral else [])
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        cue = WORDS.get(label, ["fine"])[i % len(WORDS.get(label, ["fine"]))]
        rows.append((f"review {i}: the book was {cue}, really", label))
    return rows


def write_csv(path, rows, sep=",", header=("review", "verdict")) -> None:
    buffer = io.StringIO()
    w = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def declare(tmp_path, monkeypatch, **source) -> dict:
    """An experiments.yaml whose one experiment reads ``source`` (into amazon_dvd)."""
    raw = yaml.safe_load(EXPERIMENTS_FILE.read_text())
    decl = {"text": "review", "label": "verdict", "label_names": ["negative", "positive"]}
    decl |= source
    entry = {"task": "sentiment", "source": decl, "target": "amazon_dvd"}
    raw["experiments"] = {"mine": entry | {"n_val": None, "n_test": None}}  # all they hold
    config = tmp_path / "experiments.yaml"
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(EXPERIMENTS_ENV, str(config))
    return raw


def pools(tmp_path, fixture_data):
    plan = plan_run("smoke", ["mine"], fixture_data, tmp_path / "reports")
    return experiment_pools(plan.experiments[0], fixture_data)


def refusal(tmp_path, fixture_data) -> str:
    with pytest.raises(UserError) as e:
        pools(tmp_path, fixture_data)
    message = str(e.value)
    assert "\n" not in message, message
    return message


# ------------------------------------------------------------------ separators


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_separated_by_another_character_is_read_by_its_header(
    tmp_path, fixture_data, monkeypatch, sep
):
    path = tmp_path / "mine.csv"
    write_csv(path, reviews(), sep=sep)
    declare(tmp_path, monkeypatch, path=str(path))
    train = pools(tmp_path, fixture_data)["train"][0]
    assert train.frame["text"].str.contains(", really").all()  # commas stayed inside the texts
    assert set(train.frame["label"]) == {0, 1}


def test_a_declared_separator_is_used_and_checked(tmp_path, fixture_data, monkeypatch):
    path = tmp_path / "mine.csv"
    write_csv(path, reviews(), sep=";")
    declare(tmp_path, monkeypatch, path=str(path), sep=";")
    assert len(pools(tmp_path, fixture_data)["train"][0].frame) > 100
    declare(tmp_path, monkeypatch, path=str(path), sep=",")  # said wrong: the columns are missing
    assert "no column(s) review, verdict" in refusal(tmp_path, fixture_data)
    for bad, words in [(";;", "one separating character"), ('"', "one separating character")]:
        declare(tmp_path, monkeypatch, path=str(path), sep=bad)
        assert words in refusal(tmp_path, fixture_data)
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text('{"review": "x", "verdict": "negative"}\n')
    declare(tmp_path, monkeypatch, path=str(jsonl), sep=";")
    assert "only a CSV or TSV file has a separator" in refusal(tmp_path, fixture_data)


def test_a_malformed_csv_names_the_separator_it_was_read_with(tmp_path, fixture_data, monkeypatch):
    path = tmp_path / "mine.csv"
    write_csv(path, reviews())
    path.write_text(path.read_text() + 'x,negative,"extra",field\n')
    declare(tmp_path, monkeypatch, path=str(path))
    message = refusal(tmp_path, fixture_data)
    assert "experiments.mine.source" in message and str(path) in message
    assert "read with sep ','" in message and "Traceback" not in message


# ------------------------------------------------------------------ classes


def test_a_neutral_class_is_dropped_and_counted(tmp_path, fixture_data, monkeypatch):
    path = tmp_path / "three.csv"
    write_csv(path, reviews(360, neutral=True))
    declare(
        tmp_path,
        monkeypatch,
        path=str(path),
        label_names=None,
        classes={"negative": "negative", "positive": "positive"},
    )
    a = pools(tmp_path, fixture_data)["train"][0]
    assert a.label_names == ("negative", "positive")
    assert a.summary["label_dropped:neutral"] > 0  # counted, not silently gone
    assert a.summary["raw"] == a.summary["kept"] + a.summary["label_dropped:neutral"]
    assert not a.frame["text"].str.contains("fine").any()


def test_classes_map_numeric_labels_in_the_tasks_order(tmp_path, fixture_data, monkeypatch):
    path = tmp_path / "stars.csv"
    stars = {"negative": 1, "positive": 5}
    rows = [(t, stars[lab]) for t, lab in reviews()] + [("review x: so-so", 3)] * 3
    write_csv(path, rows)
    # listed positive first: the names still take the sentiment task's order
    declare(
        tmp_path,
        monkeypatch,
        path=str(path),
        label_names=None,
        classes={5: "positive", 1: "negative", 3: None},
    )
    a = pools(tmp_path, fixture_data)["train"][0]
    assert a.label_names == ("negative", "positive")
    positive = a.frame[a.frame["text"].str.contains("superb|lovely")]
    assert set(positive["label"]) == {1}


@pytest.mark.parametrize(
    "classes, extra, words",
    [
        ({"negative": "negative"}, {}, ["maps to 1 class(es)"]),
        ({"a": "negative", "b": "positive"}, {"threshold": 3}, ["not both"]),
        ({"a": "neg", "b": "positive"}, {}, ["'neg' is not in label_names"]),
        (["negative", "positive"], {}, ["expected a mapping"]),
        ({"a": 3, "b": "positive"}, {}, ["not a class name"]),
    ],
)
def test_bad_classes_are_refused_when_the_file_is_read(
    tmp_path, fixture_data, monkeypatch, classes, extra, words
):
    path = tmp_path / "mine.csv"
    write_csv(path, reviews())
    declare(tmp_path, monkeypatch, path=str(path), classes=classes, **extra)
    message = refusal(tmp_path, fixture_data)
    assert "experiments.mine.source" in message and all(w in message for w in words), message


# ------------------------------------------------------------------ bytes that are not text


def test_control_characters_are_cleaned_and_counted(tmp_path, fixture_data, monkeypatch):
    from helpers.study.experiment import open_study

    path = tmp_path / "mine.csv"
    rows = reviews()
    rows[0] = ("review 0: the book was \x01dull\x1b, really", "negative")
    write_csv(path, rows)
    declare(tmp_path, monkeypatch, path=str(path))
    study = open_study("mine", "smoke", fixture_data, tmp_path / "reports", progress=False)
    split = next(s for s, (a, _) in study.pools.items() if a.summary["control_char_replaced"])
    assert study.pools[split][0].summary["control_char_replaced"] == 1
    shown = study.describe().set_index(["split", "role"])
    assert shown.loc[(split, "A"), "control characters replaced"] == 1


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl"])
def test_a_nul_byte_is_refused_naming_key_file_line_and_offset(
    tmp_path, fixture_data, monkeypatch, suffix
):
    path = tmp_path / f"mine{suffix}"
    write_csv(tmp_path / "plain.csv", reviews())
    data = (tmp_path / "plain.csv").read_bytes()
    if suffix == ".jsonl":
        data = "".join(f'{{"review": "{t}", "verdict": "{v}"}}\n' for t, v in reviews()).encode()
    at = data.index(b"review 7")
    data = data[:at] + b"\x00" + data[at:]
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    declare(tmp_path, monkeypatch, path=str(path))
    message = refusal(tmp_path, fixture_data)
    line = data.count(b"\n", 0, at) + 1
    assert f"experiments.mine.source ({path}), line {line}" in message, message
    assert f"1 NUL byte(s), the first at byte offset {at}" in message
    assert "save the file as UTF-8" in message


def test_a_mixed_encoding_names_key_file_and_true_offset(tmp_path, fixture_data, monkeypatch):
    """Latin-1 bytes deep in a UTF-8 file: pandas named offset 122 within a chunk; the byte
    offset here is the file's."""
    path = tmp_path / "mixed.csv"
    write_csv(path, reviews(400))
    data = path.read_bytes()
    at = data.index(b"review 300")
    path.write_bytes(data[:at] + "café ".encode("latin-1") + data[at:])
    declare(tmp_path, monkeypatch, path=str(path))
    message = refusal(tmp_path, fixture_data)
    bad = at + 3  # the 0xe9 of "café"
    line = data.count(b"\n", 0, at) + 1
    assert f"experiments.mine.source ({path}), line {line}" in message, message
    assert f"byte 0xe9 at byte offset {bad} is not valid UTF-8" in message


def test_a_utf16_file_and_a_utf8_bom(tmp_path):
    path = tmp_path / "mine.csv"
    write_csv(path, reviews())
    text = path.read_text()
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(UserError, match="line 1: a UTF-16 or UTF-32 byte order mark"):
        load_table(path, "review", "verdict", ["negative", "positive"])
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # Excel's UTF-8: the header still reads
    assert len(load_table(path, "review", "verdict", ["negative", "positive"]).frame) == 240


def test_a_truncated_gzip_file_is_one_line(tmp_path):
    path = tmp_path / "mine.csv.gz"
    write_csv(tmp_path / "plain.csv", reviews())
    path.write_bytes(gzip.compress((tmp_path / "plain.csv").read_bytes())[:-30])
    with pytest.raises(UserError, match="not a whole gzip file"):
        load_table(path, "review", "verdict", ["negative", "positive"])
