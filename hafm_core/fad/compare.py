"""Comparing two FAD reports (two runs): only at equal set sizes, or on FAD-inf.

The plug-in FAD falls as the sets grow (its bias is of order 1/n), so two FADs measured on
different numbers of files differ even for the same system. `compare_reports` therefore
compares the FADs themselves only when both reports have the same protocol and the same
n_background and n_eval; otherwise it compares their n-free FAD-inf estimates (the jackknife
bias-corrected interval of `hafm fad --ci`), and refuses when either report lacks one.
"""

from __future__ import annotations

from hafm_core.errors import HafmError


class IncomparableReportsError(HafmError):
    """Two FAD reports cannot be compared: other protocol, or other n without FAD-inf."""


def _sizes(report: dict) -> tuple[int, int]:
    return int(report["n_background"]), int(report["n_eval"])


def compare_reports(current: dict, previous: dict) -> dict:
    """`current` minus `previous` (two `hafm fad --json` reports), on what they share."""
    if current.get("protocol") != previous.get("protocol"):
        raise IncomparableReportsError(
            f"protocols differ ({current.get('protocol')} vs {previous.get('protocol')}): FADs of "
            "different embeddings are not comparable")
    if _sizes(current) == _sizes(previous):
        n_bg, n_ev = _sizes(current)
        return {"on": f"FAD at n_background={n_bg}, n_eval={n_ev}", "current": current["fad"],
                "previous": previous["fad"], "difference": current["fad"] - previous["fad"]}
    missing = [label for label, report in (("current", current), ("previous", previous))
               if not report.get("fad_inf_ci")]
    if missing:
        raise IncomparableReportsError(
            f"the reports have different set sizes (background/eval {_sizes(current)} vs "
            f"{_sizes(previous)}) and FADs at different n are not comparable; the {' and '.join(missing)} "
            "report has no FAD-inf: run `hafm fad --ci` to compare on FAD-inf")
    now, before = current["fad_inf_ci"], previous["fad_inf_ci"]
    return {"on": "FAD-inf (n-free)", "current": now["estimate"], "previous": before["estimate"],
            "difference": now["estimate"] - before["estimate"],
            "current_interval": [now["low"], now["high"]], "previous_interval": [before["low"], before["high"]]}
