"""Pinned upstream sources that tinyedge builds from (TFLite Micro, CMSIS-NN, MicroPython, ...).

One table, `SOURCES`, names each dependency's upstream repository and the
exact commit or tag tinyedge is tested with.  `source_tree(name)` returns an
unpacked tree of it, found in this order:

1. `$TINYEDGE_SOURCES_DIR/<name>-<version>/` (an unpacked tree, used as is),
   or `$TINYEDGE_SOURCES_DIR/<name>-<version>.tar.xz` (or `.tar.gz`), unpacked
   once into tinyedge's cache.  With `TINYEDGE_SOURCES_DIR` set, nothing is
   fetched: a missing archive is an error that names the file expected.
2. The cache (`$XDG_CACHE_HOME/tinyedge/sources/<name>-<version>/`), filled
   by an earlier call.
3. The upstream archive of that commit, downloaded once into the cache (as a
   CMake FetchContent would), unless `fetch=False`.

Trees are unpacked to a temporary folder and renamed into place, so an
interrupted unpack never leaves half a tree in the cache.  Callers that patch
a tree (TFLite Micro's flatbuffers patch, say) patch a copy of their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import TinyedgeError, UsageError

log = logging.getLogger(__name__)

ENV_VAR = "TINYEDGE_SOURCES_DIR"


@dataclass(frozen=True)
class Source:
    name: str        # the stem of archives and cache folders: "<name>-<version>"
    version: str     # short commit or tag, as in the archive's name
    repo: str        # GitHub "owner/name"
    ref: str         # full commit hash or tag
    license: str

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def git_url(self) -> str:
        return f"https://github.com/{self.repo}.git"

    @property
    def archive_url(self) -> str:
        return f"https://github.com/{self.repo}/archive/{self.ref}.tar.gz"


def _s(name, version, repo, ref, license):
    return name, Source(name, version, repo, ref, license)


# TFLite Micro and the versions its own download scripts name at that commit
# (tensorflow/lite/micro/tools/make/*_download.sh, third_party_downloads.inc).
SOURCES: dict[str, Source] = dict([
    _s("tflite-micro", "90b983c2", "tensorflow/tflite-micro", "90b983c2b3f1480642e040bbd2ddb37b998f3424",
       "Apache-2.0"),
    _s("flatbuffers", "25.9.23", "google/flatbuffers", "v25.9.23", "Apache-2.0"),
    _s("gemmlowp", "719139ce", "google/gemmlowp", "719139ce755a0f31cbf1c37f7f98adcc7fc9f425", "Apache-2.0"),
    _s("ruy", "d3712831", "google/ruy", "d37128311b445e758136b8602d1bbd2a755e115d", "Apache-2.0"),
    _s("CMSIS-NN", "4ab83cc3", "ARM-software/CMSIS-NN", "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae", "Apache-2.0"),
    _s("CMSIS_6", "5782d6f8", "ARM-software/CMSIS_6", "5782d6f8057906d360f4b95ec08a2354afe5c9b9", "Apache-2.0"),
    _s("Cortex_DFP", "c2c70a97", "ARM-software/Cortex_DFP", "c2c70a97a20fb355815e2ead3d4a40e35a4a3cdf",
       "Apache-2.0"),
    _s("kissfft", "130", "mborgerding/kissfft", "v130", "BSD-3-Clause"),
    _s("micropython", "1.28.0", "micropython/micropython", "v1.28.0", "MIT"),
])


class SourceError(TinyedgeError):
    """A pinned upstream source that cannot be found or fetched."""


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise UsageError(f"unknown upstream source {name!r}", hint=f"use one of: {', '.join(SOURCES)}")
    return SOURCES[name]


def local_sources_dir() -> Path | None:
    """The folder named by TINYEDGE_SOURCES_DIR, or None when the variable is unset or empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise SourceError(f"{ENV_VAR}={value} is not a folder",
                          hint="point it at a folder holding the source archives, or unset it")
    return path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyedge" / "sources"


def source_tree(name: str, *, fetch: bool = True) -> Path:
    """An unpacked tree of pinned source `name` (see the module docstring for where it comes from)."""
    src = get_source(name)
    local = local_sources_dir()
    cached = cache_dir() / src.stem
    if local is not None:
        tree = local / src.stem
        if tree.is_dir():
            return tree
        if _complete(cached):
            return cached
        for ext in (".tar.xz", ".tar.gz", ".tgz"):
            archive = local / (src.stem + ext)
            if archive.is_file():
                return _unpack(archive, cached)
        raise SourceError(f"{local} has no {src.stem}.tar.xz nor {src.stem}/ ({ENV_VAR} is set, so nothing "
                          "is fetched)", hint=f"put {src.name} {src.ref} there ({src.git_url}), or unset {ENV_VAR}")
    if _complete(cached):
        return cached
    if not fetch:
        raise SourceError(f"{src.stem} is not in tinyedge's cache ({cached})",
                          hint=f"set {ENV_VAR} to a folder holding {src.stem}.tar.xz")
    return _download(src, cached)


def _complete(tree: Path) -> bool:
    return (tree / ".tinyedge-unpacked").is_file()


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack `archive` (one top-level folder) to `dest` through a temporary folder and a rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("unpacking %s into %s", archive.name, dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        tops = [p for p in tmp.iterdir() if p.name != "pax_global_header"]
        if len(tops) != 1 or not tops[0].is_dir():
            raise SourceError(f"{archive} does not hold one top-level folder",
                              hint="use an archive made by 'git archive --prefix=NAME/'")
        (tops[0] / ".tinyedge-unpacked").write_text(str(archive) + "\n")
        if dest.exists():  # another process finished first, or an incomplete earlier tree
            if _complete(dest):
                return dest
            shutil.rmtree(dest)
        try:
            os.rename(tops[0], dest)
        except OSError:
            if not _complete(dest):
                raise
        return dest
    except (tarfile.TarError, OSError) as e:
        raise SourceError(f"cannot unpack {archive}: {e}", hint="check the archive, or fetch it again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(src: Source, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s %s from %s", src.name, src.ref, src.archive_url)
    fd, tmp = tempfile.mkstemp(prefix=f".{src.stem}.", suffix=".tar.gz", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(src.archive_url, timeout=60) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        return _unpack(Path(tmp), dest)
    except OSError as e:
        raise SourceError(f"cannot fetch {src.name} {src.ref} from {src.archive_url} ({e})",
                          hint=f"with no network, set {ENV_VAR} to a folder holding {src.stem}.tar.xz") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


__all__ = ["SOURCES", "Source", "SourceError", "source_tree", "get_source", "local_sources_dir", "cache_dir",
           "ENV_VAR"]
