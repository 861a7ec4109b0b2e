"""The README's results section links only figures that are committed (the reference profile's)."""

import pytest

from helpers.errors import UserError
from tools.readme import figure_links, readme_results


def test_the_reference_profile_links_its_committed_figures():
    links = figure_links("reference", ["books_to_dvd", "books_to_electronics"])
    assert links[0] == "figures/books_to_dvd/01_degradation.png"
    assert "figures/analysis/04_methods_grid.png" in links


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
