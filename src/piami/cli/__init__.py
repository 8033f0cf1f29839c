"""The ``piami`` command line.

Each subcommand lives in its own module of this package with two functions:
``register(subparsers)`` adds its parser (setting ``func``), and the function it sets returns an
exit status. A :class:`~piami.errors.PiamiError` is printed as one line on stderr, with exit status
2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from piami.errors import PiamiError

# Subcommand modules, in the order ``piami --help`` lists them. Add a module here to add a command.
COMMANDS = (
    "experiments",
    "certify",
    "process",
    "stats",
    "reconstruct",
    "measure",
    "sweep",
    "runs",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        self.exit(2, f"piami: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from piami import __version__

    parser = _Parser(prog="piami", description="piami: exact theory beside measurement.")
    parser.add_argument("--version", action="version", version=f"piami {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"piami.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"piami.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """Distinct warnings as one line each, numpy's numerical ones said as a user can act on them."""
    lines: list[str] = []
    for w in caught:
        text = str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
        if issubclass(w.category, RuntimeWarning) and (
            "divide by zero" in text or "invalid value" in text or "overflow" in text
        ):
            text = (
                f"a numerical step met {text.split(' encountered')[0]} "
                "(inputs too small or degenerate?); results holding nan or inf are not identified"
            )
        line = f"piami: warning: {text}"
        if line not in lines:
            lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``piami`` script; returns the exit status.

    Warnings raised while a command runs are collected: on bad input only the one error line is
    printed; after a command that succeeded, each distinct warning is printed as one line.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # once per place: a loop cannot flood the list
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            status = int(args.func(args) or 0)
        except PiamiError as exc:
            print(f"piami: error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `piami process mess3 | head`: the reader left: not an error
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except OSError as exc:  # a path the system refused (too long, not a folder, no room)
            where = f" ({str(exc.filename)[:120]})" if exc.filename else ""
            print(f"piami: error: {exc.strerror or exc}{where}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("piami: interrupted", file=sys.stderr)
            return 130
    for line in _warning_lines(caught):
        print(line, file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
