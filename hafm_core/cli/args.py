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

from hafm_core.errors import HafmError


class OutputPathError(HafmError):
    """An output path cannot be written: it is a file where a folder is needed, sits under a
    file, is not writable, or exists and `--overwrite` was not given."""


def _number(text: str, kind=float) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


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


def _writable_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor of `path` must be a writable folder."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise OutputPathError(f"{what} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
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
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(f"{what} {path} is not writable")
        return path
    _writable_parent(path, what)
    return path
