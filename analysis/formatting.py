"""How numbers of an analysis are printed: p-values with their floor, counts as integers, and
HTML tables that name their method, unit of resampling, multiplicity family and truncation.

Shared by the console summary (`hafm analyze`), the offline report and the dashboards, so a
reader sees the same text for the same number everywhere.
"""

from __future__ import annotations

import html
import math

import pandas as pd

# Below this a p-value prints as "< 1e-6": more digits claim a precision the model lacks.
P_PRINT_FLOOR = 1e-6
P_COLUMNS = ("p_value", "p_holm", "p_value_binomial", "side_p_value")
COUNT_COLUMNS = ("n", "wins", "left", "passed", "n_blocks", "n_nonzero", "n_system", "n_opponent", "g_listeners",
                 "g_excerpts", "n_boot_valid", "n_items", "n_excerpts", "n_ratings", "blocks_dropped", "dof", "k",
                 "n_required", "n_required_clustered", "judgments_needed", "part", "count")


def format_p(value) -> str:
    """'p < 1e-6' style text: 'not estimable' for NaN/None, '< 1e-6' below the floor, else 3
    significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return "not estimable"
    if value < P_PRINT_FLOOR:
        return f"< {P_PRINT_FLOOR:.0e}".replace("e-0", "e-")
    return f"{value:.3g}"


def format_count(value) -> str:
    """An integer count ('1200', never '1200.0'); empty for a missing value."""
    if value is None or pd.isna(value):
        return ""
    return str(int(round(float(value))))


def format_float(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:.4g}"


def html_table(table: pd.DataFrame | None, columns: list[str] | None = None, *, caption: str = "",
               max_rows: int | None = None, css_class: str = "stats", empty: str = "") -> str:
    """`table` as an escaped HTML table with p-values floored, counts as integers, a caption
    (method, unit, family) and, when cut to `max_rows`, a line saying how many rows are shown.

    A `method` or `unit` column whose value is the same on every row moves into the caption.
    """
    if table is None or len(table) == 0:
        return empty
    shown = table[[c for c in columns if c in table.columns]] if columns else table
    notes = [caption] if caption else []
    for column, label in (("method", "Method"), ("unit", "Unit of resampling / clustering")):
        if column in shown.columns and shown[column].nunique(dropna=False) == 1:
            notes.append(f"{label}: {shown[column].iloc[0]}")
            shown = shown.drop(columns=column)
    total = len(shown)
    if max_rows is not None and total > max_rows:
        shown = shown.head(max_rows)
        notes.append(f"showing {max_rows} of {total} rows")
    formatters = {}
    for column in shown.columns:
        if column in P_COLUMNS or column.startswith("p_value"):
            formatters[column] = format_p
        elif column in COUNT_COLUMNS:
            formatters[column] = format_count
        elif pd.api.types.is_float_dtype(shown[column]):
            formatters[column] = format_float
    body = shown.to_html(index=False, formatters=formatters, border=0, na_rep="", classes=css_class)
    text = "".join(f'<p class="table-note">{html.escape(note)}</p>' for note in notes)
    return text + body
