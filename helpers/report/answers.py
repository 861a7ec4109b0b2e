"""The study's answers: the poster's claims over every stored run of a profile, from one call.

Notebook 04, reports/index.html and the README's results section print the claims table from
``answers`` (or, where the tables are already read, ``of``): every stored experiment of the
profile and its design axes, the same bootstrap seed, so the three show the same numbers and
verdicts whichever experiments the last command rendered. The statistics are
``helpers.report.claims``'s; this module decides what goes in and how the table is explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from helpers.report.analysis import axis_tables
from helpers.report.claims import beside_markdown, claims, claims_markdown
from helpers.study.store import Store

METRIC = "macro_f1"  # the poster's metric
TABLES = ("metrics", "predictions", "history", "coefficients")

VERDICTS = (
    "Each claim is tested as the poster states it, with seeds as the units: every seed has its "
    "own source model, data samples and training stream, and each effect is the mean over seeds "
    "of a paired difference on the test pools (a distance or a spread where the claim is about "
    "one). Experiments that adapt the same source models (the three Amazon ones; the two "
    "TweetEval-hate ones) give one unit per seed between them. **Supported** / "
    "**contradicted**: the claim's own test, or the test of its opposite, clears its "
    "Holm-corrected level; **equivalent**: the difference lies within +-margin (two one-sided "
    "tests, corrected alike); **inconclusive**: neither; **not testable here**: the store lacks "
    "the runs the claim needs (or holds one seed). The tests of all rows together form one Holm "
    "family."
)
# One line per column of the displayed table (a test holds every column to having one).
LEGEND = {
    "poster claim": "the claim as the poster makes it (I: shift degradation, II: surgical "
    "fine-tuning, III: CBV)",
    "compared": "side a minus side b (a mean over methods where several), or the quantity the "
    "claim is about",
    "units": "independent units the effect averages over: seeds, counted once per group of "
    "experiments sharing their source models (weighted by the experiments they hold)",
    "effect": "the point estimate, in metric units (macro-F1; alpha units for the coefficient "
    "claims; for the Amazon claim tau, the between-domain SD; for 'works best' the binding pair)",
    "95% interval": "t interval counting seed-to-seed variance and test-example sampling "
    "(a bootstrap over test examples with the seeds held; on exact-test rows still this t "
    "interval, beside the sign-flip p); Q-profile for tau",
    "Holm-level interval": "the interval at the level that agrees with the Holm p (alpha x p / "
    "Holm p): two-sided for 'beats', clearing 0 exactly when the Holm p is below 0.05; a "
    "one-sided bound for the one-sided forms, clearing their null (0, or the margin for 'fails "
    "to beat' and the alpha distance) the same way; none on exact-test rows",
    "Holm p": "p-value of the claim's own test (above 0, below the margin, tau below the margin, "
    "distance above the margin; every pair above 0), Holm-corrected across the table",
    "Holm p, opposite": "p-value of the test the other verdict rests on (equivalence within "
    "the margin; a beats b by more than the margin; tau above the margin; distance within the "
    "margin; some pair reversed), in the same Holm family",
    "margin": "the smallest effect of interest: 0.01 macro-F1 (one point: below it no one would "
    "switch methods, and about one seed's test-sampling SE here); 0.05 in alpha units",
    "detectable": "the smallest true effect found with 80% power at the strictest Holm step "
    "(0.05 over the number of tests), for the margin forms its distance from the margin; inf "
    "where the exact test cannot reach it",
    "test": "t with Welch-Satterthwaite degrees of freedom; the exact sign-flip test when five "
    "units or fewer; Q-profile chi-square for the spread",
    "verdict": "supported, contradicted, equivalent or inconclusive (above), or why it cannot "
    "be tested",
}


def legend() -> str:
    """The columns' legend as a Markdown list."""
    return "\n".join(f"- *{column}*: {text}." for column, text in LEGEND.items())


@dataclass(frozen=True)
class Stored:
    """Every stored table of a profile, over all its experiments, and its design axes."""

    profile: str
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    history: pd.DataFrame
    coefficients: pd.DataFrame
    axes: dict


def collect(results_dir, profile: str, keys=None) -> Stored:
    """Read a profile's stored tables (every experiment; the store under ``results_dir``),
    only the runs of a plan where ``keys`` (``helpers.study.inventory.planned_keys``) is given."""
    store = Store(results_dir)
    tables = {t: store.collect(t, None, profile, keys) for t in TABLES}
    return Stored(profile, axes=axis_tables(store, None, profile, keys), **tables)


@dataclass(frozen=True)
class Answers:
    """The claims table of a profile's stored runs: numbers, display strings, and what they
    cover."""

    profile: str
    metric: str
    runs: int
    experiments: tuple[str, ...]
    seeds: tuple[int, ...]
    numbers: pd.DataFrame  # helpers.report.claims.claims
    text: pd.DataFrame  # helpers.report.claims.claims_markdown of the numbers

    def scope(self) -> str:
        """One sentence: which runs the table is computed from."""
        names = ", ".join(self.experiments)
        return (
            f"Profile `{self.profile}`: {self.runs} stored runs over {len(self.experiments)} "
            f"experiment{'s' if len(self.experiments) != 1 else ''} ({names}); seeds "
            f"{list(self.seeds)}; test {self.metric}."
        )

    def markdown(self) -> str:
        """The table as Markdown (the README and notebook 04)."""
        return self.text.to_markdown(index=False, disable_numparse=True)

    def beside(self) -> str:
        """Per task family, without one-class cells, in AUROC (Markdown)."""
        return beside_markdown(self.numbers).to_markdown(index=False, disable_numparse=True)

    def section(self) -> str:
        """What the runs are, the verdicts' meaning, the table and its legend (notebook 04)."""
        return (
            f"{self.scope()}\n\n{VERDICTS}\n\n{self.markdown()}\n\n{legend()}\n\n"
            f"**Beside the headline**: each pooled claim per task family, without the cells "
            f"where most runs answer one class, and in AUROC (effect [95% interval] (units); "
            f"uncorrected).\n\n{self.beside()}"
        )

    def html(self) -> str:
        """The table as an HTML table (the index)."""
        return self.text.to_html(index=False, border=0)


def of(stored: Stored, metric: str = METRIC) -> Answers:
    """The claims over the stored tables: the one place the claims table is computed."""
    numbers = claims(stored.metrics, stored.predictions, stored.coefficients, stored.axes, metric)
    runs = stored.metrics.drop_duplicates("run_key")
    return Answers(
        profile=stored.profile,
        metric=metric,
        runs=len(runs),
        experiments=tuple(sorted(runs["experiment"].unique())),
        seeds=tuple(sorted(int(s) for s in runs["seed"].unique())),
        numbers=numbers,
        text=claims_markdown(numbers),
    )


def answers(results_dir, profile: str, metric: str = METRIC, keys=None) -> Answers:
    """The claims table over the stored runs of ``profile`` under ``results_dir`` (the plan's
    only, where ``keys`` is given)."""
    return of(collect(results_dir, profile, keys), metric)
