"""CBV fine-tuning: a table of configs against tiny models of every supported family."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from helpers.config.cbv import CBVConfig
from helpers.errors import UserError
from helpers.models.cbv import wrap
from helpers.models.layers import layer_groups
from helpers.models.loading import load_classifier
from helpers.models.mixer import Coefficients, Mixer

FAMILIES = ("bert", "roberta", "distilbert", "electra")
MODELS = [f"tiny-{f}-2" for f in FAMILIES]
DEEP_MODELS = [f"tiny-{f}-3" for f in FAMILIES]  # a third layer, so "first two" is a subset
# (space, per_tensor): per-tensor coefficients exist in weight space only
MIXINGS = [("weight", False), ("weight", True), ("output", False)]
ATOL = 1e-10  # float64 throughout; the mixing is exact at alpha in {0, 1}
STUDY = dict(include_embeddings=False, include_pooler=False)  # the study's coverage
COVERAGES = [{}, STUDY, dict(include_embeddings=False), dict(include_pooler=False)]


def source_and_finetuned(name: str, seed: int = 0):
    """A float64 source model and a 'fine-tuned' copy: every weight moved by a seeded jolt."""
    source = load_classifier(name, seed=seed).double().eval()
    finetuned = copy.deepcopy(source)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in finetuned.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return source, finetuned


def make_batch(n: int = 3, length: int = 8, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (n, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, -3:] = 0  # some padding, so the mask path is exercised
    return dict(input_ids=ids, attention_mask=mask, labels=torch.randint(0, 2, (n,), generator=gen))


def transplant(into, donor, groups):
    """A copy of ``into`` carrying ``donor``'s weights for the named layer groups."""
    out = copy.deepcopy(into)
    view = layer_groups(out)
    with torch.no_grad():
        for g in groups:
            for (_, p), (_, q) in zip(view.parameters(out, g), view.parameters(donor, g)):
                p.copy_(q)
    return out


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def cbv_pair(name, space="weight", per_tensor=False, **kw):
    source, finetuned = source_and_finetuned(name)
    config = CBVConfig(space=space, per_tensor=per_tensor, **kw)
    return source, finetuned, wrap(copy.deepcopy(finetuned), config, source=source).eval()


# -- the wrapper reproduces the models it interpolates between ----------------------------------
@pytest.mark.parametrize("space,per_tensor", MIXINGS)
@pytest.mark.parametrize("name", MODELS)
def test_alpha_one_is_finetuned_and_zero_is_source(name, space, per_tensor):
    """The default coverage is every group: CBV can be exactly full fine-tuning, or the source."""
    source, finetuned, cbv = cbv_pair(name, space, per_tensor)
    batch = make_batch()
    assert not torch.allclose(logits(source, batch), logits(finetuned, batch))
    cbv.set_alphas(1.0)
    torch.testing.assert_close(logits(cbv, batch), logits(finetuned, batch), rtol=0, atol=ATOL)
    cbv.set_alphas(0.0)
    torch.testing.assert_close(logits(cbv, batch), logits(source, batch), rtol=0, atol=ATOL)


@pytest.mark.parametrize("space,per_tensor", MIXINGS)
@pytest.mark.parametrize("name", MODELS)
def test_groups_without_coefficient_stay_at_source(name, space, per_tensor):
    source, finetuned, cbv = cbv_pair(name, space, per_tensor, **STUDY)  # no alpha on either
    batch = make_batch()
    cbv.set_alphas(1.0)
    frozen_groups = [g for g in ("embeddings", "pooler") if g in layer_groups(source).paths]
    expected = transplant(finetuned, source, frozen_groups)
    torch.testing.assert_close(logits(cbv, batch), logits(expected, batch), rtol=0, atol=ATOL)
    assert all(
        not p.requires_grad for g in frozen_groups for _, p in cbv.groups.parameters(cbv.model, g)
    )


