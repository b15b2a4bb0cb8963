"""Subcommand ``diff`` of ``python -m anonlib``: what changes between two schemes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import Command, register
from ..scenario.syntax import InputError
from .options import check_scheme, world
from .rulediff import DIFF_WORLDS, rule_diff

DESCRIPTION = """\
Compare two schemes on everything the project can run: the decision points
where they differ, every scenario of the library whose verdict or reason
changes (each file runs under both, whatever its header names), the page
copies on the copy-count workloads, and, in each standard world, the shortest
operation sequence after which an outcome or the number of copies differs."""

EPILOG = """\
examples:
  python -m anonlib diff mainline no-swp-exclusive
  python -m anonlib diff mainline head-only --worlds mthp:4:4
  python -m anonlib diff mainline page-count --library scenarios/cow --worlds none

exit status:
  0  nothing tells the two schemes apart
  1  something does (the report says what)
  2  bad arguments"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="SCHEME_A", help="the scheme before the change")
    p.add_argument("b", metavar="SCHEME_B", help="the scheme after the change")
    p.add_argument("--library", metavar="PATH", action="append", default=None,
                   help="scenario files or folders (default: scenarios; repeat for more)")
    p.add_argument("--worlds", metavar="W:D,...", default=None,
                   help="worlds and depths to compare, e.g. base:1:4,mthp:4:3; 'none' for no "
                        "search (default: " + ",".join(f"{w}:{d}" for w, d in DIFF_WORLDS) + ")")


def _worlds(text: str | None) -> list[tuple[str, int]]:
    if text is None:
        return list(DIFF_WORLDS)
    if text.strip() == "none":
        return []
    out = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        spec, _, depth = item.rpartition(":")
        usage = f"--worlds: bad item {item!r}: use WORLD:DEPTH, e.g. base:1:4 (depth 0 to 8)"
        if not spec or not depth.isdigit() or not 0 <= int(depth) <= 8:
            raise InputError(usage)
        try:
            world("--worlds", spec)
        except (InputError, ValueError) as e:
            raise InputError(f"{usage}; {e}") from None
        out.append((spec, int(depth)))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        check_scheme("SCHEME_A", args.a)
        check_scheme("SCHEME_B", args.b)
        worlds = _worlds(args.worlds)
        library = args.library if args.library is not None else ["scenarios"]
        for path in library:
            if not Path(path).exists():
                raise InputError(f"--library {path!r}: no such file or folder")
    except InputError as e:
        print(f"anonlib diff: {e}", file=sys.stderr)
        return 2
    res = rule_diff(args.a, args.b, library=library, worlds=worlds)
    print(res)
    return 0 if res.same else 1


register(Command("diff", "what changes between two schemes: library verdicts, page copies, "
                 "and the shortest sequences that tell them apart", configure, run,
                 description=DESCRIPTION, epilog=EPILOG))
