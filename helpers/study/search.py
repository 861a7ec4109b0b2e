"""The learning-rate search every trained method gets: a log ladder extended until interior.

Pure logic, no models: a search proposes points on a ladder ``start * step**k`` and is told
their validation scores. It tries ``k = 0, +1, -1`` first (independent: workers share them),
then, while its budget lasts, one point at a time: one rung past the edge when the best point so
far sits at an edge of what was tried, else half-way between the best point and its better
neighbour. The choice is the best score; ties go to the point nearest the start, then to the
larger rate. A choice left at an edge when the budget runs out is flagged (``at_edge``).

Every trained method gets the same budget of trials (``TuneConfig.trials``), so none is tuned
harder than another; a method with two settings (CBV's weights' and coefficients' rates) spends
all but two of them on the weights' rate and the last two on the coefficients' rate at the
chosen weights' rate (a three-point coefficient ladder around its start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from helpers.config.experiments import Profile
from helpers.config.methods import get_method

FIRST = (0.0, 1.0, -1.0)  # the opening rungs, in the order they are proposed
SECOND_STAGE = 2  # trials a second setting (CBV's coefficient rate) takes from the budget


@dataclass
class Ladder:
    """One setting's search: rungs tried (index -> score), the start, the ratio and the budget."""

    start: float
    step: float
    budget: int
    scores: dict[float, float] = field(default_factory=dict)

    def value(self, k: float) -> float:
        return float(self.start * self.step**k)

    def proposals(self) -> list[float]:
        """Rungs to try now, given what is scored (empty: wait for scores, or done)."""
        opening = [k for k in FIRST[: self.budget] if k not in self.scores]
        if opening:
            return opening
        if len(self.scores) >= self.budget:
            return []
        return [self._next()]

    def _next(self) -> float:
        tried = sorted(self.scores)
        best = self.best()
        if best == tried[-1]:
            return best + 1.0
        if best == tried[0]:
            return best - 1.0
        i = tried.index(best)
        left, right = tried[i - 1], tried[i + 1]
        side = right if self.scores[right] >= self.scores[left] else left
        return (best + side) / 2

    def best(self) -> float:
        """The chosen rung: best score, then nearest the start, then the larger rate."""
        return max(self.scores, key=lambda k: (self.scores[k], -abs(k), k))

    @property
    def done(self) -> bool:
        return len(self.scores) >= self.budget

    @property
    def at_edge(self) -> bool:
        """Whether the choice is the smallest or largest rung tried (not bracketed)."""
        return len(self.scores) > 1 and self.best() in (min(self.scores), max(self.scores))


def budgets(settings: list[str], trials: int) -> dict[str, int]:
    """How a method's trials are shared among the settings it tunes, in order."""
    if len(settings) < 2:
        return {s: trials for s in settings}
    second = min(SECOND_STAGE, max(0, trials - 1))
    return {settings[0]: trials - second, settings[1]: second + 1}  # + the first's choice


class MethodSearch:
    """One method's search over its tuned settings in order (torch-free: tuning drives it with
    real runs, the report replays it from stored scores)."""

    def __init__(self, profile: Profile, method: str):
        grid = profile.tune
        self.method, self.settings = method, get_method(method).tuned_settings()
        start = get_method(method).train_config(profile.train)
        shares = budgets(self.settings, grid.trials)
        self.ladders = [
            Ladder(float(getattr(start, s) or start.lr), grid.step, shares[s])
            for s in self.settings
        ]
        self.stage, self.chosen = 0, {}
        self.tried: dict[tuple[int, float], dict] = {}  # (stage, rung) -> the trial's overrides

    def proposals(self) -> list[dict]:
        """Overrides to try now (each a trial): empty while scores are awaited, or when done."""
        if self.done:
            return []
        ladder = self.ladders[self.stage]
        setting = self.settings[self.stage]
        return [{**self.chosen, setting: ladder.value(k)} for k in ladder.proposals()]

    def tell(self, overrides: dict, score: float) -> None:
        """The mean validation score of one trial; moves to the next setting when one is done."""
        ladder, setting = self.ladders[self.stage], self.settings[self.stage]
        k = round(math.log(overrides[setting] / ladder.start, ladder.step) * 4) / 4
        ladder.scores[k] = score  # rungs sit on quarter steps at the finest
        self.tried[(self.stage, k)] = dict(overrides)
        if ladder.done:
            best = ladder.best()
            self.chosen[setting] = ladder.value(best)
            self.stage += 1
            if not self.done:  # the next setting's start is the trial just chosen: scored
                nxt = self.ladders[self.stage]
                nxt.scores[0.0] = ladder.scores[best]
                start = {**self.tried[(self.stage - 1, best)], self.settings[self.stage]: nxt.start}
                self.tried[(self.stage, 0.0)] = start

    @property
    def done(self) -> bool:
        return self.stage >= len(self.ladders)

    def rows(self) -> list[dict]:
        """Every trial scored so far: setting, value, rung, score, chosen, at the edge."""
        out = []
        for stage, (setting, ladder) in enumerate(zip(self.settings, self.ladders)):
            for k, score in sorted(ladder.scores.items()):
                chosen = bool(ladder.scores) and ladder.done and k == ladder.best()
                out.append(
                    dict(
                        method=self.method,
                        setting=setting,
                        value=ladder.value(k),
                        rung=k,
                        score=score,
                        chosen=chosen,
                        at_edge=chosen and ladder.at_edge,
                        overrides=self.tried.get((stage, k), {}),
                    )
                )
        return out
