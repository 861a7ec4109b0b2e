"""An experiment's two corpora, built in or declared in experiments.yaml, checked before training.

``experiment_pools`` loads corpus A and corpus B for every split: a built-in name through
``load_corpus``, a declared local file or hub dataset (``helpers.config.corpora``) through
``helpers.data.tables``, and checks that they hold the sample sizes the experiment asks.
``check_present`` is the cheap check that the data root holds every file the chosen experiments
read, done before any notebook runs.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pandas as pd

from helpers.config.corpora import Declared, HubCorpus, TableCorpus
from helpers.config.experiments import Experiment
from helpers.data.corpora import CORPORA, load_corpus
from helpers.data.schema import SPLITS, TASKS, Corpus
from helpers.data.sources import read_sources
from helpers.data.table_files import read_table_file
from helpers.data.tables import frame_to_corpus, load_hub
from helpers.errors import UserError, unknown_name
from helpers.paths import experiments_file, inside


def _table(decl: TableCorpus, split: str, task: str) -> Corpus:
    columns = [c for c in (decl.text, decl.label, decl.id, decl.split) if c]
    frame = read_table_file(decl.file, decl.where, decl.sep, columns)
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
    if label_is_text and decl.threshold is None and decl.classes is None:
        values = sorted(map(str, frame[decl.label].dropna().unique()))
        if decl.label_names is None:
            raise UserError(
                f"{decl.where}: column {decl.label!r} of {decl.file} holds names "
                f"({', '.join(values[:5])}); list them in index order as label_names: [...], "
                "or map them to class names with classes: {...}"
            )
        unknown = [v for v in values if v not in decl.label_names]
        if unknown:
            raise UserError(
                f"{decl.where}: column {decl.label!r} of {decl.file} holds {unknown[0]!r}, "
                f"which is not in label_names {list(decl.label_names)}; fix the names or the file"
            )
    names = decl.label_names
    if decl.classes is not None and names is None and task in TASKS:
        names = TASKS[task]  # classes named as the task's take the task's order
    return frame_to_corpus(
        frame,
        decl.corpus_name,
        split,
        decl.text,
        decl.label,
        names,
        decl.threshold,
        decl.id,
        where=f"{decl.where} ({decl.file})",
        classes=decl.classes,
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
    if isinstance(decl, TableCorpus):
        corpus = _table(decl, split, task)
    else:
        corpus = _hub(decl, split, data_root)
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
    """Corpus A and corpus B per split, in one label space and holding the sample sizes the
    experiment asks (``Experiment.sizes``), or one clear error."""
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
    check_sizes(e, out, dict(e.sizes))
    return out


SPLIT_SIZES = {"n_train": "train", "n_val": "validation", "n_test": "test"}  # mixture sizes


def check_sizes(experiment: Experiment, pools, sizes: dict, what: str = "") -> None:
    """Raise one UserError naming every sample size the pools cannot give, and the fix
    (``what``: the sizes are a design axis's, set in its profile, not the experiment's).

    ``sizes``: n_source_train, n_train, n_val, n_test (None: all the pools hold). Mixtures span
    delta 0 (all A) to 1 (all B), so a mixture size must fit both pools of its split.
    """
    a = pools["train"][0]
    room = {"n_source_train": len(a.frame)}
    held = {"n_source_train": f"{a.name}'s training pool holds {len(a.frame)}"}
    for k, split in SPLIT_SIZES.items():
        room[k] = min(len(c.frame) for c in pools[split])
        each = " and ".join(f"{len(c.frame)} ({c.name})" for c in pools[split])
        held[k] = f"the {split} pools hold {each}"
    over = [k for k in room if sizes.get(k) is not None and sizes[k] > room[k]]
    if not over:
        return
    asked = "; ".join(f"{k} {sizes[k]}, but {held[k]}" for k in over)
    fix = ", ".join(f"{k}: {room[k]}" for k in over)
    fix = (
        f"lower the values of {what} to at most {room['n_train']}"
        if what
        else f"set {fix} (or null: all they hold) in its entry experiments.{experiment.name} "
        f"of {experiments_file()}"
    )
    raise UserError(
        f"experiment {experiment.name!r} asks for more examples than its corpora hold"
        f"{f' ({what})' if what else ''}: {asked}; {fix}"
    )


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
            base = inside(data_root, source.folder)
            missing = [p for p in source.files if not (base / p).is_file()]
            missing += [p for p in source.folders if not (base / p).is_dir()]
            if missing:
                raise UserError(
                    f"experiment {e.name!r} needs corpus {name!r}, but {base / missing[0]} is "
                    f"missing; fetch it with: python -m helpers download --corpora {name} "
                    f"--data-dir {shlex.quote(str(data_root))}"
                )
