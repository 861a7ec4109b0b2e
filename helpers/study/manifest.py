"""A stored run's manifest: its configuration, its key and the SHA-256 of every table it holds.

``manifest.json`` is written last and atomically, so it exists only for a finished run, and it
is the only thing a reader trusts: a run whose manifest is absent, unreadable, of another key,
or lists a table whose bytes changed (truncated, edited, missing) is not read but redone. The
run's identity (method, delta, seed ...) comes from the manifest's config, never from the
editable ``config.json`` beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.files import sha256_cached, write_json

MANIFEST = "manifest.json"


def table_file(name: str) -> str:
    """The file name of a stored table."""
    return f"{name}.parquet"


def write_manifest(folder: Path, config: dict, key: str, names) -> None:
    """List the run's tables with their digests, beside its config and key (atomically)."""
    files = {table_file(n): sha256_cached(folder / table_file(n)) for n in names}
    write_json(folder / MANIFEST, {"key": key, "config": config, "files": files})


def read_manifest(folder: Path) -> dict | None:
    """The manifest as written, or None when the file is absent or not a manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not {"key", "config", "files"} <= set(manifest):
        return None
    return manifest


def problem(folder: Path) -> str | None:
    """Why the run in ``folder`` cannot be trusted, or None when its manifest verifies."""
    if not (folder / MANIFEST).exists():
        return "no manifest (an interrupted run)"
    manifest = read_manifest(folder)
    if manifest is None:
        return f"{MANIFEST} is unreadable"
    if manifest["key"] != folder.name:
        return f"{MANIFEST} holds key {manifest['key']}, not the folder's {folder.name}"
    for name, digest in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        got = sha256_cached(path)
        if got != digest:
            return f"{name} has SHA-256 {got}, the manifest lists {digest}"
    return None