@pytest.mark.parametrize("coverage", COVERAGES, ids=str)
@pytest.mark.parametrize("space,per_tensor", MIXINGS)
@pytest.mark.parametrize("name", MODELS)
def test_joint_endpoints_hold_for_every_coverage(name, space, per_tensor, coverage):
    """Wrapped at the source and trained (here: covered groups jolted), alpha = 1 is exactly
    the trainable copy and alpha = 0 exactly the source, whatever the coverage."""
    source, _ = source_and_finetuned(name)
    cbv = wrap(copy.deepcopy(source), CBVConfig(space=space, per_tensor=per_tensor, **coverage))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in cbv.weight_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    trained = copy.deepcopy(source)
    for g in cbv.coefficient_groups:  # the trainable copy as a plain model
        for (_, p), (_, q) in zip(
            layer_groups(trained).parameters(trained, g),
            [(n, m.trainable.get_parameter(n)) for m in cbv.group_mixers(g) for n in m.names],
        ):
            p.data.copy_(q)
    cbv.eval()
    batch = make_batch()
    assert not torch.allclose(logits(source, batch), logits(trained, batch))
    cbv.set_alphas(1.0)
    torch.testing.assert_close(logits(cbv, batch), logits(trained, batch), rtol=0, atol=ATOL)
    cbv.set_alphas(0.0)
    torch.testing.assert_close(logits(cbv, batch), logits(source, batch), rtol=0, atol=ATOL)


@pytest.mark.parametrize("space,per_tensor", MIXINGS)
@pytest.mark.parametrize("name", DEEP_MODELS)
def test_one_hot_alpha_is_the_surgical_subset(name, space, per_tensor):
    source, finetuned, cbv = cbv_pair(name, space, per_tensor)
    cbv.set_alphas(0.0)
    cbv.set_alphas({"layer.0": 1.0, "layer.1": 1.0})
    surgical = transplant(source, finetuned, ["layer.0", "layer.1"])
    batch = make_batch()
    assert not torch.allclose(logits(surgical, batch), logits(source, batch))
    torch.testing.assert_close(logits(cbv, batch), logits(surgical, batch), rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", DEEP_MODELS)
def test_weight_and_output_space_agree_at_binary_alphas(name):
    _, _, by_weight = cbv_pair(name, "weight")
    _, _, by_output = cbv_pair(name, "output")
    batch = make_batch()
    for pattern in ([1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]):
        alphas = {g: float(pattern[i % 4]) for i, g in enumerate(by_weight.alphas())}
        by_weight.set_alphas(alphas)
        by_output.set_alphas(alphas)
        torch.testing.assert_close(
            logits(by_weight, batch), logits(by_output, batch), rtol=0, atol=ATOL
        )


def test_wrapping_without_source_starts_identical_to_the_model():
    model = load_classifier("tiny-bert-2").double().eval()
    before = logits(model, make_batch())
    for space in ("weight", "output"):
        cbv = wrap(copy.deepcopy(model), CBVConfig(space=space, init=0.3)).eval()
        torch.testing.assert_close(logits(cbv, make_batch()), before, rtol=0, atol=ATOL)


# -- gradients --------------------------------------------------------------------------------
@pytest.mark.parametrize("constraint", ["sigmoid", "clamp"])
@pytest.mark.parametrize("space,per_tensor", MIXINGS)
@pytest.mark.parametrize("name", MODELS)
def test_alpha_gradient_matches_finite_differences(name, space, per_tensor, constraint):
    _, _, cbv = cbv_pair(name, space, per_tensor, constraint=constraint, penalty=0.1)
    gen = torch.Generator().manual_seed(3)
    n = len(cbv.alphas())
    cbv.set_alphas(dict(zip(cbv.alphas(), (0.2 + 0.6 * torch.rand(n, generator=gen)).tolist())))
    batch = make_batch()
    raw = cbv.alpha_parameters()[0]
    cbv(**batch).loss.backward()
    # central differences on a few coordinates (all of them when there are few)
    idx = torch.randperm(n, generator=gen)[:6].tolist()
    h = 1e-6
    numeric = []
    for i in idx:
        with torch.no_grad():
            raw[i] += h
            up = cbv(**batch).loss.item()
            raw[i] -= 2 * h
            down = cbv(**batch).loss.item()
            raw[i] += h
        numeric.append((up - down) / (2 * h))
    torch.testing.assert_close(
        raw.grad[idx], torch.tensor(numeric, dtype=raw.dtype), rtol=1e-5, atol=1e-8
    )
    assert raw.grad.abs().sum() > 0


@pytest.mark.parametrize("space", ["weight", "output"])
@pytest.mark.parametrize("name", MODELS)
def test_pitfall_zero_alpha_gradient_until_weights_move(name, space):
    """theta == theta0 at wrap time: dL/dalpha is exactly 0; after weight warm-up it is not."""
    model = load_classifier(name).double()
    cbv = wrap(model, CBVConfig(space=space)).eval()
    raw = cbv.alpha_parameters()[0]
    batch = make_batch()
    cbv(**batch).loss.backward()
    assert torch.count_nonzero(raw.grad) == 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in cbv.weight_parameters())

    # the warm-up the training engine runs: the coefficients' learning rate held at zero
    opt = torch.optim.Adam(
        [dict(params=cbv.weight_parameters(), lr=1e-3), dict(params=cbv.alpha_parameters(), lr=0.0)]
    )
    start = raw.detach().clone()
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        cbv(**batch).loss.backward()
        opt.step()
    assert torch.equal(raw, start)
    assert all(
        not torch.equal(m.trainable.get_parameter(n), m.frozen.get_parameter(n))
        for m in cbv.mixers()
        for n in m.names
        if n.endswith("weight")
    )

    opt.zero_grad(set_to_none=True)
    cbv(**batch).loss.backward()
    assert torch.count_nonzero(raw.grad) == raw.numel()


