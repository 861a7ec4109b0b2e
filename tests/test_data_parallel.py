"""Data parallelism is exact: two processes (torchrun, gloo) train what one process trains.

With dropout off, the only difference between one process on a batch of 16 and two processes on
8 examples each is where the gradient is summed: DDP averages the two half-batch gradients,
which equals the full-batch mean for equal halves. So the losses, the chosen checkpoint and the
trained weights must agree to float rounding. Without the averaging (or with a rank training
alone) they would not. Both the full-model path and the cached frozen-prefix path are checked.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

from helpers.paths import ROOT

pytestmark = pytest.mark.slow
TORCHRUN = Path(sys.executable).with_name("torchrun")
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd, torch
    from safetensors.torch import save_file
    from helpers.data.encoding import encode
    from helpers.models.layers import layer_groups
    from helpers.models.loading import load_classifier, load_tokenizer
    from helpers.config.settings import TrainConfig
    from helpers.training.checkpoints import trainable_state
    from helpers.training.engine import fit
    from helpers.training.plan import subset_plan
    from helpers.training.ranks import is_main

    out = sys.argv[1]
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    def toy(n, seed):
        rng = np.random.default_rng(seed)
        rows = [{"id": f"{seed}-{i}", "text": " ".join(rng.choice(words, 5)), "source": "toy"}
                for i in range(n)]
        frame = pd.DataFrame(rows)
        frame["label"] = [int(sum(w in t.split() for w in words[:3]) > 2) for t in frame.text]
        return frame
    tok = load_tokenizer("tiny-bert-2")
    train, val = encode(toy(64, 0), tok, 16), encode(toy(32, 1), tok, 16)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-3, evals_per_epoch=2)
    for name, groups in {"all": ["embeddings", "all"], "last1": ["last:1", "head"]}.items():
        model = load_classifier("tiny-bert-2", ("neg", "pos"), seed=0)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0  # dropout masks would differ per shard
        plan = subset_plan(model, layer_groups(model).select_many(groups))
        result = fit(model, train, val, ("neg", "pos"), cfg, plan, progress=False)
        if is_main():
            save_file(trainable_state(model), f"{out}/{name}.safetensors")
            losses = result.history.query("split == 'train'")["value"].tolist()
            json.dump({"losses": losses, "best_step": result.best_step},
                      open(f"{out}/{name}.json", "w"))
    """
)


def train(out: Path, processes: int) -> None:
    out.mkdir()
    if processes == 1:
        cmd = [sys.executable, "-c", SCRIPT, str(out)]
    else:
        script = out / "script.py"
        script.write_text(SCRIPT)
        cmd = [str(TORCHRUN), "--nproc_per_node", str(processes), str(script), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
def test_two_processes_train_what_one_trains(tmp_path):
    import json

    train(tmp_path / "one", 1)
    train(tmp_path / "two", 2)
    for name in ("all", "last1"):
        one = json.loads((tmp_path / "one" / f"{name}.json").read_text())
        two = json.loads((tmp_path / "two" / f"{name}.json").read_text())
        assert two["best_step"] == one["best_step"]
        assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)
        a = load_file(tmp_path / "one" / f"{name}.safetensors")
        b = load_file(tmp_path / "two" / f"{name}.safetensors")
        assert a.keys() == b.keys()
        worst = max(float((a[k] - b[k]).abs().max()) for k in a)
        assert worst < 1e-4, f"{name}: weights differ by {worst}"
