"""Downloads against a local HTTP mirror built from the fixture corpora in the published layout.

The registry's digests are those of the real files; here the downloader checks the fixture
files' own digests instead (``fixture_sources``), so every byte served is still verified.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import os
import shutil
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from helpers.__main__ import main
from helpers.data import download
from helpers.data.corpora import CORPORA, load_corpus
from helpers.data.download import download_corpora, missing_paths
from helpers.data.sources import FolderDigest
from helpers.data.sources import read_sources as real_sources
from helpers.errors import UserError
from helpers.files import sha256_file, sha256_folder

AMAZON = [n for n in CORPORA if n.startswith("amazon_")]
STORMFRONT_TOP = "hate-speech-dataset-master/"  # the top folder of GitHub's branch zip
FIXTURE_ROOT = Path(__file__).resolve().parent / "fixtures" / "data"
STORMFRONT_FILE = "30086175_1.txt"  # one sentence file of the fixture Stormfront corpus


@functools.cache
def fixture_sources() -> dict:
    """data/sources.toml with every digest replaced by that of the fixture file or folder."""
    out = {}
    for name, s in real_sources().items():
        base = FIXTURE_ROOT / s.folder
        files = {p: sha256_file(base / p) for p in s.files}
        folders = {
            p: FolderDigest(*sha256_folder(base / p, d.suffix), d.suffix)
            for p, d in s.folders.items()
        }
        out[name] = dataclasses.replace(s, files=files, folders=folders)
    return out


def read_sources() -> dict:
    return fixture_sources()


@pytest.fixture(scope="module", autouse=True)
def _verify_against_fixture_digests():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(download, "read_sources", read_sources)
        yield


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def build_mirror(
    corpora: Path,
    dest: Path,
    tamper: str | None = None,
    folders=("tweeteval", "davidson", "amazon_multidomain", "stormfront"),
) -> Path:
    """Lay out ``dest`` as the mirror rule expects: plain files and the two archives.

    tamper: a path under the data root whose served copy gets one byte changed.
    folders: the corpus folders to build (the Stormfront zip takes a second).
    """

    def content(rel: str) -> bytes:
        data = (corpora / rel).read_bytes()
        return data[:-1] + bytes([data[-1] ^ 1]) if rel == tamper else data

    for s in read_sources().values():
        if s.format == "file" and s.folder in folders:
            for p in s.files:
                out = dest / s.folder / p
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(content(f"{s.folder}/{p}"))
    if "amazon_multidomain" in folders:
        build_amazon_tar(corpora, dest, content)
    if "stormfront" in folders:
        build_stormfront_zip(corpora, dest, content)
    return dest


def build_amazon_tar(corpora: Path, dest: Path, content) -> None:
    tar_path = dest / "amazon_multidomain" / "domain_sentiment_data.tar.gz"
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz", compresslevel=1) as tf:
        for rel in sorted((corpora / "amazon_multidomain").rglob("*.review")):
            member = rel.relative_to(corpora / "amazon_multidomain").as_posix()
            write_tar_member(tf, member, content(f"amazon_multidomain/{member}"))
        # The published archive also holds unlabeled reviews: they must be skipped.
        write_tar_member(tf, "sorted_data_acl/books/unlabeled.review", b"<review></review>\n")


def build_stormfront_zip(corpora: Path, dest: Path, content) -> None:
    zip_path = dest / "stormfront" / "master.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(STORMFRONT_TOP + "README.md", "not wanted\n")
        zf.writestr(STORMFRONT_TOP + "sampled_test/1_1.txt", "not wanted\n")
        zf.writestr(
            STORMFRONT_TOP + "annotations_metadata.csv",
            content("stormfront/annotations_metadata.csv"),
        )
        for f in sorted((corpora / "stormfront" / "all_files").iterdir()):
            zf.writestr(
                STORMFRONT_TOP + "all_files/" + f.name, content(f"stormfront/all_files/{f.name}")
            )


def write_tar_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def serve():
    """Serve folders over HTTP on 127.0.0.1; returns a function folder -> base URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    with pytest.MonkeyPatch.context() as mp:
        # A proxy set in the environment must not intercept the local server.
        for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            mp.delenv(var, raising=False)
        yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def mirror(fixture_data, serve, tmp_path_factory) -> str:
    return serve(build_mirror(fixture_data, tmp_path_factory.mktemp("mirror")))


@pytest.fixture(scope="module")
def downloaded(mirror, tmp_path_factory) -> tuple[Path, list[Path]]:
    """Every corpus fetched once from the mirror into a fresh data root."""
    root = tmp_path_factory.mktemp("data_root")
    return root, download_corpora(data_root=root, base_url=mirror)


def no_leftovers(root: Path) -> bool:
    return not list(root.glob(".download-*")) and not list(root.rglob("*.part"))


# ---------------------------------------------------------------- the registry


