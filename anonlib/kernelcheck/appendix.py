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
fixed buffers for `pin rw longterm`, `gup_test.ko`'s `PIN_LONGTERM_TEST_START` for
`pin ro longterm`, MADV_PAGEOUT on zram for `kernel swapout`, ...) and how its state is
read is described in `docs/real-kernel.md`, `anonlib/kernelcheck/` and
`tools/kernelcheck/anoncheck.c`. Three of the checks go beyond pagemap and
`/proc/kpageflags` bit 34:

- `exclusive (own struct page, /proc/kcore)`: 6.12's `kpageflags` shows the head page's
  flag on every page of a large folio (6.1's shows each page's own, so on 6.1 this
  reading is not used), so for the other pages of a PTE-mapped THP or of an mTHP the
  guest reads the page's own `struct page` through `/proc/kcore` (at
  `vmemmap_base + pfn * 64`; `PG_anon_exclusive` is bit 11, `PG_owner_2`). The reading
  is trusted only where it agrees with `kpageflags` (a tail page's `compound_head` must
  point at the head `kpageflags` finds; a head's flags must be what `kpageflags` shows).
  A one-off cross-check with drgn 0.0.22 on a QEMU memory dump and Debian's
  `linux-image-6.12.118+deb12-amd64-dbg` read the same flags words (below).
- `writable before the write (page faults)`: a write's first store takes no page fault
  (`getrusage`, minor plus major) exactly when the entry was present and writable, so
  each `write` checks the model's `writable` word of the moment before.
- R/O long-term pins through `gup_test.ko` (`mm/gup_test.c` of the 6.12 source, built
  as four module instances, since each holds one pinned range): what the pin did shows
  in the frames (an unshare is a new one), the flags, and every later statement. On
  6.1 a R/O long-term pin is not expressible: 6.1's `gup_test.c` cannot hold one (its
  `PIN_LONGTERM_TEST_START` came in 6.2), and 6.1's O_DIRECT, the stand-in used on
  6.12 without the module, takes plain references (`iov_iter_get_pages2`), not a
  `FOLL_PIN` (that came with `iov_iter_extract_pages`, 6.3), so a scenario stops at
  its first R/O long-term pin there.

drgn on a memory dump works, but it is a check of the method, not part of the run: on
a 1 GiB guest booted as the check boots it (`-cpu max`, so 5-level paging),
`dump-guest-memory` over QMP wrote 1.07 GB in 1.5 s, or in 7 s with `paging=true`,
which drgn 0.0.22 needed (without it, reading `vmemmap` failed with "recursive address
translation; page table may be missing from core dump"); drgn also recognizes the dump
only with `-device vmcoreinfo` and the `qemu_fw_cfg` module loaded in the guest. The
debug symbols package is a 1.03 GB download (6.7 GB unpacked; its `vmlinux` alone is
355 MB, 48 s to extract). The run compares about 8,000 tail-page flags after a few
thousand statements, so a dump per observation would be hours of dumping where
`/proc/kcore` reads the same word in the guest at once. The cross-check, on a
PTE-mapped THP whose second half was `MADV_DONTFORK` before a fork (the head shared,
the pages of that half still exclusive, each with its own bit): for six pages, drgn's
`page->flags` and `page->compound_head` equalled the guest's `/proc/kcore` reading word
for word, `PG_anon_exclusive` was 11 in the debug information, and `kpageflags` showed
bit 34 clear on all six (`python tools/kernelcheck/drgn_crosscheck.py` does it again)."""


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
