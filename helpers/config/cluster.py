"""Where worker jobs run: their resources and Slurm settings, a frozen, self-validating config.

Read from the optional ``cluster:`` section of experiments.yaml (its schema is checked in
``helpers.config.validation``); each ``run`` flag overrides its key. Nothing here enters a run's
key: where a run is computed does not change what it computes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from helpers.errors import UserError

TEXT = ("partition", "account", "qos")
# Whole-number settings: the least value each takes, and whether null (the default) is allowed.
WHOLE = {
    "time_min": (1, False),
    "mem_gb": (1, True),
    "gpus_per_worker": (0, False),
    "cpus_per_worker": (1, True),
}
# sbatch parameters that have a setting of their own here: written twice, one would be lost.
OWN = {
    "partition": "set through partition: or --slurm-partition",
    "account": "set through account: or --slurm-account",
    "qos": "set through qos: or --slurm-qos",
    "time": "set through time_min: or --slurm-time",
    "mem": "set through mem_gb: or --mem-per-worker",
    "gpus-per-node": "set through gpus_per_worker: or --gpus-per-worker",
    "cpus-per-task": "set through cpus_per_worker: or --cpus-per-worker",
    "array": "set by the worker count (--submitit N)",
    "job-name": "set by helpers (the jobs are named cbv-run)",
}


@dataclass(frozen=True)
class ClusterConfig:
    """Resources and Slurm settings of each worker job (``--submitit``) or task (``--ray``)."""

    partition: str | None = None  # Slurm partition; None: the cluster's default
    account: str | None = None  # Slurm account the jobs are charged to (sbatch --account)
    qos: str | None = None  # Slurm quality of service (sbatch --qos)
    time_min: int = 24 * 60  # minutes per job; a worker cut off is taken over by another
    mem_gb: int | None = None  # memory per worker (Slurm --mem, Ray's memory); None: default
    gpus_per_worker: int = 0  # one run uses one device, so 1 on a GPU cluster
    cpus_per_worker: int | None = None  # None: Slurm's default, one CPU per Ray task
    setup: tuple[str, ...] = ()  # shell lines before each Slurm worker: module load, source
    sbatch: tuple[tuple[str, str | bool], ...] = ()  # further sbatch parameters; True: a bare flag

    def __post_init__(self):
        for name in TEXT:
            value = getattr(self, name)
            if value is not None and (not value.strip() or not value.isprintable()):
                raise UserError(f"cluster setting {name} must be a name, got {value!r}")
        for name, (low, null) in WHOLE.items():
            value = getattr(self, name)
            if not (value is None and null) and (value is None or value < low):
                raise UserError(f"cluster setting {name} must be a whole number >= {low}")
        for line in self.setup:
            if not line.strip() or not line.isprintable():
                raise UserError(
                    f"cluster setup line {line!r} must be one non-empty line; give each "
                    "shell command as its own line"
                )
        for key, value in self.sbatch:
            _check_sbatch(key, value)

    @classmethod
    def from_yaml(cls, section: dict | None) -> ClusterConfig:
        """The settings of a checked ``cluster:`` section (None or absent: the defaults)."""
        section = dict(section or {})
        if "setup" in section:
            section["setup"] = tuple(section["setup"])
        if "sbatch" in section:
            pairs = section["sbatch"].items()
            section["sbatch"] = tuple((k, v if v is True else str(v)) for k, v in pairs)
        return cls(**section)

    def override(self, **given) -> ClusterConfig:
        """These settings with each value given (not None) in place of its own.

        ``setup`` lines replace the file's; ``sbatch`` parameters replace those of the same key.
        """
        given = {k: v for k, v in given.items() if v is not None}
        if "setup" in given:
            given["setup"] = tuple(given["setup"])
        if "sbatch" in given:
            merged = dict(self.sbatch) | dict(given["sbatch"])
            given["sbatch"] = tuple(merged.items())
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"not cluster settings: {', '.join(sorted(unknown))}")
        return replace(self, **given)


def sbatch_pair(text: str) -> tuple[str, str | bool]:
    """``--slurm-sbatch KEY=VALUE`` (or a bare ``KEY`` for a flag) as a checked pair."""
    key, equals, value = text.partition("=")
    pair = (key.strip(), value if equals else True)
    _check_sbatch(*pair)
    return pair


def _check_sbatch(key: str, value) -> None:
    ok = key and key.replace("-", "").replace("_", "").isalnum() and key.isascii()
    if not ok or key[0] == "-":
        raise UserError(
            f"sbatch parameter {key!r} is not a parameter name; write it without dashes, "
            "e.g. constraint=a100 or exclusive"
        )
    own = OWN.get(key.replace("_", "-"))
    if own:
        raise UserError(f"sbatch parameter {key!r} is {own}; remove it from the sbatch parameters")
    if value is not True and (not str(value) or not str(value).isprintable()):
        raise UserError(f"sbatch parameter {key!r} needs a one-line value, got {value!r}")
