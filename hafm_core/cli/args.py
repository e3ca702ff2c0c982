"""Argument types and output-path checks shared by every `hafm` command.

Each type is an argparse `type=` callable: a bad value makes argparse exit 2 with one line
naming the option and what would be valid. Output checks run before any work starts, so a
command that cannot write its result fails in a second, not after an hour of compute.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from hafm_core.errors import (
    OutputPathError,  # defined with the other errors; commands import it here
)


def _number(text: str, kind=float) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


MAX_SEED = 2**32 - 1  # numpy, scikit-learn and torch all accept seeds in [0, 2**32)


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number > 0")
    return value


def nonnegative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= 0")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number in [0, 2**32 - 1]."""
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number from 0 to {MAX_SEED}")
    return value


def int_at_least(minimum: int):
    """A type accepting whole numbers >= `minimum` (e.g. bootstrap resamples >= 100)."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be a whole number >= {minimum}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def float_at_least(minimum: float):
    """A type accepting finite numbers >= `minimum` (e.g. durations of at least one 40 ms unit)."""

    def parse(text: str) -> float:
        value = _number(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= {minimum:g}")
        return value

    parse.__name__ = f"float_at_least_{minimum:g}"
    return parse


def finite_float(text: str) -> float:
    return _number(text)


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def nonnegative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def probability_open(text: str) -> float:
    """A value strictly between 0 and 1 (e.g. a target preference rate)."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0 and < 1")
    return value


def unit_interval(text: str) -> float:
    """A probability-like value in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def open_unit_interval(text: str) -> float:
    """A value in (0, 1], e.g. top-p: 0 would keep no token."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0 and <= 1")
    return value


def can_write_in(folder: Path) -> bool:
    """True when a file can be created in `folder`: tried, not guessed from permission bits
    (root ignores them; a read-only mount does not)."""
    import tempfile

    try:
        handle, probe = tempfile.mkstemp(prefix=".hafm-write-probe-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(probe)
    return True


def _writable_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor of `path` must be a writable folder."""
    parent = path.parent
    while not parent.exists() and not parent.is_symlink():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise OutputPathError(f"{what} {path}: {parent} is a file, not a folder")
    if not can_write_in(parent):
        raise OutputPathError(f"{what} {path}: folder {parent} is not writable")


def check_output_file(path: Path, *, overwrite: bool = False, what: str = "output file") -> Path:
    """Refuse an output file that is a folder, sits under a file, is not writable, or exists
    without `overwrite`. Returns the path unchanged."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder; name a file")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{what} {path} exists; pass --overwrite to replace it")
    _writable_parent(path, what)
    return path


def check_output_dir(path: Path, *, what: str = "output folder") -> Path:
    """Refuse an output folder that is a file, sits under a file or is not writable. Whether
    existing contents may be replaced is the command's decision (see `check_output_file`)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputPathError(f"{what} {path} is a file, not a folder")
        if not can_write_in(path):
            raise OutputPathError(f"{what} {path} is not writable")
        return path
    _writable_parent(path, what)
    return path


def check_cache_dir(use_cache: bool = True) -> None:
    """`HAFM_CACHE_DIR` must be a writable folder (or creatable) when a command caches; the
    error says how to fix it or to pass `--no-cache`."""
    from hafm_core.config import cache_dir

    if not use_cache:
        return
    try:
        check_output_dir(cache_dir(), what="HAFM_CACHE_DIR")
    except OutputPathError as error:
        raise OutputPathError(f"{error}; set HAFM_CACHE_DIR to a writable folder"
                              " (or pass --no-cache where the command has it)") from None


def refuse_existing(paths, overwrite: bool, what: str) -> list[Path]:
    """The paths of `paths` that exist; `OutputPathError` naming them unless `overwrite`."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise OutputPathError(f"{what} would replace {len(existing)} existing file(s) ({shown}); "
                              "pass --overwrite to replace them or choose another --out")
    return existing
