"""Write the book's appendix on the kernel check from the last recorded runs (no VM needed).

``tools/kernelcheck/last-run.json`` (Linux 6.12, scheme ``mainline``) and
``tools/kernelcheck/last-run-6.1.json`` (Linux 6.1, scheme ``lts-6.1``) are
committed records of the last ``kernel-check`` run over the whole library on
each kernel; this module turns them into one markdown page, so the book build
never boots a VM::

    python -m anonlib.kernelcheck.appendix [RUN.json ...] [OUT.md]

(defaults: both recorded runs and ``book/appendix-kernel-check.md``; the page is
the argument that ends in ``.md``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .report import from_json, markdown_kernels
from .vm import SERIES

REPO = Path(__file__).resolve().parents[2]
#: The recorded run of each kernel series, in the order the page shows them.
RUNS = tuple(REPO / "tools" / "kernelcheck" / f"last-run{s.suffix}.json"
             for s in SERIES.values())
LAST_RUN = RUNS[0]
DEFAULT_OUT = REPO / "book" / "appendix-kernel-check.md"

INTRO = """\
Two kernels: Linux 6.12, the kernel the model follows (scheme `mainline`), and
Linux 6.1, Debian 12's own kernel (scheme `lts-6.1`, which differs from `mainline`
at named decision points: a read fault on a swapped-out exclusive page maps it
read-only, R/O long-term pins do not unshare the zero page, mprotect leaves a PMD
read-only, the last PTE of a large folio may reuse it, reclaim splits every large
folio no PMD maps, migration moves a partially mapped THP whole, a THP split keeps
zero-filled subpages; `python -m anonlib schemes lts-6.1` lists them with their
commits). 6.1 has no multi-size THP, so the scenarios with an `mthp` mapping stop
there on 6.1 (*not checked*). Three probes (`thp-last-pte-reuse.scn`,
`thp-partial-migrate.scn`, `thp-split-zero.scn`) end differently on the two kernels,
and each scheme agrees with its own kernel; run under the other kernel's scheme, each
of them disagrees (checked by hand when the probes were added: the recorded runs
below hold each kernel under its own scheme)."""

RERUN = """\
The tables below come from the last recorded runs (`tools/kernelcheck/last-run.json`
and `tools/kernelcheck/last-run-6.1.json`); building the book does not boot anything.
To check again on your machine, run `make kernel-check` (as root on Debian 12 it
installs QEMU and downloads Debian's `linux-image-6.12.*-amd64-unsigned` and
`linux-image-6.1.0-*-amd64-unsigned` into `.cache/kernel/` the first time; one boot
per kernel under QEMU without KVM takes about a minute). To refresh this page's data:

```
python -m anonlib kernel-check --all tools/kernelcheck/probes/*.scn \\
    --json tools/kernelcheck/last-run.json
python -m anonlib kernel-check --kernel 6.1 --all tools/kernelcheck/probes/*.scn \\
    --json tools/kernelcheck/last-run-6.1.json
python -m anonlib.kernelcheck.appendix
```

How each statement is carried out on the real kernel (vmsplice for `get ro`, io_uring
fixed buffers for `pin rw longterm`, MADV_PAGEOUT on zram for `kernel swapout`, ...)
and how its state is read (pagemap, `/proc/kpageflags` bit 34) is described in
`anonlib/kernelcheck/` and `tools/kernelcheck/anoncheck.c`. One limit worth knowing:
6.12's `kpageflags` shows the head page's flag on every page of a large folio, so there
the flag of the other pages of a PTE-mapped THP or of an mTHP is not checked (their
folio, frame and every outcome are); 6.1's shows each page's own flag, so on 6.1 it is."""


def write_appendix(runs: Sequence[Path] = RUNS, out: Path = DEFAULT_OUT) -> Path:
    """Write the appendix page from recorded runs (one per kernel); returns the page's path."""
    reports = [from_json(json.loads(run.read_text())) for run in runs]
    out.write_text(markdown_kernels(reports, intro=INTRO, rerun=RERUN))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    pages = [Path(a) for a in args if a.endswith(".md")]
    runs = [Path(a) for a in args if not a.endswith(".md")] or list(RUNS)
    if len(pages) > 1:
        print(f"one page to write, not {len(pages)}: {' '.join(map(str, pages))}",
              file=sys.stderr)
        return 2
    out = pages[0] if pages else DEFAULT_OUT
    for run in runs:
        if not run.exists():
            print(f"no recorded run at {run}: run python -m anonlib kernel-check --all "
                  f"--json {run}", file=sys.stderr)
            return 2
    print(write_appendix(runs, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
