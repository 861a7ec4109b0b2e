"""The learning-rate search: a log ladder extended past an edge until interior, on known scores."""

import math

import pytest

from helpers.config.experiments import load_profile
from helpers.study.search import Ladder, MethodSearch, budgets


def drive(ladder: Ladder, score) -> list[float]:
    """Run a ladder to its budget against ``score(k)``; the rungs in the order tried."""
    order = []
    while not ladder.done:
        for k in ladder.proposals():
            order.append(k)
            ladder.scores[k] = score(k)
    return order


@pytest.mark.parametrize(
    ("peak", "budget", "chosen", "edge"),
    [
        (2.0, 5, 2.0, False),  # past the opening's upper edge, twice, then bracketed
        (-2.0, 5, -2.0, False),  # the same downwards
        (0.0, 5, 0.0, False),  # bracketed at once: the last trials refine around it
        (9.0, 4, 2.0, True),  # still climbing when the budget ends: flagged
    ],
)
def test_the_ladder_extends_past_an_edge_until_the_choice_is_interior(peak, budget, chosen, edge):
    ladder = Ladder(start=1e-4, step=10**0.5, budget=budget)
    order = drive(ladder, lambda k: -((k - peak) ** 2))
    assert order[:3] == [0.0, 1.0, -1.0] and len(order) == budget
    assert ladder.best() == chosen
    assert ladder.at_edge is edge


def test_an_interior_choice_is_refined_towards_its_better_neighbour():
    ladder = Ladder(start=1.0, step=10.0, budget=5)
    order = drive(ladder, lambda k: -abs(k - 0.3))
    assert order == [0.0, 1.0, -1.0, 0.5, 0.25]
    assert ladder.best() == 0.25 and ladder.value(0.25) == pytest.approx(10**0.25)


def test_ties_go_to_the_start_then_to_the_larger_rate():
    flat = Ladder(start=1.0, step=2.0, budget=3)
    drive(flat, lambda k: 0.5)
    assert flat.best() == 0.0
    two = Ladder(start=1.0, step=2.0, budget=3)
    drive(two, lambda k: 0.0 if k == 0 else 1.0)  # +1 and -1 tie: the larger rate
    assert two.best() == 1.0


def test_every_method_gets_the_same_budget_of_trials():
    assert budgets(["lr"], 5) == {"lr": 5}
    assert budgets(["lr", "alpha_lr"], 5) == {"lr": 3, "alpha_lr": 3}  # alpha's 0: lr's choice
    assert budgets(["lr", "alpha_lr"], 1) == {"lr": 1, "alpha_lr": 1}
    profile = load_profile("quick")
    for method in ("head", "all", "cbv_weight", "cbv_study", "cbv_two_stage"):
        search, trials = MethodSearch(profile, method), set()
        while not search.done:
            for overrides in search.proposals():
                trials.add(tuple(sorted(overrides.items())))
                # any deterministic score: the count must not depend on it
                search.tell(overrides, -abs(math.log10(overrides.get("lr", 1e-4)) + 3.3))
        assert len(trials) == profile.tune.trials, method


def test_a_second_setting_is_searched_at_the_first_settings_choice():
    profile = load_profile("quick")
    search = MethodSearch(profile, "cbv_weight")
    start = search.ladders[0].start
    for overrides in search.proposals():
        search.tell(overrides, 1.0 if overrides["lr"] > start else 0.0)  # the larger lr wins
    assert search.stage == 1
    second = search.proposals()
    assert {o["lr"] for o in second} == {search.chosen["lr"]} and len(second) == 2
    step = profile.tune.step
    assert sorted(o["alpha_lr"] for o in second) == pytest.approx([0.05 / step, 0.05 * step])
    for overrides in second:
        search.tell(overrides, 0.0)
    assert search.done and search.chosen["alpha_lr"] == pytest.approx(0.05)  # its start wins ties
    rows = search.rows()
    assert sum(r["chosen"] for r in rows) == 2 and {r["setting"] for r in rows} == {
        "lr",
        "alpha_lr",
    }
