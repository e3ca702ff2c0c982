"""Staff uploads of study clips: names, sizes and durations checked before any decoding.

- Names: `EXCERPT__vocal.EXT` / `EXCERPT__SYSTEM.EXT`, EXT one of the formats hafm_core.audio
  reads (`clip_name_parts`); anything else is a form error naming the file.
- Sizes: `LimitedUploadHandler` counts bytes as they stream in and stops the upload as soon as
  one file passes `HAFM_UPLOAD_MAX_FILE_BYTES` or all of them `HAFM_UPLOAD_MAX_TOTAL_BYTES`
  (a request that announces a larger body is refused before its first byte is read), so a
  2 GB upload is never spooled to disk.
- Durations: read from the file header (`soundfile.info`, or ffprobe for mp3/m4a), never by
  decoding; longer than `HAFM_UPLOAD_MAX_DURATION_S` is refused (a 689 KB FLAC can hold an
  hour of audio).
- Storage: a study's clips are saved in a folder of their own under MEDIA_ROOT
  (`new_sources_folder`), which the web process and the rendering worker share; the
  rendering removes it once the stimuli exist.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from hafm_core.audio import FFMPEG_SUFFIXES, SOUNDFILE_SUFFIXES
from hafm_core.errors import HafmError

CLIP_NAMING = "EXCERPT__vocal.wav for each excerpt's vocal, EXCERPT__SYSTEM.wav for each accompaniment"
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES + FFMPEG_SUFFIXES
DEFAULT_MAX_FILE_BYTES = 100 * 1024**2
DEFAULT_MAX_TOTAL_BYTES = 1024**3
DEFAULT_MAX_DURATION_S = 600.0
SOURCES_SUBDIR = "listening/uploads"


class UploadRefused(HafmError):
    """An uploaded clip breaks a naming, size or duration rule."""


def limits() -> tuple[int, int, float]:
    """(max bytes per file, max bytes per request, max seconds per clip) from the settings."""
    return (int(getattr(settings, "HAFM_UPLOAD_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)),
            int(getattr(settings, "HAFM_UPLOAD_MAX_TOTAL_BYTES", DEFAULT_MAX_TOTAL_BYTES)),
            float(getattr(settings, "HAFM_UPLOAD_MAX_DURATION_S", DEFAULT_MAX_DURATION_S)))


def new_sources_folder() -> Path:
    """A fresh folder, with a random name, for one study's uploaded clips."""
    folder = Path(settings.MEDIA_ROOT) / SOURCES_SUBDIR / secrets.token_hex(16)
    folder.mkdir(parents=True)
    return folder


def clip_name_parts(name: str) -> tuple[str, str, str]:
    """`track1__three-stage.wav` -> ("track1", "three-stage", ".wav"); UploadRefused otherwise."""
    stem, dot, suffix = Path(name).name.rpartition(".")
    suffix = f".{suffix.lower()}"
    if not dot or not stem or suffix not in AUDIO_SUFFIXES:
        raise UploadRefused(f"{name}: name clips {CLIP_NAMING}, with an audio extension "
                            f"({', '.join(AUDIO_SUFFIXES)})")
    parts = stem.split("__")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise UploadRefused(f"{name}: name clips {CLIP_NAMING}")
    return parts[0], parts[1], suffix


def header_duration_s(path: Path) -> float:
    """Duration from the file header (no decoding); UploadRefused when the header is unreadable."""
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile

        try:
            info = soundfile.info(str(path))
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
            raise UploadRefused(f"{path.name}: not a readable audio file ({error})") from None
        return info.frames / info.samplerate
    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                            capture_output=True, text=True, check=False, timeout=30)
    try:
        return float(json.loads(result.stdout or "{}")["format"]["duration"])
    except (KeyError, ValueError, TypeError):
        raise UploadRefused(f"{path.name}: not a readable audio file") from None


def check_duration(path: Path, shown_name: str) -> None:
    max_duration_s = limits()[2]
    duration_s = header_duration_s(path)
    if duration_s > max_duration_s:
        raise UploadRefused(f"{shown_name} is {duration_s:.0f} s long; clips may be at most {max_duration_s:.0f} s "
                            "(HAFM_UPLOAD_MAX_DURATION_S): cut it to the excerpt")


class LimitedUploadHandler(FileUploadHandler):
    """Counts bytes as they arrive and stops the upload at the first limit passed.

    Put first in `request.upload_handlers`; the reason is left in `request.upload_refused`.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.max_file, self.max_total, _ = limits()
        self.total = 0
        self.file_bytes = 0

    def _refuse(self, reason: str):
        """Stop storing; the rest of the body (at most the announced length, itself limited) is
        read and dropped so that the browser gets the form and its error, not a reset."""
        self.request.upload_refused = reason
        raise StopUpload(connection_reset=False)

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_total + 1024**2:  # form fields besides the files
            from django.http import QueryDict
            from django.utils.datastructures import MultiValueDict

            self.request.upload_refused = (
                f"the upload is {content_length / 1024**2:.0f} MB; at most {self.max_total / 1024**2:.0f} MB "
                "per study (HAFM_UPLOAD_MAX_TOTAL_BYTES)")
            return QueryDict(), MultiValueDict()  # nothing of the body is read
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.file_bytes = 0

    def receive_data_chunk(self, raw_data, start):
        self.file_bytes += len(raw_data)
        self.total += len(raw_data)
        if self.file_bytes > self.max_file:
            self._refuse(f"{self.file_name} is over {self.max_file / 1024**2:.0f} MB, the limit per clip "
                         "(HAFM_UPLOAD_MAX_FILE_BYTES)")
        if self.total > self.max_total:
            self._refuse(f"the clips pass {self.max_total / 1024**2:.0f} MB in all, the limit per study "
                         "(HAFM_UPLOAD_MAX_TOTAL_BYTES)")
        return raw_data

    def file_complete(self, file_size):
        return None
