"""The README is the user's entry point: its two commands and its configuration table hold."""

import re

from hafm_core.config import ENVIRONMENT
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_gives_the_two_commands():
    assert "make demo" in README and "make test" in README


def test_configuration_table_lists_every_environment_variable():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert set(ENVIRONMENT) <= documented, set(ENVIRONMENT) - documented


def test_ci_entry_point_calls_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
