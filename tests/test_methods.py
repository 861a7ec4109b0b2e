"""Every registered method adapts a tiny model; surgical methods change exactly their groups."""

import pytest
import torch

from helpers.config.methods import CODE_VERSION, METHODS, STRATEGY_NAMES, code_version, get_method
from helpers.config.settings import TrainConfig
from helpers.data.encoding import collate, encode
from helpers.errors import UserError
from helpers.evaluation.predictions import predict
from helpers.models.layers import layer_groups
from helpers.models.loading import load_classifier, load_tokenizer
from helpers.training.prefix import CACHE, skip_prefix
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


def on_grid(a: float) -> bool:
    return round(a * 10, 9) in range(11)


def test_wise_ft_picks_a_grid_point_on_validation(inputs):
    full = adapt(get_method("wise_ft"), inputs).alphas  # every weight, head included
    assert len(set(full.values())) == 1 and on_grid(full["head"])
    backbone = adapt(get_method("wise_ft_backbone"), inputs).alphas
    rest = {a for g, a in backbone.items() if g != "head"}
    assert backbone["head"] == 1.0 and len(rest) == 1 and on_grid(rest.pop())


def test_two_stage_with_alphas_at_one_is_exactly_all(inputs):
    """Every group has a coefficient, so the two-stage model starts exactly at `all`."""
    two_stage = adapt(get_method("cbv_two_stage"), inputs).model
    two_stage.set_alphas(1.0)
    base = inputs.reuse("all").model
    batch = {k: v for k, v in collate(inputs.val, range(8)).items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(
            two_stage.eval()(**batch).logits, base.eval()(**batch).logits, rtol=0, atol=0
        )


def test_every_trained_method_takes_the_same_encoder_steps(inputs):
    """One budget: the same optimiser steps over the same batches; LP-FT's probe takes none."""
    budget = CFG.epochs * -(-len(inputs.train) // CFG.batch_size)
    for name in ["head", "first2", "all", "lp_ft", "auto_rgn", "cbv_weight", "cbv_study"]:
        fits = adapt(get_method(name), inputs).fits
        assert sum(f.steps for f in fits) == budget, name


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "electra"])
def test_the_probe_reads_only_the_first_token(family, inputs):
    """LP-FT's probe feeds the head one vector per example: exact for every supported family."""
    model = load_classifier(f"tiny-{family}-2", LABELS, seed=0).eval()
    layers = layer_groups(model)
    feats = CACHE.features(model, layers, layers.num_layers, inputs.val)
    index = list(range(8))
    first = torch.stack([feats[i][0] for i in index])[:, None]
    batch = {k: v for k, v in collate(inputs.val, index).items() if k != "labels"}
    with torch.no_grad(), skip_prefix(model, layers, layers.num_layers):
        probe = model(inputs_embeds=first, attention_mask=torch.ones(8, 1, dtype=torch.long))
    with torch.no_grad():
        full = model(**batch)
    torch.testing.assert_close(probe.logits, full.logits, rtol=1e-5, atol=1e-6)


def test_lp_ft_probe_converges_before_fine_tuning(inputs):
    probe, tune = adapt(get_method("lp_ft"), inputs).fits
    losses = probe.history["value"].to_numpy()
    assert probe.steps == 0 and len(losses) > 2 and losses[-1] < losses[0]
    assert tune.steps == CFG.epochs * -(-len(inputs.train) // CFG.batch_size)


def test_auto_rgn_scales_each_tensor_by_its_own_gradient(inputs):
    """The per-tensor scales of a step are ||g|| / ||w||, normalised by the largest one."""
    from helpers.training import strategies

    seen = []
    original = strategies.relative_gradient_norm

    def spy(param):
        seen.append(original(param))
        return seen[-1]

    strategies.relative_gradient_norm = spy
    try:
        adapted = adapt(get_method("auto_rgn"), inputs)
    finally:
        strategies.relative_gradient_norm = original
    n_tensors = sum(1 for _ in inputs.source.parameters())
    assert len(seen) == n_tensors * adapted.fits[0].steps
    first = torch.tensor(seen[:n_tensors])
    history = adapted.fits[0].history
    recorded = history[(history["step"] == 0) & history["metric"].str.startswith("rgn_scale/")]
    assert recorded["value"].max() <= 1.0 and (first / first.max()).max() == 1.0


def test_unknown_method():
    with pytest.raises(UserError, match="unknown method 'surgical'; choose one of"):
        get_method("surgical")


def test_every_code_path_has_a_version_and_methods_carry_their_bases():
    assert set(CODE_VERSION) == {*STRATEGY_NAMES, "source"}
    assert code_version("cbv_two_stage") == {
        "cbv_two_stage": CODE_VERSION["cbv_two_stage"],
        "subset": CODE_VERSION["subset"],
    }
