"""Runs that answer (almost) one class: flagged, and read against the truth of their mixture.

Reads only stored tidy tables (metrics and predictions); never trains.
"""

from __future__ import annotations

import pandas as pd

from helpers.evaluation.metrics import confusion, example_weights, mixture_confusion

ONE_CLASS = 0.95  # a run answering one class for more of its test mixture than this is flagged


def constant_runs(
    metrics: pd.DataFrame, predictions: pd.DataFrame, share: float = ONE_CLASS
) -> pd.DataFrame:
    """Runs that answer one class for more than ``share`` of their test mixture, and why.

    Beside each flagged run: the class it answers and how much of its test mixture truly is that
    class, its F1 on the class it answers least well, its macro-F1 and that of the constant
    classifier (always the true majority class) on the same mixture. ``reading``: "constant"
    when a class's F1 is 0 (not one correct answer of it); "rare answers" when the answered
    class is the true majority and every class is sometimes answered right: the run answers
    the rare class less often than it occurs, which on a mixture that is itself about 95% one
    class (Davidson is about 95% not-hate) a sound classifier can do too; "over-answers" when
    the answered class is not the majority. Shares come from the run's expected mixture
    confusion matrix (``mixture_confusion``), as its metrics do.
    """
    test = metrics[metrics["split"] == "test"]
    top = test[(test["metric"] == "top_class_share") & (test["value"] > share)]
    columns = [
        "experiment", "method", "delta", "seed", "answered_class", "answered_share",
        "true_share", "weakest_class", "weakest_f1", "macro_f1", "constant_macro_f1", "reading",
    ]  # fmt: skip
    if top.empty:
        return pd.DataFrame(columns=columns)
    values_of = test.groupby("run_key")
    answers_of = predictions[predictions["run_key"].isin(top["run_key"])].groupby("run_key")
    rows = []
    for run in top.itertuples(index=False):
        values = values_of.get_group(run.run_key).set_index("metric")["value"]
        f1 = values[values.index.str.startswith("f1_")]  # one per class, in label order
        names = [n.removeprefix("f1_") for n in f1.index]
        answers = answers_of.get_group(run.run_key)
        per_corpus = {
            c: confusion(
                g["label"].to_numpy(), g["pred"].to_numpy(), len(names), example_weights(g)
            )
            for c, g in answers.groupby("source")
        }
        mixed = mixture_confusion(per_corpus, {run.source: 1 - run.delta, run.target: run.delta})
        truth, answered = mixed.sum(1), mixed.sum(0)  # class shares: true, answered
        k, q = int(answered.argmax()), float(truth.max())
        if f1.min() == 0:
            reading = "constant"
        elif truth[k] == q:
            reading = "rare answers"
        else:
            reading = "over-answers"
        rows.append(
            {
                "experiment": run.experiment,
                "method": run.method,
                "delta": run.delta,
                "seed": run.seed,
                "answered_class": names[k],
                "answered_share": run.value,
                "true_share": float(truth[k]),
                "weakest_class": names[int(f1.to_numpy().argmin())],
                "weakest_f1": float(f1.min()),
                "macro_f1": float(values["macro_f1"]),
                # always the majority class: F1 2q/(1+q) on it, 0 on each of the other classes
                "constant_macro_f1": 2 * q / (1 + q) / len(names),
                "reading": reading,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def constant_takeaway(table: pd.DataFrame, share: float = ONE_CLASS) -> str:
    """One paragraph on the flagged runs: how many are constant, and what the others are."""
    if table.empty:
        return f"**No run** answers one class for more than {share:.0%} of its test mixture."
    text = (
        f"**{_runs(len(table))}** answer one class for more than {share:.0%} of the test mixture."
    )
    constant = table[table["reading"] == "constant"]
    if len(constant):
        names = ", ".join(sorted(set("`" + constant["method"] + "` on " + constant["experiment"])))
        text += f" Constant in effect (F1 0 on a class): {_runs(len(constant))}, {names}."
    rare = table[table["reading"] == "rare answers"]
    if len(rare):
        above = int((rare["macro_f1"] > rare["constant_macro_f1"]).sum())
        text += (
            f" Answering the rare class less often than it occurs: {_runs(len(rare))}, on test "
            f"mixtures that are {rare['true_share'].min():.1%}-{rare['true_share'].max():.1%} "
            f"the answered class; F1 on the rare class {rare['weakest_f1'].min():.2f}-"
            f"{rare['weakest_f1'].max():.2f}; {above} of {len(rare)} above the constant "
            "classifier's macro-F1 (point estimates)."
        )
    over = table[table["reading"] == "over-answers"]
    if len(over):
        text += f" Answering a minority class for nearly everything: {_runs(len(over))}."
    return text
