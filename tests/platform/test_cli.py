"""The `hafm` dispatcher: one command's module is imported per run; errors are one line."""

import pytest

from hafm_core import cli


def test_a_broken_command_module_does_not_break_the_others(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "broken", "hafm_core.cli.no_such_module")
    # doctor runs (exit 1 only says a service or weight is missing here), the broken one is not loaded
    assert cli.main(["doctor", "--timeout", "1"]) in (0, 1)
    assert "weights in HAFM_WEIGHTS_DIR" in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    code = cli.main(["fad", str(missing), str(missing), "--embedder", "logmel"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "Traceback" not in err[0]
