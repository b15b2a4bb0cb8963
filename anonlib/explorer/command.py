"""Subcommand ``explore`` of ``python -m anonlib`` (see :mod:`anonlib.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..cli import Command, register
from ..scenario.parser import q, scheme_named
from ..schemes import SCHEMES
from .alphabet import FAMILIES
from .compare import compare_schemes
from .options import check_counts, check_invariants, check_ops, check_scheme, world
from .search import explore

EPILOG = """\
examples:
  python -m anonlib explore                                   # mainline, one base page
  python -m anonlib explore --pages thp:2 --depth 4
  python -m anonlib explore --scheme page-count --depth 4 --full  # past the first violation
  python -m anonlib explore --scheme legacy-mapcount --ops write,fork,get-ro,munmap
  python -m anonlib explore --scheme page-count --after 'P write A[0] P1' --ops write,pin-ro
  python -m anonlib explore --scheme no-swp-exclusive --compare mainline --depth 6
  python -m anonlib explore ... | python -m anonlib run -      # replay the counterexample

operation families (--ops): """ + ", ".join(FAMILIES) + """
groups: all, process, gup, pin, get, handle, kernel; '-name' removes one (all,-poison)

exit status:
  0  no invariant violated (known kernel gaps are listed, not counted)
  1  a violation (its shortest counterexample is printed as a runnable scenario),
     or the model raised an exception; the search stops at the end of the first
     depth that has one, unless --full (the progress line says when the first is
     found; Ctrl-C from then on prints it, marking that depth as cut short)
  2  bad arguments"""


def configure(p: argparse.ArgumentParser) -> None:
    """The ``explore`` subcommand's arguments."""
    p.add_argument("--scheme", default="mainline", metavar="NAME",
                   help=f"kernel era: {', '.join(SCHEMES)} (default mainline)")
    p.add_argument("--processes", type=int, default=2, metavar="N",
                   help="live processes at most; fork creates them (default 2)")
    p.add_argument("--pages", default="base:1", metavar="SPEC",
                   help="P's mappings: base:N, thp[:N], hugetlb[:N], comma-separated "
                        "(default base:1)")
    p.add_argument("--depth", type=int, default=6, metavar="D",
                   help="operations after the setup (default 6)")
    p.add_argument("--ops", default="all", metavar="LIST",
                   help="operation families or groups to try (default all)")
    p.add_argument("--invariants", default=None, metavar="LIST",
                   help="invariant ids to check, e.g. INV-11,INV-12 (default all)")
    p.add_argument("--handles", type=int, default=1, metavar="N",
                   help="GUP references held at once (default 1)")
    p.add_argument("--values", type=int, default=2, metavar="N",
                   help="distinct values per writer (default 2)")
    p.add_argument("--after", default="", metavar="STATEMENTS",
                   help="statements to run before the search, separated by ';'")
    p.add_argument("--full", action="store_true",
                   help="search to --depth even after a violation (default: stop at the end "
                        "of the first depth that has one)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes, 0: one per core (default 1)")
    p.add_argument("--no-known-gaps", action="store_true",
                   help="count known kernel gaps (hugetlb vmsplice) as violations")
    p.add_argument("--raw", action="store_true",
                   help="no symmetry reduction: the baseline the canonical form is measured "
                        "against")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress line on stderr (auto: on a terminal, for runs over 1 s)")
    p.add_argument("--counterexamples", metavar="DIR",
                   help="write every counterexample as DIR/SCHEME-INV-n.scn")
    p.add_argument("--compare", metavar="SCHEME",
                   help="instead: the shortest sequences whose outcome, or page-copy count, "
                        "differs between --scheme and SCHEME")


def run(args: argparse.Namespace) -> int:
    """Run ``explore`` with parsed arguments; the exit status."""
    try:
        check_scheme("--scheme", args.scheme)
        if args.compare is not None:
            check_scheme("--compare", args.compare)
        spec = world("--pages", args.pages, args.after)
        spec.initial(scheme_named(args.scheme))
        check_ops("--ops", args.ops)
        check_counts("--", args.processes, args.depth, args.handles, args.values, args.jobs)
        invs = None
        if args.invariants is not None:
            invs = check_invariants("--invariants", args.invariants)
        if args.counterexamples is not None:
            writable_dir(args.counterexamples)
    except ValueError as e:
        print(f"anonlib explore: {e}", file=sys.stderr)
        return 2
    if args.compare:
        print(compare_schemes(args.scheme, args.compare, args.pages, args.processes,
                              args.depth, args.ops, args.handles, args.values, args.after))
        return 0
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    progress = {"auto": None, "always": True, "never": False}[args.progress]
    res = explore(args.scheme, spec, args.processes, args.depth, args.ops, invs, jobs,
                  args.handles, args.values, not args.no_known_gaps, progress,
                  "raw" if args.raw else "canonical", stop_at_first=not args.full)
    first = res.counterexample or (res.crashes[0] if res.crashes else None)
    if first is not None:
        print(first.scenario(), end="")
        print()
        print("\n".join("# " + line for line in res.summary_lines()))
    else:
        print(res)
    if args.counterexamples:
        for i, c in enumerate(res.violations + res.known + res.crashes):
            tag = (f"crash-{i}" if c.invariant == "crash" else c.invariant) + (
                f"-{c.known_gap.id}" if c.known_gap else "")
            with open(os.path.join(args.counterexamples, f"{res.scheme}-{tag}.scn"), "w") as f:
                f.write(c.scenario())
    print(f"time: {res.seconds:.2f} s, {res.rate:,.0f} states/s, "
          f"{res.transitions / res.seconds if res.seconds else 0:,.0f} transitions/s, "
          f"jobs {res.jobs}", file=sys.stderr)
    return res.exit_code


def writable_dir(path: str) -> None:
    """Make ``--counterexamples DIR`` (before the search, not after it), or ValueError why not."""
    if not path:
        raise ValueError("--counterexamples needs a directory name")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--counterexamples {q(path)}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(f"--counterexamples {q(path)}: cannot create it: {reason}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"--counterexamples {q(path)}: cannot write in this directory")


def main_explore(argv: Sequence[str] | None = None) -> int:
    """``explore`` on its own (``python -m anonlib.explore``): parse ``argv`` and run."""
    p = argparse.ArgumentParser(prog="python -m anonlib explore", description=DESCRIPTION,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    return run(args)


DESCRIPTION = """\
Breadth-first search of every operation sequence from a small world (process P
and its mappings; fork creates the others), checking every invariant at every
transition. States equal up to renaming are explored once. A violation is
printed as the shortest runnable scenario that shows it; a clean run lists
what was covered."""

register(Command("explore", "search every operation sequence of a small world for violations",
                 configure, run, description=DESCRIPTION, epilog=EPILOG))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_explore())
