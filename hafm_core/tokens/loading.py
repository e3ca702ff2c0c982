"""Load a Hugging Face model folder by path, never from the network.

`local_files_only=True` makes transformers read only the given folder; a missing folder or
file is a `MissingWeightsError` that names the expected path and the public model to copy
there (saved with `save_pretrained`).
"""

from __future__ import annotations

from pathlib import Path

from hafm_core.errors import MissingWeightsError

HUBERT_SOURCE = "facebook/hubert-base-ls960"
ENCODEC_SOURCE = "facebook/encodec_24khz"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def require_model_folder(path: str | Path, public_model: str) -> Path:
    """`path` if it holds `config.json` and a weights file, else `MissingWeightsError`."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise MissingWeightsError(
            f"model folder {path} does not exist; it should hold the Hugging Face model "
            f"{public_model} saved with save_pretrained() (or run `hafm weights tiny --out DIR` "
            "for tiny random-init test weights)"
        )
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if missing:
        raise MissingWeightsError(
            f"model folder {path} lacks {', '.join(missing)}; it should hold the Hugging Face "
            f"model {public_model} saved with save_pretrained()"
        )
    return path


def require_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"{path} does not exist; expected {what}")
    return path