@pytest.mark.real_data
def test_sources_match_the_mirror_digests(shared_data):
    listed = {}
    for line in (shared_data / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        listed[path.removeprefix("./")] = digest
    registry = {f"{s.folder}/{p}": d for s in real_sources().values() for p, d in s.files.items()}
    assert registry == listed
    for name, s in real_sources().items():
        assert missing_paths(s, shared_data) == ([], []), name


def test_mirror_rule():
    s = read_sources()
    assert (
        s["davidson"].address("data/labeled_data.csv", "http://m/x/")
        == "http://m/x/davidson/data/labeled_data.csv"
    )
    assert s["stormfront"].address(base_url="http://m") == "http://m/stormfront/master.zip"
    assert (
        s["amazon_dvd"].address(base_url="http://m")
        == "http://m/amazon_multidomain/domain_sentiment_data.tar.gz"
    )
    assert s["tweeteval_hate"].address("datasets/hate/val_text.txt") == (
        "https://raw.githubusercontent.com/cardiffnlp/tweeteval/main/datasets/hate/val_text.txt"
    )


def test_unknown_corpus_lists_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match="unknown corpus 'imdb'.*davidson"):
        download_corpora(["imdb"], data_root=tmp_path)


# ---------------------------------------------------------------- a full download


def test_files_land_in_the_published_layout(downloaded, fixture_data):
    root, written = downloaded
    expected = {
        root / s.folder / p for s in read_sources().values() for p in [*s.files, *s.folders]
    }
    assert set(written) == expected
    for s in read_sources().values():
        for p, digest in s.files.items():
            assert sha256_file(root / s.folder / p) == digest
        for p in s.folders:
            assert sorted(os.listdir(root / s.folder / p)) == sorted(
                os.listdir(fixture_data / s.folder / p)
            )
    assert not (root / "amazon_multidomain/sorted_data_acl/books/unlabeled.review").exists()
    assert not (root / "stormfront/README.md").exists()
    assert no_leftovers(root)


def test_downloaded_corpora_load(downloaded, fixture_data, tmp_path):
    # The fixtures' own digests and row counts, as a user lists accepted files and sizes:
    # loading verifies against them.
    root = tmp_path / "root"
    shutil.copytree(downloaded[0], root)
    for name in ("SHA256SUMS", "ROWCOUNTS"):
        shutil.copy(fixture_data / name, root / name)
    for name in ("stormfront", "amazon_kitchen", "tweeteval_offensive"):
        mine = load_corpus(name, "test", data_root=root).frame
        theirs = load_corpus(name, "test", data_root=fixture_data).frame
        assert mine.equals(theirs)


def test_second_run_downloads_nothing(downloaded, mirror, capsys):
    root, _ = downloaded
    assert download_corpora(data_root=root, base_url=mirror) == []
    out = capsys.readouterr().out
    assert "already present, digest ok" in out and "nothing to download" in out
    assert "fetching" not in out


def test_cli_download(downloaded, mirror, capsys):
    root, _ = downloaded
    assert (
        main(["download", "--corpora", "davidson", "--data-dir", str(root), "--base-url", mirror])
        == 0
    )
    assert (
        main(
            [
                "download",
                "--corpora",
                "davidson",
                "--data-dir",
                str(root),
                "--base-url",
                mirror + "/nowhere",
            ]
        )
        == 0
    )  # present already: nothing fetched


# ---------------------------------------------------------------- repairs and refusals


def test_a_corrupt_local_file_is_replaced(mirror, tmp_path):
    download_corpora(["davidson"], data_root=tmp_path, base_url=mirror)
    target = tmp_path / "davidson" / "data" / "labeled_data.csv"
    target.write_text("truncated")
    assert download_corpora(["davidson"], data_root=tmp_path, base_url=mirror) == [target]
    assert sha256_file(target) == read_sources()["davidson"].files["data/labeled_data.csv"]


def test_a_damaged_stormfront_folder_is_replaced_whole(mirror, tmp_path):
    download_corpora(["stormfront"], data_root=tmp_path, base_url=mirror)
    folder = tmp_path / "stormfront" / "all_files"
    (folder / STORMFRONT_FILE).write_text("changed")
    (folder / "stray.txt").write_text("extra")
    assert download_corpora(["stormfront"], data_root=tmp_path, base_url=mirror) == [folder]
    want = read_sources()["stormfront"].folders["all_files"]
    assert sha256_folder(folder) == (want.sha256, want.count)
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "tamper,names",
    [
        ("davidson/data/labeled_data.csv", ["davidson"]),
        ("amazon_multidomain/sorted_data_acl/dvd/positive.review", AMAZON),
        ("stormfront/all_files/" + STORMFRONT_FILE, ["stormfront"]),
    ],
)
def test_a_tampered_file_is_rejected_and_nothing_is_placed(
    fixture_data, serve, tmp_path, tamper, names
):
    folder = tamper.split("/")[0]
    base = serve(build_mirror(fixture_data, tmp_path / "mirror", tamper, folders=(folder,)))
    root = tmp_path / "root"
    with pytest.raises(UserError) as e:
        download_corpora(names, data_root=root, base_url=base)
    message = str(e.value)
    assert "SHA-256 mismatch" in message and "expected" in message and "got" in message
    assert Path(tamper).parent.name in message  # names the file or folder
    placed = [p for p in root.rglob("*") if p.is_file()]
    assert placed == [] and no_leftovers(root)


