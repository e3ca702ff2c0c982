"""The `hafm` command line.

Each subcommand is a module exposing `HELP`, `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their command runs, so `hafm doctor` never pays for torch
and commands that need Django (benchmark) live in the Django packages without `hafm_core`
importing Django itself.

Exit codes: 0 success, 1 a failed check (e.g. a regression), 2 bad usage or bad input.
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that command's module is imported.

    Importing one module per run keeps start-up fast and keeps a command working even when
    another command's heavy dependencies are broken.
    """
    parser = argparse.ArgumentParser(prog="hafm", description="HAFM Bench command line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        module = _module(name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_requested_command(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except HafmError as error:
        print(f"hafm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hafm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