def test_init_zero_dead_start_is_refused_but_two_stage_is_allowed():
    model = load_classifier("tiny-bert-2")
    for space in ("weight", "output"):
        with pytest.raises(UserError, match="dead start"):
            wrap(copy.deepcopy(model), CBVConfig(space=space, constraint="clamp", init=0.0))
    # a trained copy against a different source: alpha = 0 is the source, and alpha can move
    source, finetuned, cbv = cbv_pair("tiny-bert-2", constraint="clamp", init=0.0)
    batch = make_batch()
    torch.testing.assert_close(logits(cbv, batch), logits(source, batch), rtol=0, atol=ATOL)
    cbv.freeze_weights()
    cbv(**batch).loss.backward()
    assert cbv.alpha_parameters()[0].grad.abs().sum() > 0
    assert all(p.grad is None for p in cbv.weight_parameters())


# -- export -----------------------------------------------------------------------------------
@pytest.mark.parametrize("per_tensor", [False, True])
@pytest.mark.parametrize("name", MODELS)
def test_bake_matches_wrapper_and_round_trips(name, per_tensor, tmp_path):
    _, _, cbv = cbv_pair(name, "weight", per_tensor)
    n = len(cbv.alphas())
    cbv.set_alphas(dict(zip(cbv.alphas(), torch.linspace(0.1, 0.9, n).tolist())))
    batch = make_batch()
    baked = cbv.bake()
    assert type(baked) is type(cbv.model) and not baked.training
    expected = logits(cbv, batch)
    torch.testing.assert_close(logits(baked, batch), expected, rtol=0, atol=1e-12)
    baked.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, dtype=torch.float64)
    torch.testing.assert_close(logits(reloaded.eval(), batch), expected, rtol=0, atol=1e-12)
    # baking copies: the wrapper keeps training afterwards
    assert any(p.requires_grad for p in cbv.weight_parameters())


