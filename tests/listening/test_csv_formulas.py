"""Exports never carry a cell a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from hafm_core.spreadsheet import FORMULA_PREFIXES, neutralise_frame
from tests.listening.listener_client import Listener

PAYLOADS = ['=HYPERLINK("http://evil.example","x")', "+cmd|'/Ccalc'!A0", "@SUM(1+1)*cmd|'/Ccalc'!A0",
            "-2+3+cmd|'/Ccalc'!A0", "=1+1"]


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_no_formula(text: str, where: str) -> list[list[str]]:
    """Every cell is a number (a negative one included) or text a spreadsheet will not run."""
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert is_number(cell) or not cell.startswith(FORMULA_PREFIXES), f"{where}: formula cell {cell!r}"
    return rows


def test_neutralise_frame_quotes_text_and_leaves_numbers():
    frame = pd.DataFrame({"text": ["=1+1", "+x", "-y", "@z", "\tw", "\rv", "plain", None],
                          "number": [-1, 2, -3, 4, 5, 6, 7, 8], "=name": ["a"] * 8})
    out = neutralise_frame(frame)
    assert list(out["text"][:7]) == ["'=1+1", "'+x", "'-y", "'@z", "'\tw", "'\rv", "plain"]
    assert pd.isna(out["text"][7]) and list(out["number"]) == list(frame["number"])
    assert list(out.columns) == ["text", "number", "'=name"]
    assert list(frame["text"][:1]) == ["=1+1"]  # the input frame is left as it was


@pytest.mark.django_db
def test_listener_typed_formulas_are_neutralised_in_every_export(make_study, admin_client):
    study = make_study(external_id_pattern="", screening=False, quota_per_pair=10)  # any printable id
    for k, payload in enumerate(PAYLOADS):
        listener = Listener(study, PROLIFIC_PID=payload.replace(" ", "") + str(k), STUDY_ID=payload,
                            SESSION_ID=payload)
        assert listener.consent().status_code == 302
    for name in ("preferences.csv", "ratings.csv", "participants.csv"):
        response = admin_client.get(f"/listen/staff/{study.public_id}/export/{name}")
        assert response.status_code == 200
        rows = assert_no_formula(response.content.decode(), name)
        if name == "participants.csv":
            header = rows[0]
            ids = {row[header.index("platform_study_id")] for row in rows[1:]}
            assert ids == {"'" + p for p in PAYLOADS}  # kept whole, shown as text
    from listening import exports

    archive = exports.zip_bytes([study])
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for member in zipped.namelist():
            assert_no_formula(zipped.read(member).decode(), member)


def test_benchmark_exports_neutralise_formulas():
    from evalsite.services.benchmark_export import _csv_bytes

    text = _csv_bytes(["system", "fad"], [["=cmd|'/Ccalc'!A0", -1.5], ["@x", 2.0]]).decode()
    rows = assert_no_formula(text, "systems.csv")
    assert rows[1] == ["'=cmd|'/Ccalc'!A0", "-1.5"] and rows[2] == ["'@x", "2.0"]
