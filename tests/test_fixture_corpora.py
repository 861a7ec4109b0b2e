"""The synthetic fixture corpora (tests/fixtures/data) load with every registered corpus and task.

They stand in for the real corpus mirror on a fresh clone, so each split must hold both classes
and enough rows for the smoke profile (label-stratified mixtures of 32 train / 16 validation /
32 test examples and 64 source-training examples). Regenerate them with
``python tests/fixtures/make_corpora.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    from helpers.data.corpora import CORPORA, load_corpus
except ImportError:
    from helpers.corpora import CORPORA, load_corpus

FIXTURE_ROOT = Path(__file__).resolve().parent / "fixtures" / "data"
SPLITS = ("train", "validation", "test")
MIN_ROWS = {"train": 160, "validation": 20, "test": 40}
PAIRS = [(name, task) for name, spec in CORPORA.items() for task in spec.tasks]


def test_fixture_tree_is_present():
    assert FIXTURE_ROOT.is_dir(), "run python tests/fixtures/make_corpora.py"


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name,task", PAIRS)
def test_fixture_split_has_both_classes_and_enough_rows(name, task, split):
    corpus = load_corpus(name, split, task, data_root=FIXTURE_ROOT)
    labels = corpus.frame["label"]
    assert len(corpus.label_names) == 2
    assert set(labels) == {0, 1}, f"{name} {task} {split}: both classes present"
    assert len(corpus.frame) >= MIN_ROWS[split], (
        f"{name} {task} {split}: {len(corpus.frame)} rows < {MIN_ROWS[split]}"
    )
