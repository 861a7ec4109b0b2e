"""Accept the corpus files under a test's data root on purpose, as a user would after a change.

Tests that write small or deliberately broken corpus files need their digests declared, or the
loaders refuse them before parsing: ``accept(root)`` writes ``root/SHA256SUMS`` for every file
there (a registered folder digest, such as Stormfront's all_files, as one folder line), and
``root/ROWCOUNTS`` with the rows each corpus that parses now holds (a smaller corpus accepted
on purpose; one that no longer parses keeps its count out, so its loader says why).
"""

from __future__ import annotations

from pathlib import Path

from helpers.data.corpora import CORPORA
from helpers.data.formats import CorruptFile, MissingFile
from helpers.data.integrity import ROWS, SUMS
from helpers.data.sources import read_sources
from helpers.files import sha256_file, sha256_folder


def accept(root: Path) -> Path:
    """Write ``root/SHA256SUMS`` listing every file under ``root`` as it is now."""
    root = Path(root)
    folders = {
        f"{s.folder}/{rel}": want.suffix
        for s in read_sources().values()
        for rel, want in s.folders.items()
        if (root / s.folder / rel).is_dir()
    }
    lines = [
        f"{sha256_file(p)}  ./{p.relative_to(root).as_posix()}"
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.name not in (SUMS, ROWS)
        and not any(p.relative_to(root).as_posix().startswith(f + "/") for f in folders)
    ]
    lines += [f"{sha256_folder(root / f, suffix)[0]}  ./{f}/" for f, suffix in folders.items()]
    (root / SUMS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = []
    for name, spec in CORPORA.items():
        try:
            counts.append(f"{len(spec.loader(root / spec.folder))}  {name}")
        except (MissingFile, CorruptFile):
            continue
    (root / ROWS).write_text("\n".join(counts) + "\n", encoding="utf-8")
    return root / SUMS
