"""Cluster settings: experiments.yaml's ``cluster:`` section and the flags reach the sbatch script.

submitit runs for real and writes the script; only the Slurm commands are stand-ins (this
machine has no Slurm): an ``srun`` that exists and an ``sbatch`` that answers with a job id.
"""

import os
import re
import socket
import sys

import pytest
import yaml

from helpers.__main__ import main
from helpers.config.cluster import ClusterConfig
from helpers.config.validation import check_config
from helpers.errors import UserError
from helpers.paths import EXPERIMENTS_ENV, EXPERIMENTS_FILE, ROOT
from helpers.study.ray_workers import RAY_VERSION

CLUSTER = """
cluster:
  partition: gpu
  account: lab-a
  qos: normal
  mem_gb: 32
  setup: ["module load cuda/12.4", "source /shared/venv/bin/activate"]
  sbatch: {constraint: a100, exclusive: true}
"""


@pytest.fixture(autouse=True)
def _own_config(monkeypatch):
    """--config sets $CBV_EXPERIMENTS in this process; put it back after each test (a leaked
    cluster: section once made the Ray test's task ask for 32 GB and wait forever)."""
    monkeypatch.setenv(EXPERIMENTS_ENV, str(EXPERIMENTS_FILE))


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """A PATH whose srun and sbatch stand in for Slurm's; returns the file sbatch logs calls to."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "sbatch-calls"
    bin_dir.mkdir()
    answer = f'echo "$@" >> {calls}\necho "Submitted batch job 4242"'
    for name, body in [("srun", "exit 0"), ("sbatch", answer)]:
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


def submit(tmp_path, *flags, cluster: str = "") -> list[str]:
    """Submit two smoke workers without waiting; the lines of the sbatch script submitit wrote."""
    config = tmp_path / "experiments.yaml"
    config.write_text((ROOT / "experiments.yaml").read_text() + cluster)
    argv = ["run", "--profile", "smoke", "--config", str(config), "--submitit", "2", "--no-wait"]
    assert main([*argv, "--reports-dir", str(tmp_path / "reports"), *flags]) == 0
    (script,) = (tmp_path / "reports" / "submitit").glob("**/*_submission.sh")
    return script.read_text().splitlines()


def sbatch(lines: list[str]) -> dict:
    """The script's ``#SBATCH --key=value`` lines as a mapping (a bare flag maps to True)."""
    found = (re.fullmatch(r"#SBATCH --([\w-]+)(?:=(.*))?", line) for line in lines)
    return {m[1]: m[2] if m[2] is not None else True for m in found if m}


def test_the_files_settings_reach_the_script_and_flags_override_them(tmp_path, slurm):
    lines = submit(tmp_path, "--slurm-qos", "high", "--mem-per-worker", "64", cluster=CLUSTER)
    params = sbatch(lines)
    assert params["partition"] == "gpu" and params["account"] == "lab-a"  # from the file
    assert params["qos"] == "high" and params["mem"] == "64GB"  # the flags win
    assert params["constraint"] == "a100" and params["exclusive"] is True
    assert params["array"] == "0-1%2" and params["time"] == "1440"  # one array of two jobs
    setup = lines.index("# setup")
    srun = next(i for i, line in enumerate(lines) if line.startswith("srun "))
    assert lines[setup + 1 : setup + 3] == CLUSTER_SETUP and srun > setup + 2  # before the worker
    assert slurm.read_text().count("submission_file") == 1  # sbatch was called once


CLUSTER_SETUP = ["module load cuda/12.4", "source /shared/venv/bin/activate"]


def test_flags_alone_set_setup_lines_and_sbatch_parameters(tmp_path, slurm):
    lines = submit(
        tmp_path,
        *["--slurm-account", "lab-b", "--slurm-setup", "module load gcc", "--slurm-time", "90"],
        *["--slurm-sbatch", "constraint=h100", "--slurm-sbatch", "exclusive"],
    )
    params = sbatch(lines)
    assert params["account"] == "lab-b" and params["time"] == "90"
    assert params["constraint"] == "h100" and params["exclusive"] is True
    assert "module load gcc" in lines[lines.index("# setup") :]
    assert "qos" not in params and "mem" not in params and "partition" not in params


