"""``python -m anonlib kernel-check``: the model against the real kernel (:mod:`anonlib.cli`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from ..cli import Command, register
from . import vm

DESCRIPTION = """\
Run scenario files on the model (scheme mainline, which stands for Linux
6.12; with --kernel 6.1 scheme lts-6.1) and on the real kernel (Debian's
Linux 6.12 or 6.1 under QEMU, all files in one boot), and compare every
outcome (values read, signals, GUP results, skipped kernel actions) and
every state word the kernel shows (present, swap, PMD-mapped,
PG_anon_exclusive, same page), and the folio of each page of mthp and thp
mappings (its size and the page's place in it). Statements the kernel
cannot express or show are 'not checked', never 'agreed'. Prints the
agreement table, and statement by statement each file that disagrees."""

EPILOG = """\
examples:
  python -m anonlib kernel-check --all
  python -m anonlib kernel-check scenarios/cow/a03-vmsplice-in-child-base.scn -v
  python -m anonlib kernel-check --all --json book/kernel-check.json
  python -m anonlib kernel-check --kernel 6.1 --all

As root on Debian 12 the first run installs qemu-system-x86 and gcc with
apt-get and downloads Debian's linux-image-6.12.*-amd64-unsigned (with
--kernel 6.1: linux-image-6.1.0-*-amd64-unsigned) into .cache/kernel/
(later runs reuse it; the cache holds both series side by side).

exit status:
  0  the model agrees with the kernel on everything checked, known differences aside
  1  a disagreement not listed in tools/kernelcheck/known-differences.toml
     (for --kernel 6.1: known-differences-6.1.toml)
  2  bad arguments, a scenario file that is missing or not valid, or an invalid
     or missing known-differences file: all checked before the VM boots
  3  the VM failed (did not boot, hung past --timeout, the test program broke)
  77 QEMU, gcc or the kernel are not available and may not be installed here
     (with --skip-unavailable: a note, and exit 0; never under CI=true)"""


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="scenario files")
    p.add_argument("--all", action="store_true",
                   help="every file in scenarios/ (recursively) but cow.c's mTHP size variants "
                        "above 16 kB, which selftests-check runs")
    p.add_argument("--kernel", default=vm.DEFAULT_SERIES, choices=list(vm.SERIES),
                   help=f"the kernel series to boot (default {vm.DEFAULT_SERIES}); the model "
                        "runs under the scheme that stands for it: "
                        + ", ".join(f"{n} -> {s.scheme}" for n, s in vm.SERIES.items()))
    p.add_argument("--known", type=Path, metavar="FILE",
                   help="known differences (default: tools/kernelcheck/known-differences.toml, "
                        "for --kernel 6.1 known-differences-6.1.toml)")
    p.add_argument("--timeout", type=float, default=vm.DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"kill the VM after this long (default {vm.DEFAULT_TIMEOUT:.0f})")
    p.add_argument("--shallow", action="store_true",
                   help="compare page states only where 'expect' and 'show' name them "
                        "(default: every page after every operation)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="statement by statement for every file, not only the failing ones")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    p.add_argument("--markdown", type=Path, metavar="OUT",
                   help="also write the agreement table as a markdown page")
    p.add_argument("--large-swapin", action="store_true",
                   help="leave zswap never enabled in the VM, so zram (SWP_SYNCHRONOUS_IO) "
                        "may swap a whole mTHP back in as one large folio, which the model "
                        "does not do (default: zswap on and off once at boot, and 6.12 swaps "
                        "in small folios)")
    p.add_argument("--no-gup-test", action="store_true",
                   help="boot without gup_test.ko: R/O long-term pins become O_DIRECT writes "
                        "to a ramdisk where those pin alike, and the scenario stops after "
                        "the pin (what a kernel without the module gets)")
    p.add_argument("--no-install", action="store_true",
                   help="never install or download anything (even as root)")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="without QEMU or the kernel, print how to get them and exit 0 "
                        "(ignored under CI=true)")


#: Longest --timeout accepted (a day): a VM that needs more is hung.
MAX_TIMEOUT = 86400.0


def validate(args: argparse.Namespace, files: list[Path]) -> list[str]:
    """Everything wrong with the arguments, found before QEMU boots (empty: go ahead)."""
    from ..scenario.parser import parse
    from ..scenario.source import SourceError, clip, read_source
    from ..scenario.syntax import ScenarioError
    from .known import KnownDifferencesError, known_file_for, load_known

    problems: list[str] = []
    timeout = args.timeout
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        problems.append(f"--timeout must be a number of seconds above 0 and at most "
                        f"{MAX_TIMEOUT:.0f}, not {clip(str(args.timeout))}")
    if args.known is not None:
        try:
            load_known(args.known)
        except KnownDifferencesError as e:
            problems.append(f"--known: {clip(str(e), 400)}")
    elif args.kernel in vm.SERIES:
        try:
            load_known(known_file_for(vm.SERIES[args.kernel]))
        except KnownDifferencesError as e:
            problems.append(f"known differences of Linux {args.kernel}: {clip(str(e), 400)}")
    for option, out in (("--json", args.json), ("--markdown", args.markdown)):
        if out is not None:
            parent = out.parent if str(out.parent) else Path(".")
            if out.is_dir():
                problems.append(f"{option} {clip(str(out))}: is a directory")
            elif not parent.is_dir():
                problems.append(f"{option} {clip(str(out))}: no directory {clip(str(parent))}")
    for f in files:
        try:
            source = read_source(f)
        except SourceError as e:
            problems.append(str(e))
            continue
        sc = parse(source.text, str(f))
        if isinstance(sc, ScenarioError):
            problems.append(f"not a valid scenario: {sc}")
    return problems


def _run(args: argparse.Namespace) -> int:
    from .check import kernel_check, library_files
    from .known import KnownDifferencesError
    from .report import dumps, markdown, text_table

    files = [Path(f) for f in args.files]
    if args.all:
        files = [f for f in library_files() if f not in files] + files
    if not files:
        print("anonlib kernel-check: name scenario files, or --all", file=sys.stderr)
        return 2
    problems = validate(args, files)
    if problems:
        for problem in problems:
            print(f"anonlib kernel-check: {problem}", file=sys.stderr)
        print("anonlib kernel-check: nothing was run (no VM was booted)", file=sys.stderr)
        return 2
    try:
        report = kernel_check(
            files, known_file=args.known, timeout=args.timeout, deep=not args.shallow,
            install=False if args.no_install else None,
            large_swapin=args.large_swapin, gup_test=not args.no_gup_test,
            series=vm.SERIES[args.kernel],
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
    except KnownDifferencesError as e:
        print(f"anonlib kernel-check: {e}", file=sys.stderr)
        return 2
    except vm.Unavailable as e:
        ci = os.environ.get("CI", "").lower() == "true"
        if args.skip_unavailable and not ci:
            print(f"kernel-check skipped: {e}", file=sys.stderr)
            return 0
        print(f"anonlib kernel-check: {e}", file=sys.stderr)
        return 77
    except vm.VMError as e:
        print(f"anonlib kernel-check: the VM failed: {e}", file=sys.stderr)
        return 3
    print(text_table(report, verbose=args.verbose))
    if args.json:
        args.json.write_text(dumps(report))
    if args.markdown:
        args.markdown.write_text(markdown(report))
    return report.exit_code


register(Command("kernel-check", "compare the model with the real Linux 6.12 or 6.1 (boots a VM)",
                 _configure, _run, description=DESCRIPTION, epilog=EPILOG))
