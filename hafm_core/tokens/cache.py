"""The token cache: one `.npz` per excerpt, keyed by content hash and tokenizer hash.

`OUT/tokens/KEY.npz`, `KEY = sha256(content_sha256 : tokenizer_hash)`, holds:
- `semantic_vocal`: int64 [T_s] at 50 Hz (HuBERT layer-9 ids of the vocal + noise sigma 0.01)
- `semantic_accompaniment`: int64 [T_s] (no noise)
- `acoustic_accompaniment`: int64 [8, T_a] at 75 Hz, EnCodec 6 kbps (rows 0-3 coarse, 4-7 fine)
with `T_a = 3 T_s / 2` exactly. Files are written atomically, so a file that exists is complete:
a rerun skips every excerpt whose file is there (resumable). `OUT/tokens.jsonl` indexes the
manifest's excerpts (id, track, split, duration, key, file) for the training stages.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core.data.files import atomic_output, write_bytes_atomic
from hafm_core.data.manifest import check_record_types
from hafm_core.errors import DatasetError
from hafm_core.provenance import sha256_bytes

TOKENS_FOLDER = "tokens"
INDEX_NAME = "tokens.jsonl"
FORMAT_VERSION = 1  # bump when the arrays or their meaning change


@dataclass(frozen=True)
class ExcerptTokens:
    semantic_vocal: np.ndarray  # int64 [T_s]
    semantic_accompaniment: np.ndarray  # int64 [T_s]
    acoustic_accompaniment: np.ndarray  # int64 [8, T_a], T_a = 3 T_s / 2

    def __post_init__(self):
        t_s = self.semantic_vocal.shape[-1]
        if self.semantic_accompaniment.shape != (t_s,) or self.acoustic_accompaniment.shape[-1] * 2 != t_s * 3:
            raise ValueError(f"misaligned tokens: semantic {self.semantic_vocal.shape} / "
                             f"{self.semantic_accompaniment.shape}, acoustic {self.acoustic_accompaniment.shape}")

    @property
    def coarse(self) -> np.ndarray:
        """int64 [4, T_a]: codebooks 1-4."""
        return self.acoustic_accompaniment[:4]

    @property
    def fine(self) -> np.ndarray:
        """int64 [4, T_a]: codebooks 5-8."""
        return self.acoustic_accompaniment[4:]


@dataclass(frozen=True)
class TokenIndexEntry:
    excerpt_id: str
    track: str
    split: str
    duration_s: float
    key: str
    file: str  # relative to the cache folder


def cache_key(content_sha256: str, tokenizer_hash: str) -> str:
    return sha256_bytes(f"{content_sha256}:{tokenizer_hash}:v{FORMAT_VERSION}".encode())


def tokenizer_hash(semantic_hash: str, acoustic_hash: str, noise_sigma: float) -> str:
    return sha256_bytes(f"semantic={semantic_hash};acoustic={acoustic_hash};noise={noise_sigma!r}".encode())


def token_file(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / TOKENS_FOLDER / f"{key}.npz"


def save_tokens(path: str | Path, tokens: ExcerptTokens) -> Path:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{f.name: getattr(tokens, f.name).astype(np.int64)
                                for f in dataclasses.fields(ExcerptTokens)})
    return Path(path)


def load_tokens(path: str | Path) -> ExcerptTokens:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {f.name: data[f.name] for f in dataclasses.fields(ExcerptTokens)}
        for name, array in arrays.items():
            if not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"array {name} holds {array.dtype}, expected int64 ids")
        return ExcerptTokens(**arrays)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as error:
        raise DatasetError(f"token file {path} is unreadable or incomplete ({error}); delete it and rerun "
                           "`hafm tokenize`") from error


def write_index(cache_dir: str | Path, entries: list[TokenIndexEntry]) -> Path:
    lines = [json.dumps(dataclasses.asdict(e), sort_keys=True) for e in entries]
    return write_bytes_atomic(Path(cache_dir) / INDEX_NAME, ("\n".join(lines) + "\n").encode())


def read_index(cache_dir: str | Path, split: str | None = None) -> list[TokenIndexEntry]:
    """Entries of `cache_dir/tokens.jsonl`, optionally of one split."""
    path = Path(cache_dir) / INDEX_NAME
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; run `hafm tokenize MANIFEST --out {cache_dir}`")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} cannot be read as UTF-8 text ({error})") from error
    entries = [_index_entry(path, number, line) for number, line in enumerate(text.splitlines(), start=1)
               if line.strip()]
    return [e for e in entries if split is None or e.split == split]


_INDEX_TYPES = {"excerpt_id": str, "track": str, "split": str, "duration_s": (int, float), "key": str,
                "file": str}


def _index_entry(path: Path, number: int, line: str) -> TokenIndexEntry:
    """One line of tokens.jsonl, checked: a `DatasetError` names the line and the field."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}:{number}: not JSON ({error.msg}); rerun `hafm tokenize`") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
    check_record_types(path, number, data, _INDEX_TYPES)
    entry = TokenIndexEntry(**{name: data[name] for name in _INDEX_TYPES})
    if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts:
        raise DatasetError(f"{path}:{number}: field 'file' must be a path inside the cache, got {entry.file!r}")
    return entry


def load_split(cache_dir: str | Path, split: str) -> list[tuple[TokenIndexEntry, ExcerptTokens]]:
    """All cached excerpts of a split, with their index entries."""
    return [(e, load_tokens(Path(cache_dir) / e.file)) for e in read_index(cache_dir, split)]
