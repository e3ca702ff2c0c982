"""Reads for the site's pages. Each returns what a template needs in few queries."""

from hafm_core.provenance import code_version


def home_context() -> dict:
    return {"code_version": code_version()}
