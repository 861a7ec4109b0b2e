"""An experiment's two corpora, built in or declared in experiments.yaml, checked before training.

``experiment_pools`` loads corpus A and corpus B for every split: a built-in name through
``load_corpus``, a declared local file or hub dataset (``helpers.spec.corpora``) through
``helpers.data.tables``. ``check_present`` is the cheap check that the data root holds every file
the chosen experiments read, done before any notebook runs.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pandas as pd

from helpers.data.corpora import CORPORA, load_corpus
from helpers.data.schema import SPLITS, TASKS, Corpus
from helpers.data.sources import read_sources
from helpers.data.tables import _read_table, frame_to_corpus, load_hub
from helpers.errors import UserError, unknown_name
from helpers.spec.corpora import Declared, HubCorpus, TableCorpus
from helpers.spec.experiments import Experiment


def _table(decl: TableCorpus, split: str) -> Corpus:
    frame = _read_table(decl.file)
    if decl.split:
        if decl.split not in frame.columns:
            raise UserError(
                f"{decl.where}.split: {decl.file} has no column {decl.split!r}; columns are "
                f"{', '.join(map(str, frame.columns))}"
            )
        frame = frame.drop(columns="split", errors="ignore").rename(columns={decl.split: "split"})
    label_is_text = decl.label in frame.columns and not pd.api.types.is_numeric_dtype(
        frame[decl.label]
    )
    if label_is_text and decl.threshold is None:
        values = sorted(map(str, frame[decl.label].dropna().unique()))
        if decl.label_names is None:
            raise UserError(
                f"{decl.where}: column {decl.label!r} of {decl.file} holds names "
                f"({', '.join(values[:5])}); list them in index order as label_names: [...]"
            )
        unknown = [v for v in values if v not in decl.label_names]
        if unknown:
            raise UserError(
                f"{decl.where}: column {decl.label!r} of {decl.file} holds {unknown[0]!r}, "
                f"which is not in label_names {list(decl.label_names)}; fix the names or the file"
            )
    return frame_to_corpus(
        frame,
        decl.corpus_name,
        split,
        decl.text,
        decl.label,
        decl.label_names,
        decl.threshold,
        decl.id,
        where=f"{decl.where} ({decl.file})",
    )


def _hub(decl: HubCorpus, split: str, data_root) -> Corpus:
    corpus = load_hub(decl.hub, split, decl.text, decl.label, decl.config, data_root)
    frame = corpus.frame.assign(source=decl.corpus_name)
    corpus = replace(corpus, name=decl.corpus_name, frame=frame)
    if decl.label_names is None:
        return corpus
    if len(decl.label_names) != len(corpus.label_names):
        raise UserError(
            f"{decl.where}.label_names: {len(decl.label_names)} names for the dataset's "
            f"{len(corpus.label_names)} classes {corpus.label_names}; give one name per class"
        )
    return replace(corpus, label_names=decl.label_names)


def load_pool(name: str, decl: Declared | None, split: str, task: str, data_root) -> Corpus:
    """One split of one of an experiment's corpora: built in (``decl`` None) or declared."""
    if decl is None:
        return load_corpus(name, split, task, data_root)
    corpus = _table(decl, split) if isinstance(decl, TableCorpus) else _hub(decl, split, data_root)
    if task in TASKS and corpus.label_names != TASKS[task]:
        raise UserError(
            f"{decl.where}: labels {corpus.label_names} are not the {task!r} task's "
            f"{TASKS[task]}; set label_names: [{', '.join(TASKS[task])}] (in index order)"
        )
    counts = corpus.frame["label"].value_counts()
    absent = [n for i, n in enumerate(corpus.label_names) if counts.get(i, 0) == 0]
    if absent:
        raise UserError(
            f"{decl.where}: the {split} split of {corpus.name} has no {', '.join(absent)} "
            f"examples ({len(corpus.frame)} rows); every split needs every class: add rows "
            "or fix the label column, label_names or threshold"
        )
    return corpus


def experiment_pools(experiment: Experiment, data_root) -> dict[str, tuple[Corpus, Corpus]]:
    """Corpus A and corpus B per split, in one label space, or one clear error."""
    e, out = experiment, {}
    for split in SPLITS:
        a = load_pool(e.source, e.source_data, split, e.task, data_root)
        b = load_pool(e.target, e.target_data, split, e.task, data_root)
        if a.label_names != b.label_names:
            raise UserError(
                f"experiment {e.name!r}: {a.name} has labels {a.label_names} but {b.name} has "
                f"{b.label_names}; give the declared corpus label_names: "
                f"[{', '.join(a.label_names if e.target_data else b.label_names)}]"
            )
        out[split] = (a, b)
    return out


def check_present(experiments: list[Experiment], data_root: Path) -> None:
    """Raise unless the data root holds every built-in corpus file and every declared file."""
    sources = read_sources()
    for e in experiments:
        for name, decl in ((e.source, e.source_data), (e.target, e.target_data)):
            if isinstance(decl, TableCorpus) and not decl.file.is_file():
                raise UserError(f"{decl.where}.path: missing file {decl.file}; check the path")
            if decl is not None:
                continue
            if name not in CORPORA:
                raise unknown_name(f"corpus (experiment {e.name!r})", name, CORPORA)
            source = sources[name]
            base = Path(data_root) / source.folder
            missing = [p for p in source.files if not (base / p).is_file()]
            missing += [p for p in source.folders if not (base / p).is_dir()]
            if missing:
                raise UserError(
                    f"experiment {e.name!r} needs corpus {name!r}, but {base / missing[0]} is "
                    f"missing; fetch it with: python -m helpers download --corpora {name} "
                    f"--data-dir {shlex.quote(str(data_root))}"
                )
