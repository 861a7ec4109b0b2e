"""The README's results section links only figures that are committed (the reference profile's)."""

import pytest

from helpers.errors import UserError
from tools.readme import figure_links, readme_results


def test_the_reference_profile_links_its_committed_figures():
    links = figure_links("reference", ["books_to_dvd", "books_to_electronics"], analysis=False)
    assert links == [
        f"figures/{e}/01_degradation.png" for e in ("books_to_dvd", "books_to_electronics")
    ]
    # notebook 04's figures are linked only where the committed run has adapted runs to draw
    with pytest.raises(UserError, match="04_methods_grid.png is not committed"):
        figure_links("reference", ["books_to_dvd"], analysis=True)


@pytest.mark.parametrize(
    "profile, experiments, message",
    [
        ("smoke", ["books_to_dvd"], "profile 'smoke' has no committed figures.*--no-figures"),
        ("reference", ["my_shift"], "figures/my_shift/01_degradation.png is not committed"),
    ],
)
def test_figures_that_are_not_committed_are_refused(profile, experiments, message):
    with pytest.raises(UserError, match=message):
        figure_links(profile, experiments)


def test_an_empty_store_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no stored runs of profile 'smoke'"):
        readme_results("smoke", tmp_path)


def test_the_results_say_which_experiments_hold_their_whole_grid(fixture_data, tmp_path):
    from helpers.study.adaptation import run_methods
    from helpers.study.experiment import open_study

    study = open_study("hate_to_stormfront", "smoke", fixture_data, tmp_path, progress=False)
    run_methods(study, ["none", "all"])  # 2 of the profile's 15 methods, plus the source run
    text = readme_results("smoke", tmp_path, figures=False)
    assert "Whole main grid (16 runs each): none." in text
    assert "Partial: hate_to_stormfront (3 of 16 runs)" in text
    assert "### Runs that answer one class" in text  # flagged or not, the section says which
