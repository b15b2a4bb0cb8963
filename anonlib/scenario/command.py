"""Subcommands ``run`` and ``verdicts`` of ``python -m anonlib`` (see :mod:`anonlib.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import Command, register
from ..schemes import SCHEMES
from .library import check_file, find_scenarios, table
from .parser import scheme_named
from .runner import run_scenario
from .source import SourceError, read_source
from .syntax import InputError


def scheme_name(text: str) -> str:
    """An argparse ``type``: a scheme name, or an error with the nearest one."""
    try:
        return scheme_named(text).name
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None

RUN_DESCRIPTION = """\
Run scenario files on the model and print each statement's outcome: the
value of each read, the result of each check, the output of each 'show'.
Every expectation in the file is checked, and so are the model's invariants
after every statement; the first failure stops the run and is reported on
standard error with its file and line."""

RUN_EPILOG = f"""\
a scenario, one statement per line ('#' starts a comment):
  scheme mainline                 # optional, first: the kernel era
  spawn P
  P mmap A 1                      # one private anonymous page
  P write A[0] 1
  P fork Q
  Q get A[0] ro as H              # vmsplice: a plain reference (FOLL_GET)
  Q munmap A
  P write A[0] secret
  H read expect 1                 # the child's pipe must not see 'secret'

examples:
  python -m anonlib run scenarios/history/b02-cve-2020-29374.scn
  python -m anonlib run --scheme legacy-mapcount scenarios/history/b02-cve-2020-29374.scn
  python -m anonlib run --trace my.scn          # the state after every statement
  python -m anonlib run - < my.scn               # '-' reads standard input

schemes: {", ".join(SCHEMES)}

exit status:
  0  every expectation and invariant held
  1  an expectation or invariant failed (the report names the line, what was
     expected, what was found, and the invariant with its explanation)
  2  a scenario is not valid (syntax, unknown name, page out of range, an
     operation the scheme's kernel lacks), a file cannot be read (missing,
     not UTF-8, over the 4 MiB limit), an argument is not valid, or the
     output cannot be written (docs/limits.md)
  With several files, the status is the worst of them."""


def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files ('-': standard input)")
    p.add_argument(
        "--scheme",
        type=scheme_name,
        metavar="NAME",
        help="run under this scheme instead of the file's 'scheme' line",
    )
    p.add_argument("--trace", action="store_true", help="print the state after each statement")


def _run(args: argparse.Namespace) -> int:
    status = 0
    for i, file in enumerate(args.files):
        try:
            source = read_source(file)
        except SourceError as e:
            print(e, file=sys.stderr)
            status = max(status, 2)
            continue
        name = source.name
        if len(args.files) > 1:
            print(("\n" if i else "") + f"==> {name} <==")
        result = run_scenario(
            source.scenario_text, args.scheme, name=name, trace=args.trace, keep_steps=False
        )
        if result.transcript:
            print(result.transcript)
        sys.stdout.flush()
        if result.failures:
            print(result.report(), file=sys.stderr)
            sys.stderr.flush()
        print(result.verdict())
        status = max(status, result.exit_code)
    return status


register(
    Command(
        "run",
        "run scenario files and check their expectations",
        _configure_run,
        _run,
        description=RUN_DESCRIPTION,
        epilog=RUN_EPILOG,
        rest="files",
    )
)

VERDICTS_EPILOG = """\
Each library file states its expected exit status per scheme in a header line:
  # expect: mainline=0 page-count=1 legacy-mapcount=1
This command runs every file under every scheme its header names (as the
kernel memory model's litmus tests do) and lists the verdicts that differ.

examples:
  python -m anonlib verdicts scenarios/
  python -m anonlib verdicts --all scenarios/history/

exit status: 0 every verdict as stated; 1 some verdict differs; 2 a file
cannot be read or has no usable '# expect:' line."""


def _configure_verdicts(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or directories")
    p.add_argument("--all", action="store_true", help="list every verdict, not only differences")


def _verdicts(args: argparse.Namespace) -> int:
    status, verdicts = 0, []
    if "" in args.paths:
        print("'': cannot read: an empty file name names no file", file=sys.stderr)
        status = 2
    files = find_scenarios(p for p in args.paths if p)
    for p in args.paths:
        if p and Path(p).is_dir() and not any(f.is_relative_to(p) for f in files):
            print(f"{p}: no .scn file in this directory", file=sys.stderr)
            status = 2
    if not files:
        print("anonlib verdicts: no scenario file to check", file=sys.stderr)
        return 2
    for path in files:
        try:
            got = check_file(path)
        except SourceError as e:
            got = str(e).removeprefix(f"{path}: ")
        if isinstance(got, str):
            print(f"{path}: {got}", file=sys.stderr)
            status = 2
            continue
        verdicts.extend(got)
    differ = [v for v in verdicts if v.differs]
    shown = verdicts if args.all else differ
    if shown:
        print(table(shown))
    print(f"{len(files)} files, {len(verdicts)} runs, {len(differ)} verdicts differ")
    if differ and status == 0:
        status = 1
    return status


register(
    Command(
        "verdicts",
        "run the scenario library under every scheme its headers name",
        _configure_verdicts,
        _verdicts,
        description="Check the scenario library's stated verdicts against the model.",
        epilog=VERDICTS_EPILOG,
        rest="paths",
    )
)
