"""Corpus loaders: the fixture corpora (real-corpus counts behind ``real_data``), quirks, errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sums import accept

from helpers.data import cleaning, corpora
from helpers.data.corpora import CORPORA, corpus_summary, load_corpus
from helpers.data.schema import SPLITS, TASKS, Corpus
from helpers.data.sources import read_sources
from helpers.data.tables import load_hub, load_table
from helpers.errors import UserError

PAIRS = [(name, task) for name, spec in CORPORA.items() for task in spec.tasks]
DROP_KEYS = (
    "blank_dropped",
    "duplicate_dropped",
    "conflicting_duplicate_dropped",
    "overlap_dropped",
)

# Rows as published, per split (before any cleaning).
RAW = {
    "tweeteval_hate": {"train": 9000, "validation": 1000, "test": 2970},
    "tweeteval_offensive": {"train": 11916, "validation": 1324, "test": 860},
}
RAW_TOTAL = {
    "amazon_books": 2000,
    "amazon_dvd": 2000,
    "amazon_electronics": 2000,
    "amazon_kitchen": 2000,
    "tweeteval_hate": 12970,
    "tweeteval_offensive": 14100,
    "davidson": 24783,
    "stormfront": 10944,
}
# Rows kept after cleaning, pinned so that a change to parsing or cleaning shows up here.
KEPT = {
    ("amazon_books", "sentiment"): (1559, 197, 200),
    ("amazon_dvd", "sentiment"): (1579, 183, 192),
    ("amazon_electronics", "sentiment"): (1571, 196, 199),
    ("amazon_kitchen", "sentiment"): (1561, 216, 200),
    ("tweeteval_hate", "hate"): (8750, 999, 2966),
    ("tweeteval_offensive", "offensive"): (11870, 1323, 848),
    ("davidson", "hate"): (19735, 2422, 2489),
    ("davidson", "offensive"): (19737, 2422, 2489),
    ("stormfront", "hate"): (8452, 1067, 1015),
}


def all_splits(name, task, root):
    return {s: load_corpus(name, s, task, data_root=root) for s in SPLITS}


# ---------------------------------------------------------------- published layouts


@pytest.mark.parametrize("name,task", PAIRS)
def test_every_corpus_loads_clean_and_disjoint(fixture_data, name, task):
    splits = all_splits(name, task, fixture_data)
    for split, c in splits.items():
        f = c.frame
        assert (c.name, c.split, c.task, c.label_names) == (name, split, task, TASKS[task])
        assert list(f.columns) == ["id", "text", "label", "source"]
        assert f["label"].dtype == "int64" and f["label"].between(0, 1).all()
        assert f["label"].nunique() == 2, "both classes occur in every split"
        assert (f["source"] == name).all()
        assert f["text"].map(lambda t: isinstance(t, str) and t == t.strip() and t != "").all()
        assert not f["text"].str.contains("&amp;|&quot;|&#8220;|\x1a", regex=True).any()
        s = c.summary
        dropped = sum(
            v for k, v in s.items() if k.endswith("_dropped") or k.startswith("label_dropped:")
        )
        assert s["kept"] == len(f) and s["raw"] == s["kept"] + dropped
    ids = pd.concat([c.frame["id"] for c in splits.values()])
    texts = pd.concat([c.frame["text"] for c in splits.values()])
    assert ids.is_unique, "ids are unique within a corpus, so splits are disjoint"
    assert texts.is_unique, "no text appears twice, within or across splits"


@pytest.mark.real_data
@pytest.mark.parametrize("name,task", PAIRS)
def test_real_kept_counts(shared_data, name, task):
    splits = all_splits(name, task, shared_data)
    assert tuple(len(splits[s].frame) for s in SPLITS) == KEPT[(name, task)]


@pytest.mark.real_data
@pytest.mark.parametrize("name", list(CORPORA))
def test_raw_counts_match_the_published_corpus(shared_data, name):
    summary = corpus_summary(name, data_root=shared_data)
    raw = summary[summary["quirk"] == "raw"].set_index("split")["count"]
    assert raw.sum() == RAW_TOTAL[name]
    if name in RAW:
        assert raw.to_dict() == RAW[name]
    else:  # hash split: close to 80/10/10
        assert abs(raw["train"] / raw.sum() - 0.8) < 0.03
        assert abs(raw["test"] / raw.sum() - 0.1) < 0.03


def test_summary_is_tidy(fixture_data):
    table = corpus_summary("stormfront", data_root=fixture_data)
    assert list(table.columns) == ["corpus", "split", "quirk", "count"]
    assert set(table["split"]) == set(SPLITS) and (table["corpus"] == "stormfront").all()
    totals = table.groupby("quirk")["count"].sum()
    # tests/fixtures/README.md: 8 relation and 5 idk/skip sentences
    assert totals["label_dropped:relation"] == 8 and totals["label_dropped:idk/skip"] == 5


@pytest.mark.real_data
def test_real_summary_counts(shared_data):
    totals = corpus_summary("stormfront", data_root=shared_data).groupby("quirk")["count"].sum()
    assert totals["label_dropped:relation"] == 168 and totals["label_dropped:idk/skip"] == 73


def test_stormfront_posts_never_straddle_splits(fixture_data):
    posts = {
        s: set(
            load_corpus("stormfront", s, data_root=fixture_data).frame["id"].str.split("_").str[0]
        )
        for s in SPLITS
    }
    assert not posts["train"] & posts["validation"]
    assert not posts["train"] & posts["test"]
    assert not posts["validation"] & posts["test"]


def test_quirks_are_counted_in_the_fixtures(fixture_data):
    hate = corpus_summary("tweeteval_hate", data_root=fixture_data).groupby("quirk")["count"].sum()
    assert hate["blank_dropped"] >= 1 and hate["overlap_dropped"] >= 1
    assert hate["html_unescaped"] > 0
    books = corpus_summary("amazon_books", data_root=fixture_data)
    assert books.query("quirk == 'control_char_replaced'")["count"].sum() > 0
    assert books.query("quirk == 'duplicate_id_suffixed'")["count"].sum() == 0
    dav = corpus_summary("davidson", data_root=fixture_data, task="offensive")
    for quirk in ("html_unescaped", "mention_anonymised", "retweet_marker_removed"):  # noqa: B007 (read by query)
        assert dav.query("quirk == @quirk")["count"].sum() > 0


@pytest.mark.real_data
def test_quirks_are_counted(shared_data):
    hate = corpus_summary("tweeteval_hate", data_root=shared_data).set_index(["split", "quirk"])
    assert hate.loc[("train", "blank_dropped"), "count"] == 7
    assert hate.loc[("validation", "blank_dropped"), "count"] == 1
    # 233 test tweets repeat a train tweet (91 with the other label): train loses them.
    assert hate.loc[("train", "overlap_dropped"), "count"] >= 233
    assert hate.loc[("train", "html_unescaped"), "count"] > 0

    books = corpus_summary("amazon_books", data_root=shared_data)
    assert books.query("quirk == 'control_char_replaced'")["count"].sum() > 0
    assert books.query("quirk == 'duplicate_id_suffixed'")["count"].sum() == 0

    dav = corpus_summary("davidson", data_root=shared_data, task="offensive")
    for quirk in ("html_unescaped", "mention_anonymised", "retweet_marker_removed"):  # noqa: B007 (read by query)
        assert dav.query("quirk == @quirk")["count"].sum() > 1000


def test_davidson_tweets_are_normalised_like_tweeteval(fixture_data):
    text = load_corpus("davidson", "train", "hate", data_root=fixture_data).frame["text"]
    handles = text.str.findall(r"(?<![\w@])@[A-Za-z0-9_]+").explode().dropna()
    assert set(handles) == {"@user"}
    assert not text.str.contains(r"\bRT @", regex=True).any()


def test_label_mapping_follows_the_docstring(fixture_data):
    # Davidson's classes split differently per task; the ids line up across tasks.
    hate = load_corpus("davidson", "test", "hate", data_root=fixture_data).frame.set_index("id")
    off = load_corpus("davidson", "test", "offensive", data_root=fixture_data).frame.set_index("id")
    both = hate.join(off, suffixes=("_h", "_o"), how="inner")
    assert not ((both["label_h"] == 1) & (both["label_o"] == 0)).any(), "hate is offensive"
    pos = load_corpus("amazon_dvd", "train", data_root=fixture_data).frame
    assert pos["label"].mean() == pytest.approx(0.5, abs=0.05)


def test_splits_do_not_depend_on_task(fixture_data):
    for split in SPLITS:
        ids = [
            set(load_corpus("davidson", split, t, data_root=fixture_data).frame["id"])
            for t in ("hate", "offensive")
        ]
        assert len(ids[0] ^ ids[1]) < 10  # only conflicting duplicates differ per task


def test_corpus_is_parsed_once_per_root(fixture_data):
    corpora.clear_caches()
    for split in ("train", "val", "test"):
        load_corpus("tweeteval_offensive", split, data_root=fixture_data)
    info = corpora._parsed.cache_info()
    assert (info.misses, info.currsize) == (1, 1)


def test_val_is_an_alias_and_defaults_apply(fixture_data, monkeypatch):
    monkeypatch.setenv("CBV_DATA_DIR", str(fixture_data))
    c = load_corpus("tweeteval_hate", "val")
    assert (c.split, c.task) == ("validation", "hate")


def test_frames_are_copies(fixture_data):
    c = load_corpus("amazon_books", "test", data_root=fixture_data)
    c.frame.loc[0, "text"] = "changed"
    again = load_corpus("amazon_books", "test", data_root=fixture_data)
    assert again.frame.loc[0, "text"] != "changed"


def test_registry_matches_sources_toml():
    sources = read_sources()
    assert set(sources) == set(CORPORA)
    for name, spec in CORPORA.items():
        assert sources[name].folder == spec.folder
        assert set(spec.tasks) <= set(TASKS)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda: load_corpus("imdb", "train"), ["unknown corpus 'imdb'", "davidson", "stormfront"]),
        (
            lambda: load_corpus("davidson", "train", "sentiment"),
            ["unknown task", "hate, offensive"],
        ),
        (lambda: load_corpus("davidson", "dev"), ["unknown split 'dev'", "test, train, val"]),
    ],
)
def test_unknown_names_list_the_valid_ones(call, words):
    with pytest.raises(UserError) as e:
        call()
    for w in words:
        assert w in str(e.value)


# ---------------------------------------------------------------- parsers on small inputs

REVIEW = """<review>
<unique_id>
{uid}
</unique_id>
<title>
</title>
<review_text>
{text}
</review_text>
</review>
"""


def write_amazon(root: Path, negative: str, positive: str, subdir: str = "books") -> None:
    folder = root / "amazon_multidomain" / "sorted_data_acl" / subdir
    folder.mkdir(parents=True)
    (folder / "negative.review").write_text(negative, encoding="utf-8")
    (folder / "positive.review").write_text(positive, encoding="utf-8")


def test_review_parser_is_tolerant(tmp_path):
    negative = (
        '<?xml version="1.0"?>\n<reviews>\n'
        + REVIEW.format(uid="a:1", text="Tom & Jerry &quot;bad&quot; &#8220;x&#8221;")
        + REVIEW.format(uid="a:1", text="same id, other text")
        + REVIEW.format(uid="", text="no id here")
        + "<review><unique_id>e</unique_id><review_text></review_text></review>\n"
        + "</reviews>\n"
    )
    positive = REVIEW.format(uid="b:2", text="great\x1astuff")
    # Plain reviews of both classes, so that every split holds both (a split without one is
    # refused); the quirky reviews above are the ones checked.
    negative += "".join(REVIEW.format(uid=f"n{i}", text=f"dull {i}") for i in range(40))
    positive += "".join(REVIEW.format(uid=f"p{i}", text=f"fine {i}") for i in range(40))
    write_amazon(tmp_path, negative, positive)
    accept(tmp_path)
    c = load_corpus("amazon_books", "train", data_root=tmp_path)
    everything = pd.concat(
        [load_corpus("amazon_books", s, data_root=tmp_path).frame for s in SPLITS]
    ).set_index("id")
    assert {i for i in everything.index if not re.fullmatch(r"books:[np]\d+", i)} == {
        "books:a:1",
        "books:a:1#2",
        "books:negative.review:23",
        "books:b:2",
    }
    assert everything.loc["books:a:1", "text"] == 'Tom & Jerry "bad" \u201cx\u201d'
    assert everything.loc["books:b:2", "text"] == "great\ufffdstuff"
    assert everything.loc["books:b:2", "label"] == 1
    totals = corpus_summary("amazon_books", data_root=tmp_path).groupby("quirk")["count"].sum()
    assert totals["blank_dropped"] == 1 and totals["duplicate_id_suffixed"] == 1
    assert totals["html_unescaped"] == 1 and totals["control_char_replaced"] == 1
    assert isinstance(c, Corpus)


def test_clean_text_leaves_bare_ampersands():
    assert cleaning.clean_text("AT&T &amp; R&D &notanentity") == (
        "AT&T & R&D &notanentity",
        {"html_unescaped": True, "control_char_replaced": False},
    )
    assert cleaning.normalise_tweet("!!! RT @a_b: hi RT RT @c me@x.org")[0] == (
        "!!! @user: hi @user me@x.org"
    )


def test_hash_split_is_stable_and_proportioned():
    assert cleaning.hash_split("12834217") == cleaning.hash_split("12834217")
    splits = pd.Series([cleaning.hash_split(str(i)) for i in range(20000)])
    counts = splits.value_counts(normalize=True)
    assert counts["train"] == pytest.approx(0.8, abs=0.01)
    assert counts["validation"] == pytest.approx(0.1, abs=0.01)


def write_stormfront(root: Path, rows: list[tuple[str, str, str]], skip_file: str = "") -> None:
    folder = root / "stormfront"
    (folder / "all_files").mkdir(parents=True)
    lines = ["file_id,user_id,subforum_id,num_contexts,label"]
    for file_id, label, text in rows:
        lines.append(f"{file_id},1,1,0,{label}")
        if file_id != skip_file:
            (folder / "all_files" / f"{file_id}.txt").write_text(text, encoding="utf-8")
    (folder / "annotations_metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    accept(root)


def test_stormfront_synthetic_drops_and_groups(tmp_path):
    rows = [
        (f"{post}_{i}", label, f"sentence {post} {i}")
        for post in range(40)
        for i, label in enumerate(["hate", "noHate", "relation", "idk/skip"], 1)
    ]
    write_stormfront(tmp_path, rows)
    frames = {s: load_corpus("stormfront", s, data_root=tmp_path).frame for s in SPLITS}
    assert sum(len(f) for f in frames.values()) == 80
    posts = [set(f["id"].str.split("_").str[0]) for f in frames.values()]
    assert sum(len(p) for p in posts) == len(set().union(*posts)) == 40


# ---------------------------------------------------------------- missing and corrupt files


def copy_tree(source_root: Path, rel: str, dest_root: Path) -> Path:
    dest = dest_root / rel
    shutil.copytree(source_root / rel, dest)
    return dest


def expect_error(name, root, *words, split="train", task=None):
    accept(root)  # changed on purpose: the parser, not the digest check, must catch it
    with pytest.raises(UserError) as e:
        load_corpus(name, split, task, data_root=root)
    message = str(e.value)
    for w in words:
        assert str(w) in message, f"{w!r} not in: {message}"
    assert f"python -m helpers download --corpora {name} --data-dir {root}" in message
    return message


@pytest.mark.parametrize(
    "name,rel",
    [
        ("davidson", "davidson/data/labeled_data.csv"),
        ("tweeteval_hate", "tweeteval/datasets/hate/train_text.txt"),
        (
            "amazon_kitchen",
            "amazon_multidomain/sorted_data_acl/kitchen_&_housewares/negative.review",
        ),
        ("stormfront", "stormfront/annotations_metadata.csv"),
    ],
)
def test_missing_file_names_path_url_and_command(tmp_path, name, rel):
    url = read_sources()[name].address(
        rel.split("/", 1)[1] if read_sources()[name].format == "file" else None
    )
    expect_error(name, tmp_path, "missing file", tmp_path / rel, url)


def test_missing_stormfront_sentence_file(tmp_path):
    write_stormfront(tmp_path, [("1_1", "hate", "a"), ("1_2", "noHate", "b")], skip_file="1_2")
    expect_error("stormfront", tmp_path, tmp_path / "stormfront" / "all_files" / "1_2.txt")


def test_truncated_labels_file(fixture_data, tmp_path):
    folder = copy_tree(fixture_data, "tweeteval/datasets/hate", tmp_path)
    labels = folder / "train_labels.txt"
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:100]))
    expect_error("tweeteval_hate", tmp_path, labels, "line 101", "100 lines", "320")


def test_non_integer_label(fixture_data, tmp_path):
    folder = copy_tree(fixture_data, "tweeteval/datasets/offensive", tmp_path)
    labels = folder / "val_labels.txt"
    lines = labels.read_text().splitlines(keepends=True)
    lines[4] = "offensive\n"
    labels.write_text("".join(lines))
    expect_error(
        "tweeteval_offensive", tmp_path, labels, "line 5", "'offensive'", split="validation"
    )


def test_csv_missing_columns_and_short_rows(tmp_path):
    path = tmp_path / "davidson" / "data" / "labeled_data.csv"
    path.parent.mkdir(parents=True)
    path.write_text(",count,tweet\n0,3,hello\n")
    expect_error("davidson", tmp_path, path, "line 1", "class")
    corpora.clear_caches()
    path.write_text(
        ",count,hate_speech,offensive_language,neither,class,tweet\n0,3,0,0,3,2,fine\n1,3,0,3\n"
    )
    expect_error("davidson", tmp_path, path, "line 3", "4 fields")
    corpora.clear_caches()
    path.write_text(
        ",count,hate_speech,offensive_language,neither,class,tweet\n0,3,0,0,3,two,fine\n"
    )
    expect_error("davidson", tmp_path, path, "line 2", "'two'")


def test_truncated_review_file(fixture_data, tmp_path):
    folder = copy_tree(fixture_data, "amazon_multidomain/sorted_data_acl/dvd", tmp_path)
    path = folder / "positive.review"
    text = path.read_text(encoding="utf-8")
    cut = text.rindex("<review_text>")
    path.write_text(text[:cut], encoding="utf-8")
    line = text[: text.rindex("<review>")].count("\n") + 1
    expect_error("amazon_dvd", tmp_path, path, f"line {line}", "never closed", task="sentiment")


def test_stormfront_unknown_label(tmp_path):
    write_stormfront(tmp_path, [("1_1", "hate", "a"), ("1_2", "maybe", "b")])
    expect_error("stormfront", tmp_path, "annotations_metadata.csv", "line 3", "'maybe'")


# ---------------------------------------------------------------- local tables and the hub


def table_frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "uid": [f"u{i}" for i in range(n)],
            "body": [f"text number {i}" for i in range(n)],
            "score": [(i % 10) / 10 for i in range(n)],
            "y": [i % 2 for i in range(n)],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_load_table_formats_and_hash_split(tmp_path, suffix):
    df = table_frame()
    path = tmp_path / f"mine{suffix}"
    {
        ".csv": lambda: df.to_csv(path, index=False),
        ".jsonl": lambda: df.to_json(path, orient="records", lines=True),
        ".parquet": lambda: df.to_parquet(path),
    }[suffix]()
    parts = [load_table(path, "body", "y", id_col="uid", split=s) for s in SPLITS]
    assert sum(len(p.frame) for p in parts) == 60
    assert pd.concat([p.frame["id"] for p in parts]).is_unique
    again = load_table(path, "body", "y", id_col="uid", split="train")
    assert again.frame.equals(parts[0].frame)
    whole = load_table(path, "body", "y", label_names=("negative", "positive"))
    assert (whole.split, whole.task, len(whole.frame)) == ("all", "sentiment", 60)
    assert (whole.frame["source"] == "mine").all()


def test_load_table_threshold_and_split_column(tmp_path):
    df = table_frame().assign(split=["train"] * 40 + ["val"] * 10 + ["test"] * 10)
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    c = load_table(
        path, "body", "score", threshold=0.5, split="validation", label_names=("not_hate", "hate")
    )
    assert (len(c.frame), c.task) == (10, "hate")
    assert list(c.frame["label"]) == [int(s >= 0.5) for s in df["score"][40:50]]


def test_load_table_string_labels_and_cleaning(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [
        {"t": "a &amp; b", "l": "pos"},
        {"t": "a &amp; b", "l": "pos"},
        {"t": " ", "l": "neg"},
        {"t": "c", "l": "neg"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    c = load_table(path, "t", "l", label_names=("neg", "pos"))
    assert list(c.frame["text"]) == ["a & b", "c"] and list(c.frame["label"]) == [1, 0]
    assert c.summary["blank_dropped"] == 1 and c.summary["duplicate_dropped"] == 1


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(text_col="nope", label_col="y"), ["no column(s) nope", "body"]),
        (dict(text_col="body", label_col="score"), ["data row 2", "0.1", "threshold"]),
        (dict(text_col="body", label_col="y", label_names=("only",)), ["outside 0..0"]),
    ],
)
def test_load_table_errors(tmp_path, kwargs, words):
    path = tmp_path / "x.csv"
    table_frame().to_csv(path, index=False)
    with pytest.raises(UserError) as e:
        load_table(path, **kwargs)
    for w in words:
        assert w in str(e.value)


def test_load_table_missing_and_unknown_format(tmp_path):
    with pytest.raises(UserError, match="missing file"):
        load_table(tmp_path / "absent.csv", "t", "l")
    with pytest.raises(UserError, match="unknown table format"):
        load_table(tmp_path / "x.xlsx", "t", "l")


def test_load_hub_from_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    df = table_frame()
    df.iloc[:40].to_csv(folder / "train.csv", index=False)
    df.iloc[40:50].to_csv(folder / "dev.csv", index=False)
    df.iloc[50:].to_csv(folder / "test.csv", index=False)
    val = load_hub(str(folder), "val", text_col="body", label_col="y", data_root=tmp_path)
    assert (val.split, len(val.frame)) == ("validation", 10)
    assert list(val.frame["text"]) == list(df["body"][40:50])
    test = load_hub(str(folder), "test", text_col="body", label_col="y", data_root=tmp_path)
    assert len(test.frame) == 10 and test.label_names == ("0", "1")


def test_load_hub_class_labels_and_train_only(tmp_path):
    import datasets

    folder = tmp_path / "ds"
    folder.mkdir()
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["negative", "positive"]),
        }
    )
    ds = datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(200)], "label": [i % 2 for i in range(200)]},
        features=features,
    )
    ds.to_parquet(folder / "train.parquet")
    parts = [load_hub(str(folder), s, data_root=tmp_path) for s in SPLITS]
    assert sum(len(p.frame) for p in parts) == 200
    assert parts[0].task == "sentiment" and parts[0].label_names == ("negative", "positive")
    with pytest.raises(UserError, match="could not load hub dataset"):
        load_hub(str(tmp_path / "absent"), "train", data_root=tmp_path)
