"""The poster's claims as data: what each compares, its unit, its margin and its test.

Torch-free. One entry per claim, in the order the report prints them; ``helpers.report.claims``
evaluates them on the stored runs, and notebook 04, ``reports/index.html`` and the README all
print that one table. The forms and how each is tested (``helpers.report.inference``):

- ``better``: the poster says side a beats side b. Supported / contradicted: the Holm-level
  interval excludes 0 above / below; equivalent: the difference lies within +-margin (TOST at
  the same level); inconclusive otherwise.
- ``no_better``: the poster says side a fails to beat side b. Supported: a - b is below +margin
  (one-sided, at the Holm level: a may be worse, or equal within the margin); contradicted: a
  beats b (the interval lies above 0).
- ``consistent``: the effect agrees across domains. Supported: the between-domain SD tau lies
  below the margin (Q-profile); contradicted: tau lies above it.
- ``farther``: a distance exceeds the margin (the alphas are far from their own optimum).
  Supported: its interval lies above the margin; contradicted: below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.report.comparisons import BEST

# The smallest effect of interest in macro-F1 (and AUROC): one point. Below it a practitioner
# would not switch methods, and it is the size of one seed's test-sampling SE on these pools.
MARGIN = 0.01
ALPHA_MARGIN = 0.05  # in alpha units: a coefficient 0.05 away from where it wants to be
FORMS = ("better", "best", "no_better", "consistent", "farther")
FORMS_TEXT = {  # how each form is decided, in words (docs/study.md prints it)
    "better": "a beats b: difference above 0; equivalent within the margin",
    "best": "each of a beats each of b (an intersection-union test: the largest of the "
    "one-sided p-values, the binding pair shown); contradicted when one of b beats one of a",
    "no_better": "a does not beat b: difference below +margin (a may be worse)",
    "consistent": "the domains agree: between-domain SD tau below the margin",
    "farther": "a distance exceeds the margin",
}
# The claims are tested at the full shift, delta = 1: the target distribution itself, where the
# reference profile runs every seed (delta = 0.5 is shown in the notebooks, on fewer seeds).
FULL_SHIFT = (1.0,)
CBV = "cbv_weight"  # the poster's method: weight space, sigmoid alphas (helpers/config/methods.py)
USUAL_RATE = 1e-4  # the weights' usual learning rate: the study's one rate


@dataclass(frozen=True)
class Claim:
    """One claim of the poster and how it is tested on the stored runs."""

    key: str
    text: str  # in the poster's words
    form: str  # one of FORMS
    a: tuple | str = ()  # side a: methods averaged (or BEST)
    b: tuple | str = ()  # side b
    scope: str = "pooled"  # "pooled" (every experiment), "experiment", "amazon", "axis"
    deltas: tuple[float, ...] | None = FULL_SHIFT  # None: every delta the runs hold
    experiment: str | None = None  # scope "experiment": which one
    margin: float = MARGIN
    note: str = ""  # how the comparison reads the claim

    def __post_init__(self):
        if self.form not in FORMS:
            raise ValueError(f"claim {self.key}: form {self.form!r} is not one of {FORMS}")


def degradation_claims(experiments) -> list[Claim]:
    """Part I, one per experiment: the source model against a model adapted to B, on B."""
    return [
        Claim(
            f"I:{e}",
            f"I. A model trained on A degrades under the shift to B ({e})",
            "better",
            a="all",
            b="source",
            scope="experiment",
            experiment=e,
            deltas=(1.0,),
            note="on B's test pool (delta = 1): all fine-tuned on B minus the source model; "
            "both on the same examples, so B's difficulty cancels",
        )
        for e in experiments
    ]


SURGICAL_REFS = (BEST, "all", "first2", "middle2", "last2", "head")

CLAIMS: list[Claim] = [
    Claim(
        "II:fine-tune",
        "II. Fine-tuning on the mixture beats the un-updated source model",
        "better",
        a=("all",),
        b=("none",),
    ),
    Claim(
        "II:all-first",
        "II. Fine-tuning all and the first layers works best among surgical choices",
        "best",
        a=("all", "first2"),
        b=("middle2", "last2", "head"),
        note="every pair: all and first2 each against middle2, last2 and head",
    ),
    *(
        Claim(
            f"III:vs-{ref}",
            "III. CBV outperforms surgical fine-tuning on average: vs "
            + ("the best surgical method (chosen on validation)" if ref == BEST else ref),
            "better",
            a=(CBV,),
            b=ref if ref == BEST else (ref,),
        )
        for ref in SURGICAL_REFS
    ),
    Claim(
        "III:consistent",
        "III. CBV gives consistent results across the Amazon domains",
        "consistent",
        a=(CBV,),
        b=BEST,
        scope="amazon",
        note="tau: the between-domain SD of CBV - best surgical, each domain's sampling "
        "error counted",
    ),
    Claim(
        "III:largest",
        "III. CBV fails to beat all-layer fine-tuning on the largest training set",
        "no_better",
        a=(CBV,),
        b=("all",),
        scope="axis",
        note="the training-size axis, each size tuned on its own; at the largest size",
    ),
    Claim(
        "III:slow",
        "III. Optimising the alphas is slow at usual learning rates",
        "farther",
        a=("cbv_study",),
        scope="axis",
        margin=ALPHA_MARGIN,
        note=f"mean over groups of |alpha after the budget - alpha fitted to convergence with "
        f"the weights held|, the study's recipe at the usual rate {USUAL_RATE:g}",
    ),
    Claim(
        "III:embeddings",
        "III. Given a coefficient, the embeddings draw the optimisation to themselves",
        "better",
        a=(CBV,),
        margin=ALPHA_MARGIN,
        note="how far the embeddings' alpha moves from its start minus the mean over the "
        "encoder layers' (alpha units)",
    ),
]
