"""The layer-group view on tiny models of every supported family and depth."""

import pytest

from helpers.errors import UserError
from helpers.models.layers import layer_groups
from helpers.models.loading import load_classifier

FAMILIES = ["bert", "roberta", "distilbert", "electra"]
# depth -> expected (first:2, middle:2, last:2) layer indices
EXPECTED = {
    2: ([0, 1], [0, 1], [0, 1]),
    4: ([0, 1], [1, 2], [2, 3]),
    6: ([0, 1], [2, 3], [4, 5]),
    12: ([0, 1], [5, 6], [10, 11]),
    24: ([0, 1], [11, 12], [22, 23]),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("depth", sorted(EXPECTED))
def test_selections_and_coverage(family, depth):
    model = load_classifier(f"tiny-{family}-{depth}")
    groups = layer_groups(model)
    assert groups.num_layers == depth
    first, middle, last = EXPECTED[depth]
    assert groups.select("first:2") == [f"layer.{i}" for i in first]
    assert groups.select("middle:2") == [f"layer.{i}" for i in middle]
    assert groups.select("last:2") == [f"layer.{i}" for i in last]
    # Every parameter belongs to exactly one group, so a method can never miss or double one.
    names = [n for g in groups.names for n, _ in groups.parameters(model, g)]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert groups.names[0] == "embeddings" and groups.names[-1] == "head"
    assert ("pooler" in groups.names) == (family == "bert")


def test_select_many_keeps_model_order():
    groups = layer_groups(load_classifier("tiny-bert-4"))
    assert groups.select_many(["head", "last:1", "first:1"]) == ["layer.0", "layer.3", "head"]
    assert groups.select("all") == ["layer.0", "layer.1", "layer.2", "layer.3", "pooler", "head"]
    assert groups.paths["layer.2"] == ("bert.encoder.layer.2",)


@pytest.mark.parametrize("bad", ["first:0", "last:9", "middle", "layer.7", "top:2"])
def test_bad_selection_names_the_fix(bad):
    groups = layer_groups(load_classifier("tiny-bert-4"))
    with pytest.raises(UserError, match="selection"):
        groups.select(bad)
