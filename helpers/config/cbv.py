"""CBV's settings as data: how the two copies are mixed and how coefficients stay in [0, 1].

Torch-free, so the method registry (``helpers.config.methods``) can hold CBV variants as plain
entries; the model that carries them out is ``helpers.models.cbv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from helpers.errors import UserError, unknown_name

SPACES = ("weight", "output")
CONSTRAINTS = ("sigmoid", "clamp", "sum")


@dataclass(frozen=True)
class CBVConfig:
    """How CBV mixes the two copies and keeps its coefficients in [0, 1].

    space: ``weight`` (mix parameters, one pass) or ``output`` (mix group outputs, two passes).
    constraint: ``sigmoid`` (alpha = sigmoid(s)); ``clamp`` (alpha = s, clamped to [0, 1] by
        ``project_()``); ``sum`` (the study's: alpha = sigmoid(s), and ``project_()`` rescales
        the alphas to alpha / sum(alpha), i.e. sets s = logit(alpha / sum(alpha)). The initial
        alphas are not rescaled: the sum is 1 from the first ``project_()`` on, as in the study).
    init: the initial alpha of every coefficient (0.5 is the study's sigmoid(0)).
    penalty, budget: added to the loss when labels are given: ``penalty * sum(alpha)`` (a
        sparsity pressure towards the source), or with a budget
        ``penalty * relu(sum(alpha) - budget)`` (free up to ``budget`` coefficients' worth).
    include_embeddings, include_pooler: give the embeddings and the pooler (BERT only) a
        coefficient. On by default, so that CBV covers what full fine-tuning trains and every
        alpha at 1 is exactly the fine-tuned model. Off, the group is frozen at the source: the
        study's coverage (it left the embeddings frozen because its optimisation otherwise
        focused on them alone, and kept the source pooler).
    per_tensor: one coefficient per parameter tensor instead of per group (weight space only).
    """

    space: str = "weight"  # the poster's method; "output" is the study's code
    constraint: str = "sigmoid"  # the study used "sum"
    init: float = 0.5  # sigmoid(0), the study's start
    penalty: float = 0.0  # no pressure on the alphas by default
    budget: float | None = None  # None: plain sum penalty
    include_embeddings: bool = True  # cover what full fine-tuning trains (the study: False)
    include_pooler: bool = True  # likewise (the study kept the source pooler)
    per_tensor: bool = False  # per group, as in the study

    def __post_init__(self):
        if self.space not in SPACES:
            raise unknown_name("CBV space", self.space, SPACES)
        if self.constraint not in CONSTRAINTS:
            raise unknown_name("CBV constraint", self.constraint, CONSTRAINTS)
        if not is_real(self.init) or not 0.0 <= self.init <= 1.0:
            raise UserError(
                f"CBV init={self.init!r} must be a number in [0, 1] (the starting "
                "alpha; 0.5 is the study's)"
            )
        if self.constraint != "clamp" and self.init in (0.0, 1.0):
            raise UserError(
                f"CBV init={self.init} with constraint={self.constraint!r}: "
                "sigmoid(s) reaches 0 or 1 only at s = -inf/+inf, where it can "
                "never move; use an init strictly inside (0, 1), constraint='clamp', "
                "or set_alphas() to evaluate at fixed coefficients"
            )
        if not is_real(self.penalty) or not 0.0 <= self.penalty < math.inf:
            raise UserError(
                f"CBV penalty={self.penalty!r} must be a finite number >= 0 (0 turns it off)"
            )
        if self.budget is not None:
            if not is_real(self.budget) or not 0.0 < self.budget < math.inf:
                raise UserError(
                    f"CBV budget={self.budget!r} must be a finite number > 0, "
                    "or None for a plain sum penalty"
                )
            if self.penalty == 0:
                raise UserError(
                    "CBV budget has no effect with penalty=0; set penalty > 0 or leave budget=None"
                )
        if self.per_tensor and self.space == "output":
            raise UserError(
                "CBV per_tensor=True needs space='weight': output mixing blends "
                "whole group outputs, so one coefficient per group is all it has"
            )
        for flag in ("include_embeddings", "include_pooler", "per_tensor"):
            if not isinstance(getattr(self, flag), bool):
                raise UserError(f"CBV {flag} must be True or False, got {getattr(self, flag)!r}")

    def coefficient_groups(self, group_names: list[str]) -> list[str]:
        """The groups of one model (its layer-group names, in order) that get a coefficient."""
        skip = {"embeddings"} if not self.include_embeddings else set()
        if not self.include_pooler:
            skip.add("pooler")
        return [g for g in group_names if g not in skip]


def is_real(x) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
