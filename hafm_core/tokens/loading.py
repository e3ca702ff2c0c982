"""Load a Hugging Face model folder by path, never from the network.

`local_files_only=True` makes transformers read only the given folder; a missing folder or
file is a `MissingWeightsError` that names the expected path and the public model to copy
there (saved with `save_pretrained`).
"""

from __future__ import annotations

from pathlib import Path

from hafm_core.errors import MissingWeightsError, WeightsError

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


def load_pretrained(model_class, path: str | Path, public_model: str):
    """`model_class.from_pretrained(path)` from the local folder only, quietly (no progress
    bars on stderr); a truncated or corrupt folder is a `WeightsError` naming it."""
    from safetensors import SafetensorError
    from transformers.utils import logging as hf_logging

    folder = require_model_folder(path, public_model)
    hf_logging.disable_progress_bar()
    try:
        return model_class.from_pretrained(folder, local_files_only=True)
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, EOFError) as error:
        raise _corrupt(folder, public_model, error) from error


def _corrupt(folder: Path, public_model: str, error: Exception) -> WeightsError:
    first_line = (str(error).strip().splitlines() or [""])[0][:200]
    return WeightsError(f"model folder {folder} is truncated or corrupt ({type(error).__name__}: {first_line}); "
                        f"copy {public_model} (saved with save_pretrained()) there again")


def load_npy(path: str | Path, what: str):
    """`numpy.load` of a weights array; a truncated or foreign file is a `WeightsError`."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise WeightsError(f"{path} is truncated or not a .npy array ({str(error).splitlines()[0][:160]}); "
                           f"expected {what}") from error