def test_output_space_bakes_only_at_binary_alphas():
    _, _, cbv = cbv_pair("tiny-distilbert-3", "output")
    with pytest.raises(UserError, match="cannot be baked"):
        cbv.bake()
    cbv.set_alphas({g: float(i % 2) for i, g in enumerate(cbv.alphas())})
    batch = make_batch()
    torch.testing.assert_close(logits(cbv.bake(), batch), logits(cbv, batch), rtol=0, atol=ATOL)


# -- constraints and penalty --------------------------------------------------------------------
def test_clamp_projects_into_the_box():
    _, _, cbv = cbv_pair("tiny-bert-2", constraint="clamp", **STUDY)
    raw = cbv.alpha_parameters()[0]
    with torch.no_grad():
        raw.copy_(torch.tensor([-0.5, 0.4, 1.7], dtype=raw.dtype))
    cbv.project_()
    assert list(cbv.alphas().values()) == [0.0, 0.4, 1.0]


@pytest.mark.parametrize("per_tensor", [False, True])
def test_sum_constraint_rescales_to_one(per_tensor):
    _, _, cbv = cbv_pair("tiny-roberta-2", per_tensor=per_tensor, constraint="sum")
    opt = torch.optim.Adam(cbv.alpha_parameters(), lr=0.3)
    cbv(**make_batch()).loss.backward()
    opt.step()
    before = torch.tensor(list(cbv.alphas().values()), dtype=torch.float64)
    cbv.project_()
    after = torch.tensor(list(cbv.alphas().values()), dtype=torch.float64)
    torch.testing.assert_close(after.sum().item(), 1.0, rtol=0, atol=1e-12)
    torch.testing.assert_close(after, before / before.sum(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("penalty,budget", [(0.3, None), (0.3, 1.0), (0.3, 2.0)])
def test_penalty_adds_the_documented_amount(penalty, budget):
    _, _, cbv = cbv_pair("tiny-electra-2", penalty=penalty, budget=budget, init=0.6)
    batch = make_batch()
    total = sum(cbv.alphas().values())  # 3 groups x 0.6 = 1.8
    extra = penalty * (total if budget is None else max(total - budget, 0.0))
    with torch.no_grad():
        plain = cbv.model(**batch).loss.item()
        assert cbv(**batch).loss.item() == pytest.approx(plain + extra, abs=1e-12)
        no_labels = {k: v for k, v in batch.items() if k != "labels"}
        assert cbv(**no_labels).loss is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(space="weights"), "unknown CBV space"),
        (dict(constraint="softmax"), "unknown CBV constraint"),
        (dict(init=1.5), r"in \[0, 1\]"),
        (dict(init=float("nan")), r"in \[0, 1\]"),
        (dict(init=0.0), "strictly inside"),
        (dict(init=1.0, constraint="sum"), "strictly inside"),
        (dict(penalty=-1.0), ">= 0"),
        (dict(budget=1.0), "no effect with penalty=0"),
        (dict(penalty=0.1, budget=0.0), "> 0"),
        (dict(space="output", per_tensor=True), "needs space='weight'"),
        (dict(per_tensor=1), "True or False"),
    ],
)
def test_config_validation_names_the_fix(kwargs, message):
    with pytest.raises(UserError, match=message):
        CBVConfig(**kwargs)


def test_config_accepts_clamp_at_the_box_edges():
    assert CBVConfig(constraint="clamp", init=0.0).init == 0.0
    assert CBVConfig(constraint="clamp", init=1).init == 1


def test_wrap_refuses_bad_sources_and_double_wrapping():
    with pytest.raises(UserError, match="architecture"):
        wrap(load_classifier("tiny-bert-2"), CBVConfig(), source=load_classifier("tiny-bert-3"))
    cbv = wrap(load_classifier("tiny-bert-2"), CBVConfig())
    with pytest.raises(UserError, match="already CBV-wrapped"):
        wrap(cbv.model, CBVConfig())
    with pytest.raises(UserError, match="unknown CBV coefficient"):
        cbv.set_alphas({"layer.9": 0.5})
    with pytest.raises(UserError, match=r"in \[0, 1\]"):
        cbv.set_alphas(1.5)


