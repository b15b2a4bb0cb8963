"""``python -m anonlib selftests-check``: the real cow.c against the model (:mod:`anonlib.cli`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from ..cli import Command, register
from . import selftests, vm

DESCRIPTION = """\
Build the real mm selftests of Linux 6.12 (tools/testing/selftests/mm/cow.c
and gup_longterm.c from Debian's linux-source-6.12, static, with liburing,
and mm/gup_test.c as an out-of-tree module), run them in the kernel check's
VM (Debian's Linux 6.12 under QEMU: THP, every mTHP size, 2 MiB and 1 GiB
hugetlb pages, swap on zram, gup_test), and compare every TAP result with the
model's verdict (scheme mainline) on the scenario of scenarios/cow/ that
mirrors the case. Prints the table: per selftest and family, how many cases
agree, disagree, have no mirror, were skipped by the kernel, or are not
modelled (mTHP sizes other than 16 kB, hugetlb sizes other than 2 MiB,
non-anonymous memory, gup_longterm's file mappings)."""

EPILOG = """\
examples:
  python -m anonlib selftests-check
  python -m anonlib selftests-check --json tools/kernelcheck/selftests-last-run.json
  python -m anonlib selftests-check --from-results .cache/kernel/selftests/last-results.txt

A run takes 6 to 7 minutes under TCG, mostly the 1 GiB hugetlb cases (about
20 seconds with --no-1g).

The build is cached in .cache/kernel/selftests/ (the raw TAP of the last run
is kept there as last-results.txt). As root on Debian 12 the first run
installs linux-source-6.12, linux-headers-<release> and liburing-dev.

exit status:
  0  no case disagrees and every anonymous case has a mirror
  1  a case disagrees, or a case the library should mirror has no scenario
  2  bad arguments
  3  the VM failed
  77 QEMU, gcc, the kernel or the sources are not available (with
     --skip-unavailable: a note, and exit 0; never under CI=true)"""


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=selftests.DEFAULT_TIMEOUT,
                   metavar="SECONDS", help="kill the VM after this long (default "
                   f"{selftests.DEFAULT_TIMEOUT:.0f})")
    p.add_argument("--no-1g", action="store_true",
                   help="no 1 GiB hugetlb pages (a smaller VM; those cases skip)")
    p.add_argument("--from-results", type=Path, metavar="FILE",
                   help="compare a saved VM output (last-results.txt) instead of booting")
    p.add_argument("--save-results", type=Path, metavar="OUT",
                   help="also copy the VM's raw output (TAP) there")
    p.add_argument("-v", "--verbose", action="store_true", help="every case, not only "
                   "the disagreements")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the record as JSON")
    p.add_argument("--markdown", type=Path, metavar="OUT", help="also write the page")
    p.add_argument("--no-install", action="store_true",
                   help="never install or download anything (even as root)")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="without QEMU, the kernel or the sources, say so and exit 0 "
                        "(ignored under CI=true)")


def _run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= 86400):
        print("anonlib selftests-check: --timeout must be above 0 and at most 86400",
              file=sys.stderr)
        return 2
    for option, out in (("--json", args.json), ("--markdown", args.markdown),
                        ("--save-results", args.save_results)):
        if out is not None and (out.is_dir() or not (out.parent if str(out.parent)
                                                      else Path(".")).is_dir()):
            print(f"anonlib selftests-check: {option} {out}: cannot write there",
                  file=sys.stderr)
            return 2
    if args.from_results is not None:
        try:
            text = args.from_results.read_text(errors="replace")
        except OSError as e:
            print(f"anonlib selftests-check: {e}", file=sys.stderr)
            return 2
    else:
        try:
            booted = selftests.run_vm(
                install=False if args.no_install else None, timeout=args.timeout,
                huge_1g=not args.no_1g, log=lambda s: print(s, file=sys.stderr, flush=True))
        except vm.Unavailable as e:
            if args.skip_unavailable and os.environ.get("CI", "").lower() != "true":
                print(f"selftests-check skipped: {e}", file=sys.stderr)
                return 0
            print(f"anonlib selftests-check: {e}", file=sys.stderr)
            return 77
        except vm.VMError as e:
            print(f"anonlib selftests-check: the VM failed: {e}", file=sys.stderr)
            return 3
        text = booted.results
        cache = selftests.selftests_cache()
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "last-results.txt").write_text(text)
        if args.save_results:
            args.save_results.write_text(text)
    results, facts = selftests.parse_results(text)
    if not results:
        print("anonlib selftests-check: no TAP result in the VM's output", file=sys.stderr)
        return 3
    rows = selftests.compare(results)
    print(selftests.text_table(rows, verbose=args.verbose))
    rec = selftests.record(results, facts, rows)
    if args.json:
        args.json.write_text(json.dumps(rec, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(selftests.markdown(rec))
    bad = [r for r in rows if r.outcome in ("disagree", "no mirror")]
    return 1 if bad else 0


register(Command("selftests-check",
                 "run the kernel's own cow.c in the VM and compare it with the model",
                 _configure, _run, description=DESCRIPTION, epilog=EPILOG))
