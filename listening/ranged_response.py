"""Byte-range responses for audio (RFC 9110 section 14), so every browser can seek and replay.

Only single ranges are served (browsers never ask media for more); a multi-range or
unsatisfiable request gets 416 with `Content-Range: bytes */size`. Headers carry nothing
about the content beyond its type and length: no file name, date or entity tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a satisfiable single range; None for no/ignored header.

    Raises ValueError when the header is a byte range that cannot be satisfied.
    """
    match = _RANGE.match(header.strip())
    if match is None:
        if header.strip().startswith("bytes=") and "," in header:
            raise ValueError("multiple ranges are not served")
        return None  # other units: RFC says ignore the header
    first, last = match.groups()
    if first == "" and last == "":
        raise ValueError("empty range")
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        raise ValueError("range outside the content")
    return start, end


def ranged_file_response(request: HttpRequest, path: Path) -> HttpResponse:
    """Serve a WAV file, reading only the requested bytes."""

    def read(start: int, length: int) -> bytes:
        with open(path, "rb") as handle:
            handle.seek(start)
            return handle.read(length)

    return _ranged(request, path.stat().st_size, read)


def ranged_bytes_response(request: HttpRequest, data: bytes) -> HttpResponse:
    return _ranged(request, len(data), lambda start, length: data[start:start + length])


def _ranged(request: HttpRequest, size: int, read: Callable[[int, int], bytes],
            content_type: str = "audio/wav") -> HttpResponse:
    header = request.headers.get("Range", "")
    try:
        byte_range = parse_range(header, size) if header else None
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if byte_range is None:
        response = HttpResponse(read(0, size), content_type=content_type)
    else:
        start, end = byte_range
        response = HttpResponse(read(start, end - start + 1), content_type=content_type, status=206)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
