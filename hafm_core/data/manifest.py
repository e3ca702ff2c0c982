"""The excerpt manifest: JSON Lines, one record per excerpt, paths relative to the manifest.

Each record: `excerpt_id`, `track`, `split`, `source`, `start_s`, `duration_s`,
`sample_rate_hz` (24 000), `vocal_path` and `accompaniment_path` (float32 mono wavs at 24 kHz),
`vocal_sha256` and `accompaniment_sha256` (`hafm_core.audio.samples_sha256` of the samples:
file bytes of float wavs carry a timestamp), `content_sha256` (of both, the cache key of
everything derived from the excerpt) and `vocal_active_fraction`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from hafm_core.data.files import write_bytes_atomic
from hafm_core.errors import DatasetError

MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class ExcerptRecord:
    excerpt_id: str
    track: str
    split: str
    source: str
    start_s: float
    duration_s: float
    sample_rate_hz: int
    vocal_path: str
    accompaniment_path: str
    vocal_sha256: str
    accompaniment_sha256: str
    content_sha256: str
    vocal_active_fraction: float

    def vocal_file(self, manifest_dir: Path) -> Path:
        return Path(manifest_dir) / self.vocal_path

    def accompaniment_file(self, manifest_dir: Path) -> Path:
        return Path(manifest_dir) / self.accompaniment_path


_FIELDS = {field.name for field in dataclasses.fields(ExcerptRecord)}
_TYPES = {field.name: (int, float) if field.type in ("float", float) else int if field.type in ("int", int) else str
          for field in dataclasses.fields(ExcerptRecord)}


def write_manifest(path: str | Path, records: list[ExcerptRecord]) -> Path:
    lines = [json.dumps(dataclasses.asdict(record), sort_keys=True) for record in records]
    return write_bytes_atomic(path, ("\n".join(lines) + "\n" if lines else "").encode())


def read_manifest(path: str | Path) -> list[ExcerptRecord]:
    """Records of a manifest file (or of `manifest.jsonl` inside a folder); malformed lines are a `DatasetError`."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist; write one with `hafm data prepare --out DIR`")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from error
        if not isinstance(data, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
        check_record_types(path, number, data, _TYPES)
        record = ExcerptRecord(**{k: data[k] for k in _FIELDS})
        _check_values(path, number, record)
        records.append(record)
    if not records:
        raise DatasetError(f"manifest {path} lists no excerpts")
    return records


def _check_values(path: Path, number: int, record: ExcerptRecord) -> None:
    import math

    for name in ("start_s", "duration_s"):
        value = getattr(record, name)
        if not math.isfinite(value) or value < 0 or (name == "duration_s" and value == 0):
            raise DatasetError(f"{path}:{number}: field {name!r} is {value}, expected a finite number "
                               + ("> 0" if name == "duration_s" else ">= 0"))
    if record.sample_rate_hz <= 0:
        raise DatasetError(f"{path}:{number}: field 'sample_rate_hz' is {record.sample_rate_hz}, expected > 0")
    for name in ("vocal_path", "accompaniment_path"):
        if not getattr(record, name):
            raise DatasetError(f"{path}:{number}: field {name!r} is empty")


def check_record_types(path: Path, number: int, data: dict, types: dict) -> None:
    """`DatasetError` naming the first missing field or the first field of the wrong JSON type."""
    missing = sorted(set(types) - set(data))
    if missing:
        raise DatasetError(f"{path}:{number}: record lacks {', '.join(missing)}")
    for name, expected in types.items():
        value = data[name]
        kinds = expected if isinstance(expected, tuple) else (expected,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = " or ".join("number" if k in (int, float) else "string" if k is str else k.__name__
                                 for k in kinds)
            raise DatasetError(f"{path}:{number}: field {name!r} is {json.dumps(value)[:60]}, "
                               f"expected a {wanted}")
