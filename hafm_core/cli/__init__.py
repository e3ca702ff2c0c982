"""The `hafm` command line.

Each subcommand is a module exposing `HELP`, `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their command runs, so `hafm doctor` never pays for torch
and commands that need Django (benchmark) live in the Django packages without `hafm_core`
importing Django itself.

Checks shared by every command run here, before the command's own code: a command with a
`--device` option gets it (or `HAFM_DEVICE`) checked against the devices torch sees, so
`--device cuda` on a machine without a GPU is one line and exit 2, not a traceback mid-run.

Exit codes: 0 success, 1 a failed check (e.g. a regression), 2 bad usage, bad input or any
other failure. Exit 1 is never used for a crash: `hafm regress` reads 1 as "regression".
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hafm_core.errors import HafmError

# name -> module path. Keep alphabetical; one line per command.
COMMANDS = {
    "analyze": "hafm_core.cli.analyze",
    "benchmark": "evalsite.cli_benchmark",
    "data": "hafm_core.cli.data",
    "doctor": "hafm_core.cli.doctor",
    "fad": "hafm_core.cli.fad",
    "fit": "hafm_core.cli.fit",
    "generate": "hafm_core.cli.generate",
    "regress": "hafm_core.cli.regress",
    "tokenize": "hafm_core.cli.tokenize",
    "train": "hafm_core.cli.train",
    "weights": "hafm_core.cli.weights",
}


def _module(name: str):
    return importlib.import_module(COMMANDS[name])


def _requested_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line, if any (the first word that is one)."""
    return next((word for word in argv if word in COMMANDS), None)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the usage stays in --help)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that command's module is imported.

    Importing one module per run keeps start-up fast and keeps a command working even when
    another command's heavy dependencies are broken.
    """
    parser = _OneLineParser(prog="hafm", description="HAFM Bench command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_OneLineParser)
    for name in COMMANDS:
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        module = _module(name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def _check_device(args: argparse.Namespace) -> None:
    """Resolve and check `args.device` (or HAFM_DEVICE) for commands that take `--device`."""
    if "device" not in vars(args):
        return
    import os

    from hafm_core.config import check_device

    if args.device:
        args.device = check_device(args.device, "--device")
    elif os.environ.get("HAFM_DEVICE"):
        args.device = check_device(os.environ["HAFM_DEVICE"], "HAFM_DEVICE")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_requested_command(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_info:  # a usage error (printed as one line) returns 2 like any other
        if exit_info.code in (0, None):  # --help
            raise
        return int(exit_info.code)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        _check_device(args)
        return int(args._run(args) or 0)
    except HafmError as error:
        print(f"hafm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hafm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an unforeseen failure: still exit 2, never 1
        if args.verbose:
            raise
        print(f"hafm {args.command}: unexpected error: {type(error).__name__}: {error} "
              "(run with -v for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
