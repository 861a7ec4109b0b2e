"""Precision is a run setting: bf16 where native (else fp32, said once), keyed, applied."""

import numpy as np
import pytest
import torch

from helpers.data.encoding import encode
from helpers.evaluation.predictions import predict
from helpers.models import precision
from helpers.models.loading import load_classifier, load_tokenizer
from helpers.study.experiment import open_study
from helpers.study.plan import Run


@pytest.fixture(scope="module")
def tiny():
    model = load_classifier("tiny-bert-2", ("no", "yes"), seed=0)
    tok = load_tokenizer("tiny-bert-2")
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(12)],
            "text": [
                f"a review number {i} that says {'good' if i % 2 else 'bad'}" for i in range(12)
            ],
            "label": [i % 2 for i in range(12)],
            "source": "fixture",
        }
    )
    return model, encode(frame, tok, 32)


def test_bf16_falls_back_to_fp32_with_one_line_where_the_cpu_lacks_it(monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert precision.resolve_precision("bf16", "cpu") == "fp32"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fp32" in err[0]
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert precision.resolve_precision("bf16", "cpu") == "bf16"
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError):
        precision.resolve_precision("fp16", "cpu")


def test_predictions_run_in_the_precision_asked(tiny, monkeypatch):
    model, data = tiny
    seen = []
    real = torch.nn.Linear.forward

    def spy(self, x):
        out = real(self, x)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", spy)
    fp32 = predict(model, data, 8, precision="fp32")
    assert set(seen) == {torch.float32}
    seen.clear()
    bf16 = predict(model, data, 8, precision="bf16")
    assert torch.bfloat16 in set(seen)  # the matrix products ran in bfloat16
    p32, p16 = fp32.filter(like="p_").to_numpy(), bf16.filter(like="p_").to_numpy()
    assert np.allclose(p32, p16, atol=0.05) and not np.array_equal(p32, p16)


def test_precision_and_device_enter_every_run_key(fixture_data, tmp_path):
    from dataclasses import replace

    study = open_study("books_to_dvd", "smoke", fixture_data, tmp_path, progress=False)
    p = study.profile
    other = study.view(
        "x",
        replace(
            p,
            train=replace(p.train, precision="bf16"),
            source_train=replace(p.source_train, precision="bf16"),
        ),
    )
    mine = study.view("x")
    a, b = Run(mine, "all", 0.5, 0), Run(other, "all", 0.5, 0)
    assert a.config["compute"] == {"device": "cpu", "precision": "fp32"}
    assert b.config["compute"]["precision"] == precision.resolve_precision("bf16", quiet=True)
    if b.config["compute"]["precision"] == "bf16":
        assert a.key != b.key
        assert mine.source_model_dir(0) != other.source_model_dir(0)
