"""numba's compiled-code cache for librosa, safe when many processes fit at once.

librosa's beat tracker and peak picking are compiled by numba on first use (about 20 s).
numba's on-disk cache is not safe for concurrent writers: two processes that compile the
same functions into one directory can leave an index that points at another process's
machine code, and every later process that loads it crashes (segfault). So:

- the shared root is `NUMBA_CACHE_DIR` as the user set it, else `HAFM_CACHE_DIR/numba`; under
  it, one folder per (python, numba, librosa) version, `<key>/`;
- every process compiles into, and loads from, its own private folder `<key>/proc/<host>-<pid>-*`
  (removed when the process exits; folders of dead processes are removed by the next one);
- a private folder starts as a copy of `<key>/published/` when that exists, so only the
  first process pays the compilation;
- `publish_numba_cache()`, called after a successful fit, copies the private folder to a
  temporary folder and renames it to `<key>/published/` under a file lock, once: the rename
  is atomic, and a published folder is never written again (readers copy it).

`configure_numba_cache()` runs when `hafm_core.fit` is imported, before librosa compiles
anything: numba reads its cache folder when a function is decorated, and librosa's jitted
functions are decorated on the first import of their module. A process that imported
librosa before `hafm_core.fit` keeps numba's own setting.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT_VARIABLE = "HAFM_NUMBA_CACHE_ROOT"  # the shared root, passed on to child processes
_private: Path | None = None
_published = False


def _version_key() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return f"{python}-numba{installed('numba')}-librosa{installed('librosa')}"


def cache_root() -> Path:
    from hafm_core.config import cache_dir

    root = os.environ.get(ROOT_VARIABLE) or os.environ.get("NUMBA_CACHE_DIR") or str(cache_dir() / "numba")
    return Path(root)


def _remove_dead(proc_dir: Path) -> None:
    host = socket.gethostname()
    for folder in proc_dir.glob(f"{host}-*"):
        try:
            pid = int(folder.name[len(host) + 1:].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def configure_numba_cache() -> Path:
    """Point numba at this process's private cache folder (once per process); returns it."""
    global _private
    if _private is not None:
        return _private
    root = cache_root()
    os.environ[ROOT_VARIABLE] = str(root)
    versioned = root / _version_key()
    proc_dir = versioned / "proc"
    proc_dir.mkdir(parents=True, exist_ok=True)
    _remove_dead(proc_dir)
    private = Path(tempfile.mkdtemp(prefix=f"{socket.gethostname()}-{os.getpid()}-", dir=proc_dir))
    published = versioned / "published"
    if published.is_dir():
        shutil.copytree(published, private, dirs_exist_ok=True)
    atexit.register(shutil.rmtree, private, True)
    os.environ["NUMBA_CACHE_DIR"] = str(private)
    if "numba" in sys.modules:  # numba read the variable already; functions decorated later use this
        from numba.core import config

        config.CACHE_DIR = str(private)
    _private = private
    return private


def publish_numba_cache() -> bool:
    """Publish this process's compiled functions for the next processes, if none are; True if it did."""
    global _published
    if _published or _private is None or not any(_private.rglob("*.nbi")):
        return False
    import fcntl

    versioned = _private.parent.parent
    published = versioned / "published"
    with open(versioned / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _published = True
        if published.exists():
            return False
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=versioned))
        try:
            shutil.copytree(_private, staging, dirs_exist_ok=True)
            os.rename(staging, published)  # atomic: readers see all of it or nothing
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return False
    return True


def prepare_numba_cache() -> Path:
    """The private folder in use (configured on first call)."""
    return configure_numba_cache()
