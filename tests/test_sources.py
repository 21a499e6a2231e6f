"""Pinned upstream sources: found in TINYEDGE_SOURCES_DIR, unpacked once into the cache, never fetched then."""

from __future__ import annotations

import lzma
import tarfile

import pytest

from tinyedge import sources
from tinyedge.sources import SourceError, source_tree


def _make_archive(folder, stem):
    tree = folder / "src" / stem
    tree.mkdir(parents=True)
    (tree / "README").write_text("hello\n")
    archive = folder / f"{stem}.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(tree, arcname=stem)
    return archive


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TINYEDGE_SOURCES_DIR", str(local))
    return local


def test_archive_is_unpacked_once_into_the_cache(isolated, tmp_path):
    stem = sources.get_source("ruy").stem
    archive = _make_archive(tmp_path, stem)
    archive.rename(isolated / archive.name)
    tree = source_tree("ruy")
    assert tree == tmp_path / "cache" / "tinyedge" / "sources" / stem
    assert (tree / "README").read_text() == "hello\n"
    (isolated / archive.name).unlink()   # the cache answers from now on
    assert source_tree("ruy") == tree
    assert not [p for p in tree.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_unpacked_tree_in_sources_dir_is_used_as_is(isolated):
    stem = sources.get_source("gemmlowp").stem
    (isolated / stem).mkdir()
    assert source_tree("gemmlowp") == isolated / stem


def test_missing_archive_never_fetches(isolated, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("fetched although TINYEDGE_SOURCES_DIR is set")

    monkeypatch.setattr(sources.urllib.request, "urlopen", no_network)
    with pytest.raises(SourceError, match=r"has no kissfft-130\.tar\.xz"):
        source_tree("kissfft")


def test_unknown_source_and_bad_folder(tmp_path, monkeypatch):
    with pytest.raises(Exception, match="unknown upstream source"):
        source_tree("nope")
    monkeypatch.setenv("TINYEDGE_SOURCES_DIR", str(tmp_path / "absent"))
    with pytest.raises(SourceError, match="is not a folder"):
        source_tree("ruy")


def test_pins_match_the_shared_archives(shared_sources):
    """Every pin names an archive that is there, and its git commit is the one pinned."""
    for src in sources.SOURCES.values():
        archive = shared_sources / f"{src.stem}.tar.xz"
        assert archive.is_file(), archive
        with lzma.open(archive) as f:
            head = f.read(1024)  # git archive's pax header names the commit
        if len(src.ref) == 40:
            assert src.ref.encode() in head, src.name
