"""Byte-range responses for audio (RFC 9110 section 14), so every browser can seek and replay.

Case by case (each is a test in tests/listening/test_ranged_response.py):
- no Range, a unit other than bytes, or a syntactically invalid byte-range set (e.g. a
  last-pos below its first-pos): the header is ignored, 200 with the whole content;
- `If-Range`: these responses carry no validator (no ETag, no Last-Modified), so no If-Range
  can match: the Range is ignored, 200 with the whole content (14.3);
- one satisfiable range (after clamping a last-pos past the end, and a suffix longer than the
  content to the whole content): 206 with `Content-Range: bytes first-last/length`;
- several ranges: unsatisfiable ones are dropped and overlapping or adjacent ones merged; one
  left gives a single-part 206, several give a `multipart/byteranges` 206 (14.6); more than
  `MAX_RANGES` ranges are ignored (200, whole content), as 14.2 allows;
- none satisfiable (a first-pos at or past the end, a zero-length suffix): 416 with
  `Content-Range: bytes */length` (15.5.17);
- numbers of any size (a 5 000-digit last-pos is simply past the end) never fail.
Headers carry nothing about the content beyond its type and length: no file name, date or tag.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse

MAX_RANGES = 16
# Digits beyond this are "larger than any content": never parsed as a huge integer.
_MAX_DIGITS = 18
_RANGE_SPEC = re.compile(r"^(\d*)-(\d*)$")


class Unsatisfiable(ValueError):
    """No range of the header overlaps the content (416)."""


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return 10**_MAX_DIGITS if len(digits) > _MAX_DIGITS else int(digits)


def parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges (first, last inclusive), sorted and merged; None to ignore the header.

    Raises Unsatisfiable when the header is a valid byte-range set none of whose ranges
    overlaps the content.
    """
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None  # another unit, or not a range at all: ignored (14.2)
    ranges: list[tuple[int, int]] = []
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) > MAX_RANGES:
        return None
    for part in parts:
        if not part:
            continue  # empty list elements are allowed (RFC 9110 5.6.1)
        match = _RANGE_SPEC.match(part)
        if match is None or match.groups() == ("", ""):
            return None
        first, last = match.groups()
        if first == "":  # suffix: the last N bytes
            length = _number(last)
            if length > 0 and size > 0:
                ranges.append((max(0, size - length), size - 1))
            continue
        start = _number(first)
        end = None if last == "" else _number(last)
        if end is not None and end < start:
            return None  # invalid range-spec: the whole header is ignored
        if start < size:
            ranges.append((start, size - 1 if end is None else min(end, size - 1)))
    if not ranges:
        if any(parts):
            raise Unsatisfiable("no range overlaps the content")
        return None
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        if start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


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
    if "If-Range" in request.headers:
        header = ""  # no validator of ours can match it (see the module doc)
    try:
        ranges = parse_ranges(header, size) if header and request.method in ("GET", "HEAD") else None
    except Unsatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if ranges is None:
        response = HttpResponse(read(0, size), content_type=content_type)
    elif len(ranges) == 1:
        ((start, end),) = ranges
        response = HttpResponse(read(start, end - start + 1), content_type=content_type, status=206)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    else:
        boundary = secrets.token_hex(16)
        body = b"".join(
            f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
            .encode() + read(start, end - start + 1) + b"\r\n" for start, end in ranges)
        response = HttpResponse(body + f"--{boundary}--\r\n".encode(), status=206,
                                content_type=f"multipart/byteranges; boundary={boundary}")
    response["Content-Length"] = str(len(response.content))
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
