"""Write the book's appendix on the kernel check from the last recorded run (no VM needed).

``tools/kernelcheck/last-run.json`` is a committed record of the last
``kernel-check`` run over the whole library; this module turns it into a
markdown page, so the book build never boots a VM::

    python -m anonlib.kernelcheck.appendix [RUN.json] [OUT.md]

(defaults: ``tools/kernelcheck/last-run.json`` and ``book/appendix-kernel-check.md``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .report import from_json, markdown

REPO = Path(__file__).resolve().parents[2]
LAST_RUN = REPO / "tools" / "kernelcheck" / "last-run.json"
DEFAULT_OUT = REPO / "book" / "appendix-kernel-check.md"

RERUN = """\
The table below comes from the last recorded run (`tools/kernelcheck/last-run.json`);
building the book does not boot anything. To check again on your machine, run
`make kernel-check` (as root on Debian 12 it installs QEMU and downloads Debian's
`linux-image-6.12.*-amd64-unsigned` into `.cache/kernel/` the first time; one boot
under QEMU without KVM takes well under a minute). To refresh this page's data:

```
python -m anonlib kernel-check --all tools/kernelcheck/probes/*.scn \\
    --json tools/kernelcheck/last-run.json
python -m anonlib.kernelcheck.appendix
```

How each statement is carried out on the real kernel (vmsplice for `get ro`, io_uring
fixed buffers for `pin rw longterm`, `gup_test.ko`'s `PIN_LONGTERM_TEST_START` for
`pin ro longterm`, MADV_PAGEOUT on zram for `kernel swapout`, ...) and how its state is
read is described in `docs/real-kernel.md`, `anonlib/kernelcheck/` and
`tools/kernelcheck/anoncheck.c`. Three of the checks go beyond pagemap and
`/proc/kpageflags` bit 34:

- `exclusive (own struct page, /proc/kcore)`: 6.12's `kpageflags` shows the head page's
  flag on every page of a large folio, so for the other pages of a PTE-mapped THP or of
  an mTHP the guest reads the page's own `struct page` through `/proc/kcore` (at
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
  in the frames (an unshare is a new one), the flags, and every later statement.

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


def write_appendix(run: Path = LAST_RUN, out: Path = DEFAULT_OUT) -> Path:
    """Write the appendix page from a recorded run; returns the page's path."""
    report = from_json(json.loads(run.read_text()))
    out.write_text(markdown(report, rerun=RERUN))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run = Path(args[0]) if args else LAST_RUN
    out = Path(args[1]) if len(args) > 1 else DEFAULT_OUT
    if not run.exists():
        print(f"no recorded run at {run}: run python -m anonlib kernel-check --all --json {run}",
              file=sys.stderr)
        return 2
    print(write_appendix(run, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
