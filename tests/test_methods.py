"""Every registered method adapts a tiny model; surgical methods change exactly their groups."""

import pytest
import torch

from helpers.data.encoding import encode
from helpers.errors import UserError
from helpers.evaluation.predictions import predict
from helpers.models.layers import layer_groups
from helpers.models.loading import load_classifier, load_tokenizer
from helpers.spec.methods import CODE_VERSION, METHODS, STRATEGY_NAMES, code_version, get_method
from helpers.spec.settings import TrainConfig
from helpers.training.strategies import FitInputs, adapt
from tests.test_training import LABELS, toy

CFG = TrainConfig(epochs=2, batch_size=16, lr=2e-3, warmup_ratio=0.0, alpha_warmup_ratio=0.25)


@pytest.fixture(scope="module")
def inputs():
    tok = load_tokenizer("tiny-bert-4")
    source = load_classifier("tiny-bert-4", LABELS, seed=0)
    cache = {}

    def reuse(name):
        if name not in cache:
            cache[name] = adapt(get_method(name), x)
        return cache[name]

    x = FitInputs(
        source,
        encode(toy(64, 0), tok, 16),
        encode(toy(32, 1), tok, 16),
        LABELS,
        CFG,
        progress=False,
        reuse=reuse,
    )
    return x


def changed_groups(before, after):
    groups = layer_groups(before)
    out = set()
    for g in groups.names:
        for (_, p), (_, q) in zip(groups.parameters(before, g), groups.parameters(after, g)):
            if not torch.equal(p, q):
                out.add(g)
    return out


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_adapts(name, inputs):
    adapted = adapt(get_method(name), inputs)
    preds = predict(adapted.model, inputs.val)
    assert len(preds) == len(inputs.val) and preds["pred"].isin([0, 1]).all()
    if get_method(name).family == "cbv":
        assert adapted.alphas and all(0 <= a <= 1 for a in adapted.alphas.values())


@pytest.mark.parametrize(
    "name, groups",
    [
        ("none", set()),
        ("head", {"head"}),
        ("first2", {"layer.0", "layer.1"}),
        ("middle2", {"layer.1", "layer.2"}),
        ("last2", {"layer.2", "layer.3"}),
        ("all", {"embeddings", "layer.0", "layer.1", "layer.2", "layer.3", "pooler", "head"}),
    ],
)
def test_surgical_methods_change_exactly_their_groups(name, groups, inputs):
    adapted = adapt(get_method(name), inputs)
    assert changed_groups(inputs.source, adapted.model) == groups


def test_wise_ft_picks_a_grid_point_on_validation(inputs):
    adapted = adapt(get_method("wise_ft"), inputs)
    backbone = {a for g, a in adapted.alphas.items() if g != "head"}
    assert adapted.alphas["head"] == 1.0
    assert len(backbone) == 1 and round(backbone.pop() * 10, 9) in range(11)  # one grid point


def test_unknown_method():
    with pytest.raises(UserError, match="unknown method 'surgical'; choose one of"):
        get_method("surgical")


def test_every_code_path_has_a_version_and_methods_carry_their_bases():
    assert set(CODE_VERSION) == {*STRATEGY_NAMES, "source"}
    assert code_version("cbv_two_stage") == {
        "cbv_two_stage": CODE_VERSION["cbv_two_stage"],
        "subset": CODE_VERSION["subset"],
    }