def test_without_settings_the_script_asks_for_nothing_extra(tmp_path, slurm):
    lines = submit(tmp_path)
    assert not {"account", "qos", "mem", "partition", "constraint"} & set(sbatch(lines))
    assert "# setup" not in lines


def test_setup_flags_replace_the_files_and_sbatch_flags_merge_by_key(tmp_path, slurm):
    flags = ["--slurm-setup", "module load x", "--slurm-sbatch", "constraint=h100"]
    lines = submit(tmp_path, *flags, cluster=CLUSTER)
    setup = lines.index("# setup")
    assert lines[setup + 1] == "module load x" and CLUSTER_SETUP[0] not in lines
    params = sbatch(lines)
    assert params["constraint"] == "h100" and params["exclusive"] is True


def config_with(cluster) -> dict:
    raw = yaml.safe_load((ROOT / "experiments.yaml").read_text())
    return {**raw, "cluster": cluster}


REFUSED = [
    ({"acount": "x"}, "cluster: unknown key 'acount'; remove it or use one of: account"),
    ({"mem_gb": "32GB"}, "cluster.mem_gb: expected a whole number >= 1 or null, got '32GB'"),
    ({"mem_gb": 0}, "cluster.mem_gb: expected a whole number >= 1 or null, got 0"),
    ({"gpus_per_worker": -1}, "cluster.gpus_per_worker: expected a whole number >= 0"),
    ({"qos": 3}, "cluster.qos: expected text, got 3 (int)"),
    ({"setup": "module load cuda"}, "cluster.setup: expected a list of shell lines"),
    ({"setup": ["a\nb"]}, "must be one non-empty line"),
    ({"sbatch": {"mem": "4G"}}, "'mem' is set through mem_gb: or --mem-per-worker"),
    ({"sbatch": {"--constraint": "a100"}}, "write it without dashes"),
    ({"sbatch": {"exclusive": False}}, "cluster.sbatch.exclusive: expected text, a number"),
    ({"sbatch": ["constraint=a100"]}, "cluster.sbatch: expected a mapping of sbatch parameters"),
    ("gpu", "cluster: expected a mapping of cluster settings"),
]


@pytest.mark.parametrize("cluster, message", REFUSED, ids=[str(c) for c, _ in REFUSED])
def test_a_bad_cluster_section_is_refused_with_its_key(cluster, message):
    with pytest.raises(UserError, match=re.escape(message)):
        check_config(config_with(cluster), "experiments.yaml")


def test_the_docs_example_section_is_valid():
    page = (ROOT / "docs" / "scale-out.md").read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", page, re.S)[1])["cluster"]
    check_config(config_with(example), "docs/scale-out.md")
    assert ClusterConfig.from_yaml(example).sbatch == (("constraint", "a100"), ("exclusive", True))


def test_an_empty_cluster_section_is_the_defaults():
    assert check_config(config_with(None), "x")["cluster"] is None


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--slurm-sbatch", "time=10"], "'time' is set through time_min: or --slurm-time"),
        (["--slurm-sbatch", "=x"], "'' is not a parameter name"),
        (["--slurm-setup", ""], "must be one non-empty line"),
        (["--mem-per-worker", "0"], "cluster setting mem_gb must be a whole number >= 1"),
        (["--ray", "2"], "choose one of --submitit and --ray"),
    ],
)
def test_a_bad_cluster_flag_is_one_line(flags, message, capsys, tmp_path):
    argv = ["run", "--profile", "smoke", "--submitit", "1", "--reports-dir", str(tmp_path)]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_ray_names_the_pinned_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where it is absent
    assert main(["run", "--profile", "smoke", "--ray", "2", "--reports-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --ray needs the ray package: pip install ray=={RAY_VERSION}\n"


def test_a_ray_address_where_nothing_answers_is_one_line(capsys, tmp_path):
    with socket.socket() as s:  # a port just freed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["run", "--profile", "smoke", "--reports-dir", str(tmp_path), "--ray", "2"]
    assert main([*argv, "--ray-address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"nothing answers at the Ray address 127.0.0.1:{port}" in err and err.count("\n") == 1


def test_the_ray_pin_is_the_requirements_pin():
    pins = dict(
        line.split("#")[0].strip().split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    assert pins["ray"] == RAY_VERSION
