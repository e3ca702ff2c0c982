"""Cells safe to open in a spreadsheet: text that would run as a formula is neutralised.

A CSV cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (`=HYPERLINK(...)`, `+cmd|...`, `@SUM(...)`), so
text typed by a listener (an id in a URL) could run when staff open an export. Following
the OWASP rule, such a text cell is prefixed with a single quote, which spreadsheets show as
text. Numbers are left alone: only strings are rewritten (a negative number stays a number).
"""

from __future__ import annotations

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    """`value` with a leading quote when it is a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells (object and string columns) are neutralised; the
    column names too."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out
