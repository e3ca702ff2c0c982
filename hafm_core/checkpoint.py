"""Cascade checkpoints: `CKPT/ar_<stage>/ckpt_{best,last}.pt`, written atomically.

Each file is a dict holding at least `model_state` (the stage's state dict), `config` (the
`ModelConfig` as a dict) and `global_step`; training adds the optimizer, scheduler and RNG
states for exact resume. Every way a checkpoint can be unusable (missing, corrupt, partial,
config edited, stages that do not fit together) is a `CheckpointError` naming the stage and the
field.

Integrity: `save_checkpoint` stores `content_sha256`, a hash of every tensor and value in the
payload (`payload_digest`), and `read_checkpoint` recomputes it: a flipped byte in the weights
or the optimizer state is a `CheckpointError`, not a silently different model. Files are
written with mode 0644 (less the umask) so workers running as another user can read them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from hafm_core.errors import CheckpointError
from hafm_core.model import HafmLM, ModelConfig
from hafm_core.patterns import STAGES
from hafm_core.provenance import sha256_bytes, sha256_file

REQUIRED_FIELDS = ("model_state", "config", "global_step")
DIGEST_FIELD = "content_sha256"


def _update_digest(digest, value) -> None:
    """Feed `value` into `digest` canonically: dicts by sorted key, tensors by dtype, shape and bytes."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        shape = tuple(value.shape)
        digest.update(f"T{tensor.dtype}{shape}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _update_digest(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _update_digest(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def payload_digest(payload: dict) -> str:
    """SHA-256 of everything in `payload` except the digest field itself."""
    digest = hashlib.sha256()
    _update_digest(digest, {k: v for k, v in payload.items() if k != DIGEST_FIELD})
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stage_dir(root: str | Path, stage: str) -> Path:
    return Path(root) / f"ar_{stage}"


def checkpoint_path(root: str | Path, stage: str, which: str = "best") -> Path:
    """`root/ar_<stage>/ckpt_<which>.pt`; which is 'best' or 'last'."""
    return stage_dir(root, stage) / f"ckpt_{which}.pt"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """torch.save (with `content_sha256`) to a temporary file in the same folder, fsync, then
    os.replace: a reader, or a run killed half-way through the write, never sees a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, DIGEST_FIELD: payload_digest(payload)}
    handle, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_checkpoint(path: str | Path, stage: str) -> dict:
    """The payload of one checkpoint file, with its required fields checked."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"stage {stage!r}: no checkpoint at {path} "
                              f"(train it with `hafm train --stage {stage}`)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"stage {stage!r}: checkpoint {path} is empty (0 bytes): the write was "
                              f"cut short; retrain or copy the file again")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as error:
        first_line = (str(error).splitlines() or [""])[0][:160]
        raise CheckpointError(f"stage {stage!r}: checkpoint {path} is truncated, corrupt or not a torch "
                              f"file ({type(error).__name__}: {first_line})") from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"stage {stage!r}: checkpoint {path} holds a {type(payload).__name__}, "
                              "expected a dict with model_state and config")
    for field in REQUIRED_FIELDS:
        if field not in payload:
            raise CheckpointError(f"stage {stage!r}: checkpoint {path} has no field {field!r}")
    stored = payload.get(DIGEST_FIELD)
    if stored is not None and stored != payload_digest(payload):
        raise CheckpointError(f"stage {stage!r}: checkpoint {path} fails its content check "
                              f"(field {DIGEST_FIELD!r}): the file was altered or damaged after it "
                              "was written; retrain or copy it again")
    return payload


def config_from_payload(payload: dict, stage: str, path: Path) -> ModelConfig:
    values = payload["config"]
    if not isinstance(values, dict):
        raise CheckpointError(f"stage {stage!r}: field 'config' of {path} is not a dict")
    try:
        config = ModelConfig.from_dict(values)
    except KeyError as error:
        raise CheckpointError(f"stage {stage!r}: field 'config.{error.args[0]}' of {path} is "
                              "unknown or missing for this version of the model") from error
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"stage {stage!r}: field 'config' of {path} is invalid: {error}") from error
    if config.stage != stage:
        raise CheckpointError(f"stage {stage!r}: field 'config.stage' of {path} says "
                              f"{config.stage!r}; the file is in the wrong folder")
    return config


def model_from_payload(payload: dict, stage: str, path: Path, device: str = "cpu") -> HafmLM:
    """Rebuild the stage's model from the stored config and load its weights."""
    config = config_from_payload(payload, stage, path)
    model = HafmLM(config)
    state = payload["model_state"]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        key, kind = (missing[0], "lacks") if missing else (unexpected[0], "has an unexpected")
        raise CheckpointError(f"stage {stage!r}: field 'model_state' of {path} {kind} parameter {key!r}: "
                              f"it does not match field 'config' ({_sizes(config)})")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"stage {stage!r}: field 'model_state' of {path}, parameter {key!r} has shape "
                f"{tuple(state[key].shape)} but field 'config' ({_sizes(config)}) builds "
                f"{tuple(tensor.shape)}")
    model.load_state_dict(state)
    return model.to(device).eval()


def _sizes(config: ModelConfig) -> str:
    return ", ".join(f"{name}={getattr(config, name)}" for name in
                     ("n_layer", "n_head", "d_model", "d_ff", "semantic_vocab", "codebook_size", "pattern"))


def load_stage(root: str | Path, stage: str, which: str = "best", device: str = "cpu") -> tuple[HafmLM, dict]:
    """(model in eval mode, payload) of `root/ar_<stage>/ckpt_<which>.pt`."""
    if stage not in STAGES:
        raise CheckpointError(f"unknown stage {stage!r}; expected one of {STAGES}")
    path = checkpoint_path(root, stage, which)
    payload = read_checkpoint(path, stage)
    return model_from_payload(payload, stage, path, device), payload


def load_cascade(root: str | Path, stages: tuple[str, ...] = STAGES, device: str = "cpu") -> dict[str, HafmLM]:
    """The models of `stages`, checked to fit together (shared vocabularies)."""
    models = {stage: load_stage(root, stage, device=device)[0] for stage in stages}
    shared = (("semantic", "coarse", "semantic_vocab"), ("coarse", "fine", "codebook_size"))
    for first, second, field in shared:
        if first in models and second in models:
            a, b = getattr(models[first].config, field), getattr(models[second].config, field)
            if a != b:
                raise CheckpointError(f"stages {first!r} and {second!r} do not fit together: "
                                      f"field 'config.{field}' is {a} in {first} and {b} in {second}")
    return models


def cascade_hash(root: str | Path, stages: tuple[str, ...] = STAGES) -> str:
    """SHA-256 over the `ckpt_best.pt` files of `stages` (stage names and file hashes)."""
    parts = [f"{stage}:{sha256_file(checkpoint_path(root, stage))}" for stage in stages]
    return sha256_bytes("\n".join(parts).encode())