def test_a_missing_address_is_a_clear_error(serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = serve(empty)
    with pytest.raises(
        UserError,
        match=r"could not fetch .*/davidson/data/labeled_data.csv: "
        r"HTTP 404",
    ):
        download_corpora(["davidson"], data_root=tmp_path / "root", base_url=base)
    with pytest.raises(UserError, match=r"HTTP 404"):
        download_corpora(["amazon_books"], data_root=tmp_path / "root", base_url=base)
    assert (
        main(
            [
                "download",
                "--corpora",
                "davidson",
                "--data-dir",
                str(tmp_path / "root"),
                "--base-url",
                base,
            ]
        )
        == 2
    )
    assert no_leftovers(tmp_path / "root")


def test_a_broken_archive_is_a_clear_error(serve, tmp_path):
    mirror = tmp_path / "broken"
    for folder, name in (
        ("amazon_multidomain", "domain_sentiment_data.tar.gz"),
        ("stormfront", "master.zip"),
    ):
        (mirror / folder).mkdir(parents=True)
        (mirror / folder / name).write_text("<html>rate limited</html>")
    base = serve(mirror)
    for names in (["amazon_books"], ["stormfront"]):
        with pytest.raises(UserError, match="is not a readable .* archive"):
            download_corpora(names, data_root=tmp_path / "root", base_url=base)
    assert no_leftovers(tmp_path / "root")
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]


# ---------------------------------------------------------------- on the fixture corpora

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "data"
DAVIDSON = "davidson/data/labeled_data.csv"


def fixture_root(path: Path) -> Path:
    """An empty data root that expects the fixture corpora: their SHA256SUMS and ROWCOUNTS,
    no files."""
    path.mkdir(parents=True)
    for name in ("SHA256SUMS", "ROWCOUNTS"):
        shutil.copy(FIXTURES / name, path / name)
    return path


def test_experiments_fetch_only_their_corpora(serve, tmp_path):
    base = serve(build_mirror(FIXTURES, tmp_path / "mirror", folders=("tweeteval", "davidson")))
    root = fixture_root(tmp_path / "root")
    argv = ["download", "--experiments", "offensive_to_davidson", "--data-dir", str(root)]
    assert main([*argv, "--base-url", base]) == 0
    assert (root / DAVIDSON).is_file() and (root / "tweeteval/datasets/offensive").is_dir()
    assert (
        not (root / "tweeteval/datasets/hate").exists()
        and not (root / "amazon_multidomain").exists()
    )
    assert len(load_corpus("davidson", "test", "offensive", data_root=root).frame) > 0
    assert main(["download", "--experiments", "--data-dir", str(root)]) == 2  # no names


def test_a_changed_upstream_file_is_accepted_through_sha256sums(serve, tmp_path):
    base = serve(build_mirror(FIXTURES, tmp_path / "mirror", DAVIDSON, folders=("davidson",)))
    root = fixture_root(tmp_path / "root")
    with pytest.raises(UserError) as e:
        download_corpora(["davidson"], data_root=root, base_url=base)
    message = str(e.value)
    want = (FIXTURES / DAVIDSON).read_bytes()
    served = want[:-1] + bytes([want[-1] ^ 1])
    got = hashlib.sha256(served).hexdigest()
    assert hashlib.sha256(want).hexdigest() in message and got in message
    assert f"{base}/{DAVIDSON}" in message and "SHA256SUMS" in message
    assert not (root / DAVIDSON).exists() and no_leftovers(root)
    # The user accepts the new file on purpose: its line in the data root's SHA256SUMS.
    sums = root / "SHA256SUMS"
    lines = [ln for ln in sums.read_text().splitlines() if not ln.endswith(DAVIDSON)]
    sums.write_text("\n".join([*lines, f"{got}  ./{DAVIDSON}"]) + "\n")
    assert download_corpora(["davidson"], data_root=root, base_url=base) == [root / DAVIDSON]
    assert sha256_file(root / DAVIDSON) == got
    assert len(load_corpus("davidson", "train", data_root=root).frame) > 0


def test_offline_the_error_names_data_dir_and_leaves_no_empty_folder(tmp_path, capsys):
    root = tmp_path / "raw"
    closed = "http://127.0.0.1:9/"  # nothing listens: as offline as this machine gets
    code = main(["download", "--corpora", "tweeteval_hate", "--data-dir", str(root),
                 "--base-url", closed])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "DATA_DIR=" in err and "--data-dir" in err
    assert not root.exists()  # the folders it made for the fetch are gone again
