"""The training engine on tiny models: learning, prefix-cache exactness, determinism, NaN stops."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.config.settings import TrainConfig
from helpers.data.encoding import collate, encode, pad
from helpers.errors import UserError
from helpers.evaluation.predictions import predict
from helpers.models.layers import layer_groups
from helpers.models.loading import load_classifier, load_tokenizer
from helpers.training.engine import NonFiniteLossError, fit
from helpers.training.plan import subset_plan
from helpers.training.prefix import (
    CACHE,
    LIMIT_ENV,
    PrefixCache,
    cache_limit,
    predict_from_prefix,
    skip_prefix,
)

LABELS = ("neg", "pos")
POS, NEG = ["good", "great", "fine", "lovely"], ["bad", "awful", "poor", "dull"]


def toy(n, seed):
    """A learnable toy task: the label is whether positive words outnumber negative ones."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(POS if label else NEG, 3)) + list(rng.choice(POS + NEG, 2))
        rng.shuffle(words)
        rows.append({"id": f"{seed}-{i}", "text": " ".join(words), "label": label, "source": "toy"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data():
    tok = load_tokenizer("tiny-bert-2")
    return encode(toy(160, 0), tok, 16), encode(toy(64, 1), tok, 16)


CFG = TrainConfig(epochs=4, batch_size=16, lr=2e-3, evals_per_epoch=1, warmup_ratio=0.0)


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_full_fine_tuning_learns(family, data):
    train, val = data
    model = load_classifier(f"tiny-{family}-2", LABELS, seed=0)
    result = fit(
        model,
        train,
        val,
        LABELS,
        CFG,
        plan=subset_plan(model, layer_groups(model).select_many(["embeddings", "all"])),
        progress=False,
    )
    loss = result.history.query("metric == 'loss'")["value"].to_numpy()
    assert loss[-16:].mean() < loss[:8].mean()
    assert result.best_score > 0.8


@pytest.mark.parametrize("family", ["bert", "distilbert", "electra"])
def test_cached_prefix_gives_the_same_model(family, data):
    """Training last-layer-and-head with and without the feature cache ends at the same weights."""
    train, val = data
    weights = []
    for cache in (False, True):
        CACHE.clear()
        model = load_classifier(f"tiny-{family}-2", LABELS, seed=0)
        res = fit(
            model,
            train,
            val,
            LABELS,
            replace(CFG, cache_prefix=cache, epochs=2),
            plan=subset_plan(model, ["layer.1", "head"]),
            progress=False,
        )
        assert res.cached_prefix == (1 if cache else None)
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], atol=1e-5, rtol=1e-4)


def test_skip_prefix_reproduces_the_full_forward(data):
    _, val = data
    model = load_classifier("tiny-bert-2", LABELS, seed=0).eval()
    groups = layer_groups(model)
    index = np.arange(12)
    feats = CACHE.features(model, groups, 1, val)
    hidden, mask = pad([feats[i] for i in index])
    with torch.no_grad():
        with skip_prefix(model, groups, 1):
            cached = model(inputs_embeds=hidden, attention_mask=mask).logits
        batch = {k: v for k, v in collate(val, index).items() if k != "labels"}
        full = model(**batch).logits
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
    assert isinstance(model.bert.encoder.layer[0], torch.nn.Module)
    assert type(model.bert.encoder.layer[0]).__name__ == "BertLayer"  # restored


def test_same_seed_same_result(data):
    train, val = data
    runs = []
    for _ in range(2):
        model = load_classifier("tiny-bert-2", LABELS, seed=3)
        runs.append(
            fit(
                model,
                train,
                val,
                LABELS,
                replace(CFG, epochs=1, seed=3),
                plan=subset_plan(model, ["layer.0", "layer.1", "head"]),
                progress=False,
            ).history
        )
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_non_finite_loss_stops_the_run(data):
    train, val = data
    model = load_classifier("tiny-bert-2", LABELS, seed=0)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="lower the learning rate"):
        fit(model, train, val, LABELS, CFG, plan=subset_plan(model, ["head"]), progress=False)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=-1.0), dict(warmup_ratio=1.0)])