# -- structure ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_coefficient_names_and_parameter_split(name):
    model = load_classifier(name)
    assert list(wrap(copy.deepcopy(model), CBVConfig()).alphas()) == layer_groups(model).names
    per_group = wrap(copy.deepcopy(model), CBVConfig(include_embeddings=False))
    groups = [g for g in layer_groups(model).names if g != "embeddings"]
    assert list(per_group.alphas()) == groups
    per_tensor = wrap(copy.deepcopy(model), CBVConfig(per_tensor=True, **STUDY))
    view = layer_groups(model)
    mixed = [
        n
        for g in view.names
        if g not in ("embeddings", "pooler")
        for n, _ in view.parameters(model, g)
    ]
    assert len(per_tensor.alphas()) == len(mixed)
    assert all(k.split("/")[0] in groups for k in per_tensor.alphas())
    if name.startswith("tiny-distilbert"):
        assert "head/pre_classifier.weight" in per_tensor.alphas()
    trainable = {id(p) for p in per_tensor.parameters() if p.requires_grad}
    split = per_tensor.alpha_parameters() + per_tensor.weight_parameters()
    assert trainable == {id(p) for p in split} and len(split) == len(trainable)


def test_frozen_branch_stays_in_eval_mode():
    cbv = wrap(load_classifier("tiny-bert-2"), CBVConfig(space="output")).train()
    assert all(m.trainable.training and not m.frozen.training for m in cbv.mixers())
    assert cbv.model.bert.embeddings.training  # unmixed frozen groups keep their dropout
    with pytest.raises(UserError, match="output space"):
        cbv(**make_batch(), output_hidden_states=True)


class PairOut(torch.nn.Module):
    """A layer returning a tuple, as older transformers layers did."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = torch.nn.Linear(4, 4).double()

    def forward(self, x):
        return torch.tanh(self.linear(x)), "extra"


@pytest.mark.parametrize("space", ["weight", "output"])
def test_mixer_handles_tuple_outputs(space):
    trainable, frozen = PairOut(0), PairOut(1)
    coefficients = Coefficients(["g"], "clamp", 0.25, torch.float64, torch.device("cpu"))
    mixer = Mixer(trainable, frozen, coefficients, 0, 1, space)
    x = torch.randn(2, 4, dtype=torch.float64)
    hidden, extra = mixer(x)
    assert extra == "extra"
    if space == "output":
        expected = 0.25 * trainable(x)[0] + 0.75 * frozen(x)[0]
    else:
        w = 0.25 * trainable.linear.weight + 0.75 * frozen.linear.weight
        b = 0.25 * trainable.linear.bias + 0.75 * frozen.linear.bias
        expected = torch.tanh(x @ w.T + b)
    torch.testing.assert_close(hidden, expected, rtol=0, atol=1e-12)


# -- a short real training run --------------------------------------------------------------------
@pytest.mark.parametrize("space", ["weight", "output"])
def test_training_smoke(space):
    """20 Adam steps on random tokens, alphas in their own group after a 5-step weight warm-up."""
    torch.manual_seed(0)
    cbv = wrap(load_classifier("tiny-bert-2"), CBVConfig(space=space)).train()
    batch = make_batch(n=16, length=12, seed=5)
    opt = torch.optim.Adam(
        [
            dict(params=cbv.weight_parameters(), lr=1e-3),
            dict(params=cbv.alpha_parameters(), lr=1e-2),
        ]
    )
    start, losses = cbv.alphas(), []
    for step in range(20):
        opt.param_groups[1]["lr"] = 1e-2 if step >= 5 else 0.0  # the engine's warm-up
        loss = cbv(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        cbv.project_()
        losses.append(loss.item())
    assert sum(losses[-3:]) < sum(losses[:3])
    assert min(abs(cbv.alphas()[g] - start[g]) for g in start) > 1e-2
