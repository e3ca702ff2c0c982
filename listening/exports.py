"""CSV exports of a study: preferences.csv, ratings.csv, participants.csv (see selectors for columns).

Every text cell that a spreadsheet would run as a formula is neutralised (hafm_core.spreadsheet).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from hafm_core.spreadsheet import neutralise_frame
from listening import selectors
from listening.models import Study
from listening.stimuli import write_atomic

EXPORT_NAMES = ("preferences.csv", "ratings.csv", "participants.csv")
_FRAMES = {"preferences.csv": selectors.preferences_frame, "ratings.csv": selectors.ratings_frame,
           "participants.csv": selectors.participants_frame}


def csv_text(study: Study, name: str) -> str:
    return neutralise_frame(_FRAMES[name](study)).to_csv(index=False)


def write_exports(study: Study, out_dir: Path) -> list[Path]:
    """Write the three CSVs into `out_dir` (created if needed), each atomically."""
    paths = []
    for name in EXPORT_NAMES:
        path = Path(out_dir) / name
        write_atomic(path, csv_text(study, name).encode("utf-8"))
        paths.append(path)
    return paths


def zip_bytes(studies) -> bytes:
    """A zip with one folder per study holding its three CSVs (for the admin action)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for study in studies:
            folder = f"study-{study.public_id}"
            for name in EXPORT_NAMES:
                archive.writestr(f"{folder}/{name}", csv_text(study, name))
    return buffer.getvalue()