def test_bad_train_settings(bad):
    with pytest.raises(UserError, match="train setting"):
        TrainConfig(**bad)


def test_class_weights_balance_a_rare_class_only():
    from helpers.training.engine import class_weights

    rare = np.array([0] * 90 + [1] * 10)
    w = class_weights(rare, 2, "auto")
    assert torch.allclose(w, torch.tensor([100 / 180, 100 / 20]))  # n / (k * n_c)
    assert class_weights(rare, 2, "none") is None
    assert class_weights(np.array([0] * 60 + [1] * 40), 2, "auto") is None  # 40% is not rare


def test_patience_stops_after_validations_without_improvement(data):
    train, val = data
    model = load_classifier("tiny-bert-2", LABELS, seed=0)
    cfg = replace(CFG, epochs=8, lr=0.0, evals_per_epoch=1, patience=2)  # nothing can improve
    result = fit(model, train, val, LABELS, cfg, plan=subset_plan(model, ["head"]), progress=False)
    steps_per_epoch = -(-len(train) // cfg.batch_size)
    assert result.steps == 3 * steps_per_epoch  # best at the first validation, then 2 stale


def test_prefix_cache_keys_examples_by_corpus_and_id(data):
    """Two corpora numbering their examples alike (0, 1, ...) must not share cached features."""
    _, val = data
    model = load_classifier("tiny-bert-2", LABELS, seed=0).eval()
    groups = layer_groups(model)
    a = val.subset(np.arange(4))
    b = val.subset(np.arange(4, 8))
    b.ids[:] = a.ids  # same ids, other texts, another corpus
    b.sources[:] = "other"
    CACHE.clear()
    before = CACHE.computed
    fa, fb = CACHE.features(model, groups, 1, a), CACHE.features(model, groups, 1, b)
    assert CACHE.computed - before == 8
    assert any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(fa, fb))


def test_prefix_cache_drops_the_least_recently_used_prefix_past_its_bound(data):
    _, val = data
    model = load_classifier("tiny-bert-2", LABELS, seed=0).eval()
    groups = layer_groups(model)
    one = PrefixCache(max_bytes=None)
    first = one.features(model, groups, 1, val)
    size = one.nbytes()  # one prefix's features over the set
    cache = PrefixCache(max_bytes=size + size // 2)  # room for one prefix, not two
    cache.features(model, groups, 1, val)
    cache.features(model, groups, 2, val)  # the depth-1 prefix is the older: dropped
    assert len(cache.store) == 1 and cache.nbytes() == size
    again = cache.features(model, groups, 1, val)  # recomputed, the same numbers
    assert cache.computed == 3 * len(val) and len(cache.store) == 1
    assert all(torch.equal(x, y) for x, y in zip(first, again))


def test_prefix_cache_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "0.5")
    assert cache_limit() == 2**29
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(UserError, match=f"{LIMIT_ENV} must be a positive number of GiB"):
        cache_limit()


def test_predictions_from_the_prefix_cache_are_the_full_forward(data):
    train, val = data
    model = load_classifier("tiny-bert-2", LABELS, seed=0)
    plan = subset_plan(model, ["layer.1", "head"])
    fit(model, train, val, LABELS, replace(CFG, epochs=1), plan, progress=False)
    CACHE.clear()
    before = CACHE.computed
    cached = predict_from_prefix(model, layer_groups(model), 1, val, batch_size=16)
    full = predict(model, val, batch_size=16)
    assert CACHE.computed - before == len(val)
    assert (cached["pred"] == full["pred"]).all()
    np.testing.assert_allclose(cached[["p_0", "p_1"]], full[["p_0", "p_1"]], atol=1e-6)
