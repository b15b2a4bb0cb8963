"""``python -m anonlib``: the command line, one subcommand per registered :class:`Command`.

A subcommand lives in its own module and registers itself on import::

    from anonlib.cli import Command, register

    def configure(p: argparse.ArgumentParser) -> None:
        p.add_argument("n", type=int)

    def run(args: argparse.Namespace) -> int:
        print(args.n)
        return 0

    register(Command("echo", "print a number", configure, run))

and is listed in :data:`COMMAND_MODULES` so that :func:`main` imports it.
:func:`main` never lets a traceback reach the user: a bug prints one
``internal error`` line and exits 70 (set ``ANONLIB_DEBUG=1`` to see the
traceback), and that path is for bugs only. Invalid input, a file that cannot
be read and an output that cannot be written (a full disk) exit 2 with one
line saying where and why; ``docs/limits.md`` is the contract.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Exit status for a bug in anonlib itself (EX_SOFTWARE in sysexits.h).
EXIT_INTERNAL = 70

#: Exit status for invalid input, a bad argument, or a file that cannot be read or written.
EXIT_INVALID = 2
#: An output that cannot be written (a full disk) is reported like an unreadable input.
EXIT_ENVIRONMENT = EXIT_INVALID

#: Modules whose import registers subcommands (add yours here).
COMMAND_MODULES: tuple[str, ...] = (
    "anonlib.scenario.command",
    "anonlib.race.command",
    "anonlib.kernelcheck.command",
    "anonlib.kernelcheck.selftests_command",
    "anonlib.explorer.command",
    "anonlib.explorer.diff_command",
)


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, arguments and handler (returns the exit status)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""
    epilog: str = ""
    #: a list-valued positional that may continue after options (``run a.scn --trace b.scn``)
    rest: str = ""


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add ``command`` to ``python -m anonlib`` (a name can be registered once)."""
    if command.name in COMMANDS and COMMANDS[command.name] is not command:
        raise ValueError(f"command {command.name!r} is already registered")
    COMMANDS[command.name] = command
    return command


# ------------------------------------------------------------------ built-in: schemes


def _configure_schemes(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="schemes to describe (default: all)")


def _run_schemes(args: argparse.Namespace) -> int:
    from .scenario.parser import scheme_named
    from .scenario.syntax import InputError
    from .schemes import MAINLINE, SCHEMES, describe_difference

    try:
        chosen = [scheme_named(n) for n in args.names or SCHEMES]
    except InputError as e:
        print(f"anonlib schemes: {e}", file=sys.stderr)
        return 2
    for i, s in enumerate(chosen):
        if i:
            print()
        print(f"{s.name}: {s.versions}")
        print(f"  {s.description}")
        for c in s.commits:
            print(f"  commit: {c}")
        for line in describe_difference(MAINLINE, s):
            print(f"  differs from mainline: {line}")
    return 0


register(
    Command(
        "schemes",
        "list the kernel eras (schemes) and how each differs from mainline",
        _configure_schemes,
        _run_schemes,
        description="Each scheme is a set of kernel rules; schemes differ only at named "
        "decision points, listed here against mainline.",
    )
)


# ------------------------------------------------------------------ the parser and main

DESCRIPTION = """\
anonlib: a runnable model of Linux anonymous memory and PG_anon_exclusive.

Write a scenario (processes map memory, write, fork, pin pages; the kernel
swaps, migrates and merges behind their backs), run it under a kernel era,
and see every outcome, every broken promise and the state at each step."""

EPILOG = """\
examples:
  python -m anonlib run scenarios/history/b02-cve-2020-29374.scn
  python -m anonlib run --scheme legacy-mapcount scenarios/history/b02-cve-2020-29374.scn
  python -m anonlib verdicts scenarios/
  python -m anonlib schemes

'python -m anonlib COMMAND --help' explains each command."""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every registered subcommand."""
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(
        prog="python -m anonlib",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"anonlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for cmd in sorted(COMMANDS.values(), key=lambda c: c.name):
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description or cmd.help,
            epilog=cmd.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.configure(p)
        p.set_defaults(_command=cmd)
    return parser


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that the flush at exit cannot fail again."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - kept open until exit
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (never raises, except SystemExit)."""
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        command: Command | None = getattr(args, "_command", None)
        if command is None:
            parser.print_help(sys.stderr)
            return 2
        if extra:
            if not command.rest or any(e.startswith("-") and e != "-" for e in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            getattr(args, command.rest).extend(extra)
        status = command.run(args)
        sys.stdout.flush()  # a full disk or a closed output shows here, not at exit
        return status
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("anonlib: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. '| head'); say nothing more
        _silence_stdout()
        return 0
    except OSError as e:
        # the environment, not anonlib: a full disk (> /dev/full), an output that
        # cannot be written. An input that cannot be read is reported where it is read.
        _silence_stdout()
        where = f"{e.filename}" if e.filename else "standard output"
        print(f"anonlib: cannot write {where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except Exception as e:  # noqa: BLE001 - the whole point: no traceback for the user
        if os.environ.get("ANONLIB_DEBUG"):
            raise
        print(
            f"anonlib: internal error: {type(e).__name__}: {e}\n"
            "This is a bug in anonlib, not in your scenario; rerun with ANONLIB_DEBUG=1 "
            "for the traceback and please report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
