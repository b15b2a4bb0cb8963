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
fixed buffers for `pin rw longterm`, MADV_PAGEOUT on zram for `kernel swapout`, ...)
and how its state is read (pagemap, `/proc/kpageflags` bit 34) is described in
`anonlib/kernelcheck/` and `tools/kernelcheck/anoncheck.c`. One limit worth knowing:
6.12's `kpageflags` shows the head page's flag on every page of a large folio, so the
flag of the other pages of a PTE-mapped THP or of an mTHP is not checked (their folio, frame
and every outcome are)."""


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
