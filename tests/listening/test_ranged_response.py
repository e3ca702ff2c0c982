"""RFC 9110 byte ranges, case by case, as a forging client sends them."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory

from listening.ranged_response import MAX_RANGES, ranged_bytes_response

DATA = bytes(range(256)) * 4  # 1024 bytes
SIZE = len(DATA)


def get(method="get", **headers):
    request = getattr(RequestFactory(), method)("/audio", headers=headers)
    return ranged_bytes_response(request, DATA)


def multipart(response) -> list[tuple[str, bytes]]:
    """(Content-Range, body) of each part of a multipart/byteranges body."""
    boundary = re.search(r"boundary=(\S+)", response["Content-Type"]).group(1).encode()
    body = response.content
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, payload = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        assert payload.endswith(b"\r\n")
        parts.append((re.search(rb"Content-Range: (.+)", head).group(1).decode().strip(), payload[:-2]))
    return parts


def test_no_range_is_the_whole_file():
    response = get()
    assert response.status_code == 200 and response.content == DATA and response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-1", 0, 1),
    ("bytes=100-", 100, SIZE - 1),
    ("bytes=1000-5000", 1000, SIZE - 1),  # last-pos past the end is clamped
    ("bytes=-10", SIZE - 10, SIZE - 1),  # suffix
    ("bytes=-5000", 0, SIZE - 1),  # a suffix longer than the content is the whole content
    ("bytes=5-" + "9" * 5000, 5, SIZE - 1),  # a 5 000-digit last-pos
    ("bytes=-" + "9" * 5000, 0, SIZE - 1),
    ("Bytes = 3-4", 3, 4),  # the unit is case-insensitive
    ("bytes=0-1,2-5", 0, 5),  # adjacent ranges merge into one
    ("bytes=0-10, 5-20", 0, 20),  # overlapping ranges merge
    ("bytes=0-1,2000-3000", 0, 1),  # the unsatisfiable one is dropped
])
def test_satisfiable_single_ranges(header, first, last):
    response = get(range=header)
    assert response.status_code == 206, header[:40]
    assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.content == DATA[first:last + 1]
    assert response["Content-Length"] == str(last - first + 1)


def test_several_ranges_give_a_multipart_206():
    response = get(range="bytes=0-1,4-5, -3")
    assert response.status_code == 206 and response["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert multipart(response) == [(f"bytes 0-1/{SIZE}", DATA[0:2]), (f"bytes 4-5/{SIZE}", DATA[4:6]),
                                   (f"bytes {SIZE - 3}-{SIZE - 1}/{SIZE}", DATA[-3:])]
    assert "Content-Range" not in response


def test_too_many_ranges_are_ignored():
    header = "bytes=" + ",".join(f"{2 * i}-{2 * i}" for i in range(MAX_RANGES + 1))
    response = get(range=header)
    assert response.status_code == 200 and response.content == DATA


@pytest.mark.parametrize("header", [
    "bytes=1024-", "bytes=1024-2000", "bytes=-0", "bytes=" + "9" * 5000 + "-", "bytes=2000-3000,4000-",
])
def test_unsatisfiable_is_416_with_the_length(header):
    response = get(range=header)
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{SIZE}"
    assert response.content == b""


@pytest.mark.parametrize("header", [
    "items=0-1", "bytes", "bytes=", "bytes=5-1", "bytes=a-b", "bytes=-", "bytes=0-1,5-2", "bytes=1-2-3",
    "bytes=,",
])
def test_other_units_and_invalid_sets_are_ignored(header):
    response = get(range=header)
    assert response.status_code == 200 and response.content == DATA


@pytest.mark.parametrize("validator", ['"some-etag"', "Wed, 21 Oct 2015 07:28:00 GMT", 'W/"weak"', "garbage"])
def test_if_range_never_matches_so_the_whole_file_is_sent(validator):
    response = get(range="bytes=0-1", if_range=validator)
    assert response.status_code == 200 and response.content == DATA and "Content-Range" not in response


def test_no_validators_or_names_are_sent():
    response = get(range="bytes=0-1")
    for header in ("ETag", "Last-Modified", "Content-Disposition", "Date"):
        assert header not in response
