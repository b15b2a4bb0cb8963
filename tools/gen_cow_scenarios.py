#!/usr/bin/env python3
"""Write scenarios/cow/*.scn: the kernel's cow.c selftest cases as scenarios.

Every anonymous case A1-A14 of tools/testing/selftests/mm/cow.c runs over the
memory variants the model supports, plus the THP collapse cases C1-C4 and the
zero-page cases N1-N3. Each file states, in its header, the exit status the
scenario should have under each kernel era (scheme), and for every failure
why it fails, in prose ("Fails under ...") and as the reason the run stops on
the ``# expect:`` line (``page-count=1:INV-11``; see anonlib/scenario/library.py).
The verdicts are derived here from the kernel's rules (see
docs/cow-cases.md and docs/history.md), never from
the model, so that ``python -m anonlib verdicts scenarios/`` compares the model
against the kernel.

The reason comes from the same rule as the prose: each failure is built by
:func:`flag_gap`, :func:`pin_lost` or :func:`leak`, which name what goes wrong
in the kernel, and what goes wrong decides which check sees it first. The
runner checks the invariants after every operation, so the invariant broken
by the faulty operation stops the run before a later ``expect`` line: one
head bit that cannot describe a partly shared THP leaves a writable PTE of a
page read as shared (INV-1, at the fork); a write fault that copies away from
its own process's pin breaks pin coherence (INV-11, at the write); a write
fault that reuses a page another process's reference holds breaks isolation
(INV-12, at the write). A failure no invariant sees would stop at its read
(``expect``); no cow.c case is one. :func:`render` refuses a failure without a
reason.

Usage:
    python tools/gen_cow_scenarios.py            # (re)write scenarios/cow/
    python tools/gen_cow_scenarios.py --check    # exit 1 if a committed file is stale

The mTHP variants (``*-mthp``) are cow.c's runs for the 16 kB size
(``mthp_pages=4``): PTE-mapped, swapped-out PTE-mapped, single PTE, single PTE
swapped out, partially mremap()'ed, partially shared; ``*-mthp-32kb`` to
``*-mthp-1024kb`` are the same runs for every other mTHP size cow.c runs on
x86-64 below the PMD size, each file enabling only its own size
(``config mthp_pages=N``), with ``for`` lines where a statement repeats for
more than four pages. cow.c has no plain "with THP" run for a size
below the PMD size (run_anon_test_case). mTHP is 6.8 and later, so their headers
name only ``mainline`` and ``head-only`` (docs/large-folios.md §11, §12), with
the verdicts of :func:`mthp_verdicts`.

The "partially mremap()'ed THP" runs move half of the folio with
``P mremap A[i] B``. cow.c's 1 GiB hugetlb runs have no files of their own: the
model's hugetlb page has no size beside its page count, and 6.12 applies the
same rules to both sizes, so the 2 MiB files mirror them too
(anonlib/kernelcheck/selftests.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scenarios" / "cow"
THP = 4  # the default config: thp_pages=4, hugetlb_pages=4
OLD, NEW = "1", "ff"

ML, NSE, PC, GCB, LM, HO = (
    "mainline",
    "no-swp-exclusive",
    "page-count",
    "gup-cow-break",
    "legacy-mapcount",
    "head-only",
)
ALL = (ML, NSE, PC, GCB, LM, HO)


# ---------------------------------------------------------------- memory variants


@dataclass(frozen=True)
class Variant:
    key: str
    log: str  # cow.c's log text
    setup: tuple[str, ...]
    pages: tuple[int, ...]
    swapped: bool = False
    kind: str = "small"  # small | pmd | pte (PTE-mapped THP) | mthp | hugetlb
    note: str = ""
    schemes: tuple[str, ...] = ()  # the schemes the header names; () for all of them
    config: tuple[str, ...] = ()  # header lines before 'spawn P'


#: Most pages written out one statement each; above it a ``for`` line repeats the statement.
LOOP_ABOVE = 4


def _each(pages: tuple[int, ...], fmt: str) -> list[str]:
    """``fmt`` for each page (``{i}`` the page, ``{h}`` its handle's name): one statement
    per page, or one ``for`` line when the pages are a run of more than LOOP_ABOVE."""
    if len(pages) > LOOP_ABOVE and pages == tuple(range(pages[0], pages[-1] + 1)):
        return [f"for i in {pages[0]}..{pages[-1]}: " + fmt.format(i="{i}", h="H{i}")]
    return [fmt.format(i=i, h=_h(pages, i)) for i in pages]


def _h(pages: tuple[int, ...], i: int) -> str:
    return "H" if len(pages) == 1 else f"H{i}"


def _fill(n: int) -> tuple[str, ...]:
    return tuple(_each(tuple(range(n)), f"P write A[{{i}}] {OLD}"))


_ALL = tuple(range(THP))
_THP = ("P mmap A thp", *_fill(THP))
_PTE = (*_THP, "kernel split-pmd P A")
_SINGLE = (*_PTE, *(f"P madvise A[{i}] dontneed" for i in range(1, THP)))
_SWAP = ("kernel swapout P A[0]",)
MTHP = 4  # the default config: mthp_pages=4, the 16 kB size (order 2)
_MTHP_SCHEMES = (ML, HO)  # mTHP is 6.8 and later: docs/large-folios.md §11
#: The other mTHP sizes cow.c runs on x86-64 with 4 kB pages (every order from 2 up to the
#: PMD size, detected from /sys/kernel/mm/transparent_hugepage/hugepages-*kB): 32 kB to
#: 1 MB, in pages. Each has its own files, ``*-mthp-32kb.scn`` and so on.
MTHP_SIZES = (8, 16, 32, 64, 128, 256)


def _partially_shared(setup: tuple[str, ...], n: int) -> tuple[str, ...]:
    return (
        *setup,
        *_each(tuple(range(1, n)), "P madvise A[{i}] dontfork"),
        "P fork C",
        "C exit",
        *_each(tuple(range(1, n)), "P madvise A[{i}] dofork"),
    )


def _subpages(first: int, n: int) -> str:
    return f"subpage {first}" if n - first == 1 else f"subpages {first}-{n - 1}"


def mthp_variants(n: int) -> tuple[Variant, ...]:
    """cow.c's runs for one mTHP size of ``n`` pages (do_run_with_thp), in its order.

    The 16 kB size (``n`` = 4, the default ``mthp_pages``) keeps the plain keys
    (``pte-mthp``); every other size adds its size to the key (``pte-mthp-32kb``)
    and a ``config`` line that enables that size alone, with swap slots for every
    page. Pages are written one statement each up to 4 pages and with ``for`` above.
    """
    kb = n * 4
    suffix = "" if n == MTHP else f"-{kb}kb"
    config = () if n == MTHP else (f"config mthp_pages={n} swap_slots={max(16, n)}",)
    pages = tuple(range(n))
    setup = ("P mmap A mthp", *_fill(n))
    single = (*setup, *_each(tuple(range(1, n)), "P madvise A[{i}] dontneed"))
    size = f"({kb} kB)"
    rest = _subpages(1, n)
    return (
        Variant(
            "pte-mthp" + suffix,
            f"with PTE-mapped THP {size}",
            setup,
            pages,
            kind="mthp",
            note=f"The first write fault allocates a {kb} kB folio mapped by {n} PTEs, every "
            "page exclusive (alloc_anon_folio, folio_add_new_anon_rmap; mm/memory.c, "
            "mm/rmap.c, 6.12). cow.c's mprotect(R) and mprotect(R/W) of subpage 1 is left "
            "out: the page is exclusive, so can_change_pte_writable (mm/mprotect.c) makes "
            "its PTE writable again and the state is as before.",
            schemes=_MTHP_SCHEMES,
            config=config,
        ),
        Variant(
            "swapped-pte-mthp" + suffix,
            f"with swapped-out, PTE-mapped THP {size}",
            (*setup, *_SWAP),
            pages,
            swapped=True,
            kind="mthp",
            note="Reclaim swaps the whole mTHP out without splitting it (shrink_folio_list, "
            "mm/vmscan.c, 6.10 and later): one swap PTE per page, each exclusive as its page "
            "was (try_to_unmap_one, mm/rmap.c); each page comes back as its own small folio "
            "(do_swap_page, mm/memory.c).",
            schemes=_MTHP_SCHEMES,
            config=config,
        ),
        Variant(
            "single-pte-mthp" + suffix,
            f"with single PTE of THP {size}",
            single,
            (0,),
            kind="mthp",
            note=f"MADV_DONTNEED of {rest} leaves subpage 0 as the only mapped page of the "
            "mTHP, which is now partially mapped (__folio_remove_rmap -> "
            "deferred_split_folio, mm/rmap.c, mm/huge_memory.c, 6.12).",
            schemes=_MTHP_SCHEMES,
            config=config,
        ),
        Variant(
            "single-pte-swapped-mthp" + suffix,
            f"with single PTE of swapped-out THP {size}",
            (*single, *_SWAP),
            (0,),
            swapped=True,
            kind="mthp",
            note="cow.c's MADV_PAGEOUT of subpage 0 splits the folio it does not cover whole "
            "(madvise_cold_or_pageout_pte_range, mm/madvise.c); 'kernel swapout' splits the "
            "partially mapped mTHP first (shrink_folio_list, mm/vmscan.c, 6.12): either way "
            "the small folio of subpage 0 is swapped out, exclusive.",
            schemes=_MTHP_SCHEMES,
            config=config,
        ),
        Variant(
            "partially-mremapped-mthp" + suffix,
            f"with partially mremap()'ed THP {size}",
            (*setup, f"P mremap A[{n // 2}] B"),
            tuple(range(n // 2)),
            kind="mthp",
            note="cow.c moves the second half of the mTHP to another address (mremap with "
            "MREMAP_MAYMOVE | MREMAP_FIXED) and runs the case on the first half; the pages "
            "keep their flags and the folio is now mapped by two VMAs (move_vma, "
            "mm/mremap.c, 6.12).",
            schemes=_MTHP_SCHEMES,
            config=config,
        ),
        Variant(
            "partially-shared-mthp" + suffix,
            f"with partially shared THP {size}",
            _partially_shared(setup, n),
            pages,
            kind="mthp",
            note=f"MADV_DONTFORK of {rest} splits the VMA, not the folio; the child C "
            "shares only subpage 0 (copy_present_ptes, mm/memory.c) and exits at once: "
            f"subpage 0 is left shared (not exclusive) with map count 1, {rest} exclusive, "
            "all in one folio.",
            schemes=_MTHP_SCHEMES,
            config=config,
        ),
    )


MTHP_VARIANTS = mthp_variants(MTHP)
#: cow.c's runs for the mTHP sizes above 16 kB, in its order (smallest first).
SIZE_VARIANTS: tuple[Variant, ...] = tuple(v for n in MTHP_SIZES for v in mthp_variants(n))


def _mthp_pages(v: Variant) -> int:
    """The mTHP size of an mTHP variant, in pages (its ``config`` line, else the default)."""
    for line in v.config:
        for pair in line.split()[1:]:
            key, _, value = pair.partition("=")
            if key == "mthp_pages":
                return int(value)
    return MTHP

VARIANTS: tuple[Variant, ...] = (
    Variant("base", "with base page", ("P mmap A 1", *_fill(1)), (0,)),
    Variant(
        "swapped-base",
        "with swapped out base page",
        ("P mmap A 1", *_fill(1), *_SWAP),
        (0,),
        swapped=True,
    ),
    *MTHP_VARIANTS,  # cow.c runs the detected sizes smallest first: 16 kB before the PMD size
    Variant("thp", "with THP", _THP, _ALL, kind="pmd"),
    Variant("swapped-thp", "with swapped-out THP", (*_THP, *_SWAP), _ALL, swapped=True),
    Variant(
        "pte-thp",
        "with PTE-mapped THP",
        _PTE,
        _ALL,
        kind="pte",
        note="cow.c splits the PMD with mprotect(R) and mprotect(R/W) of subpage 1; "
        "'kernel split-pmd' leaves the same state.",
    ),
    Variant("swapped-pte-thp", "with swapped-out, PTE-mapped THP", (*_PTE, *_SWAP), _ALL, True),
    Variant(
        "single-pte-thp",
        "with single PTE of THP",
        _SINGLE,
        (0,),
        kind="pte",
        note="MADV_DONTNEED of subpages 1-3 leaves subpage 0 as the only mapped page of the THP.",
    ),
    Variant(
        "single-pte-swapped-thp",
        "with single PTE of swapped-out THP",
        (*_SINGLE, *_SWAP),
        (0,),
        swapped=True,
    ),
    Variant(
        "partially-mremapped-thp",
        "with partially mremap()'ed THP",
        (*_THP, f"P mremap A[{THP // 2}] B"),
        tuple(range(THP // 2)),
        kind="pte",
        note="cow.c moves the second half of the THP to another address (mremap with "
        "MREMAP_MAYMOVE | MREMAP_FIXED), which splits the PMD: every subpage keeps the head's "
        "flag, and the case runs on the first half, PTE-mapped (move_vma, mm/mremap.c; "
        "__split_huge_pmd_locked, mm/huge_memory.c, 6.12).",
    ),
    Variant(
        "partially-shared-thp",
        "with partially shared THP",
        _partially_shared(_THP, THP),
        _ALL,
        kind="pte",
        note="MADV_DONTFORK of subpages 1-3 splits the PMD; the child C shares only subpage 0 "
        "and exits at once: subpage 0 is left shared (not exclusive) with map count 1, "
        "subpages 1-3 exclusive.",
    ),
    Variant(
        "hugetlb",
        "with hugetlb",
        ("P mmap A hugetlb", *_fill(THP)),
        _ALL,
        kind="hugetlb",
    ),
)


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    slug: str
    title: str  # cow.c's log text
    function: str
    body: Callable[[tuple[int, ...]], list[str]]
    summary: str
    verdicts: Callable[[Variant], dict[str, Verdict]]
    schemes: tuple[str, ...] = ALL
    variants: tuple[str, ...] = tuple(v.key for v in VARIANTS)
    extra: list[str] = field(default_factory=list)


def _pins(pages: tuple[int, ...], how: str) -> list[str]:
    return _each(pages, "P pin A[{i}] " + how + " as {h}")


def body_a1(p: tuple[int, ...]) -> list[str]:
    return [
        "P fork Q",
        *_each(p, f"Q read A[{{i}}] expect {OLD}"),
        *_each(p, f"P write A[{{i}}] {NEW}"),
        *_each(p, f"Q read A[{{i}}] expect {OLD}"),
    ]


def body_a2(p: tuple[int, ...]) -> list[str]:
    return [
        "P fork Q",
        *_each(p, f"Q read A[{{i}}] expect {OLD}"),
        "P mprotect A ro",
        "P mprotect A rw",
        *_each(p, f"P write A[{{i}}] {NEW}"),
        *_each(p, f"Q read A[{{i}}] expect {OLD}"),
    ]


def body_vmsplice_in_child(mprotect: bool) -> Callable[[tuple[int, ...]], list[str]]:
    def body(p: tuple[int, ...]) -> list[str]:
        return [
            "P fork Q",
            *_each(p, f"Q read A[{{i}}] expect {OLD}"),
            *_each(p, "Q get A[{i}] ro as {h}"),
            "Q munmap A",
            *(["P mprotect A ro", "P mprotect A rw"] if mprotect else []),
            *_each(p, f"P write A[{{i}}] {NEW}"),
            *_each(p, f"{{h}} read expect {OLD}"),
        ]

    return body


def body_vmsplice_parent(before_fork: bool) -> Callable[[tuple[int, ...]], list[str]]:
    def body(p: tuple[int, ...]) -> list[str]:
        gets = _each(p, "P get A[{i}] ro as {h}")
        return [
            *(gets if before_fork else []),
            "P fork Q",
            *([] if before_fork else gets),
            "P munmap A",
            *_each(p, f"Q write A[{{i}}] {NEW}"),
            "Q exit",
            *_each(p, f"{{h}} read expect {OLD}"),
        ]

    return body


def body_a7(p: tuple[int, ...]) -> list[str]:
    return [
        *_pins(p, "rw longterm"),
        "P mprotect A ro",
        "P clear-softdirty",
        "P mprotect A rw",
        *_each(p, f"P write A[{{i}}] {NEW}"),
        *_each(p, f"{{h}} read expect {NEW}"),
    ]


def body_a8(p: tuple[int, ...]) -> list[str]:
    return [
        *_pins(p, "rw longterm"),
        "P fork Q",
        *_each(p, f"P write A[{{i}}] {NEW}"),
        *_each(p, f"{{h}} read expect {NEW}"),
        *_each(p, f"Q read A[{{i}}] expect {OLD}"),
    ]


def body_ro_pin(prefix: list[str], fast: bool) -> Callable[[tuple[int, ...]], list[str]]:
    how = "ro longterm fast" if fast else "ro longterm"

    def body(p: tuple[int, ...]) -> list[str]:
        return [
            *prefix,
            *_pins(p, how),
            *_each(p, f"P write A[{{i}}] {NEW}"),
            *_each(p, f"{{h}} read expect {NEW}"),
        ]

    return body


# ---------------------------------------------------------------- verdicts and reasons


class Verdict(NamedTuple):
    """What a case should give under one scheme, for the file's header."""

    status: int  # exit status: 0 passes, 1 fails
    why: str = ""  # why it fails, or a note on a notable pass
    reason: str = ""  # status 1: the check that stops the run, "INV-n" or "expect"


PASS = Verdict(0)

# Which check stops a failing run (see the module docstring): every cow.c failure is one of
# three kinds, and each breaks an invariant at the operation that goes wrong, before the
# `expect` line that would notice it later.
#
# - head-only, THP shared in part: fork shares some subpages and clears the folio's one bit,
#   while the unshared subpages stay mapped writable: a writable PTE of a page read as
#   shared, INV-1 (writable implies exclusive), at the fork;
# - a write fault copies away from a page its own process pinned (FOLL_PIN, R/O or R/W) and
#   still maps: page table and pin now lead to different pages, INV-11 (pin coherence), at
#   the write, before the `H read` that misses the write;
# - a write fault reuses a page that a reference taken by the other process (FOLL_GET, the
#   vmsplice pipe) still holds: the reference reads a value its owner neither wrote nor
#   inherited, INV-12 (isolation), at the write, before the `H read` of the pipe.


def flag_gap(why: str) -> Verdict:
    """Fails because one flag cannot say which subpages are exclusive: INV-1 at the fork."""
    return Verdict(1, why, "INV-1")


def pin_lost(why: str) -> Verdict:
    """Fails because a write fault copies away from its own process's pin: INV-11."""
    return Verdict(1, why, "INV-11")


def leak(why: str) -> Verdict:
    """Fails because a write fault reuses a page another process's reference holds: INV-12."""
    return Verdict(1, why, "INV-12")


R_HUGETLB_XFAIL = (
    "hugetlb_wp reuses a non-exclusive hugetlb folio when its map count is 1, which cannot "
    "see the pipe's reference: a known gap, reported as XFAIL by cow.c since 6.10"
)
R_HEAD_ONLY = (
    "once subpage 0 has been shared with the child and subpages 1-3 have not, one head bit "
    "cannot describe the folio; read as shared, the writable PTEs of subpages 1-3 break "
    "INV-1 (writable implies exclusive) at the fork"
)
R_LM_CHILD = (
    "after Q unmaps, P's write fault finds map count 1 and reuses the page the pipe holds, "
    "so Q's pipe shows P's later write (CVE-2020-29374)"
)
R_PARENT_PIPE = (
    "after P unmaps, Q's write fault finds map count 1 and reuses the page P's pipe holds, "
    "so the parent's pipe shows the child's write"
)
R_PC_SWAPIN = (
    "a write fault that swaps the page in still reused by map count + swap count "
    "(reuse_swap_page) through 5.17, until 5.18's c145e0b47c77 moved do_swap_page to the "
    "reference count: it reuses the swap-cache page the pipe holds"
)
R_PC_PMD = (
    "do_huge_pmd_wp_page still reused by map count through 5.17, until 5.18's "
    "3bff7e3f1f16 moved it to the reference count (a CVE-2020-29374 remnant): "
    "it reuses the THP the pipe holds"
)
R_PIN_FORK = (
    "fork shares the pinned page; P's write finds map count 2 and copies, so the pin stays "
    "with Q's page ('COW can break either way')"
)
R_RO_PIN_SHARED = (
    "no unsharing: the R/O pin lands on the page shared with Q, and P's write copies away from it"
)
R_PC_PIN = "the pin raises page_count, so P's write fault copies and the pin keeps the old page"
R_PC_PIN_THP = (
    "a PTE-mapped THP's page_count counts every mapping and every pin of the folio, so a "
    "write fault never reuses a subpage: it copies, and the pin keeps the old page"
)


R_HUGETLB_OLD = (
    "hugetlb_cow reuses an anonymous hugetlb page when its map count is 1 (in every era), "
    "which cannot see the pipe's reference"
)
R_PC_PMD_CHILD = (
    "Q's PMD write fault reuses by map count through 5.17 (do_huge_pmd_wp_page; 5.18's "
    "3bff7e3f1f16 moved it to the reference count): the parent's pipe shows the child's write"
)
R_PC_SWAPIN_CHILD = (
    "Q's write fault on its swap entry still reused by map count + swap count "
    "(reuse_swap_page) through 5.17, until 5.18's c145e0b47c77 moved do_swap_page to the "
    "reference count: it reuses the swap-cache page the parent's pipe holds"
)
N_GCB_BREAK = "passes: the GUP breaks COW first, so the reference holds a private copy"
N_PC_COPY = "passes: page_count counts the pipe's reference, so the write copies"
N_MAPCOUNT_PIN = "passes: the pinned page has map count 1, so the write fault reuses it"
N_PC_PIN_PMD = (
    "passes: do_huge_pmd_wp_page (through 5.17) and hugetlb reuse by map count, which a pin "
    "does not raise"
)
N_PC_EARLY_COW = "passes: fork copies maybe-pinned pages for the child (early COW, 5.9)"


def _mainline_family(v: Variant, xfail: bool) -> dict[str, Verdict]:
    out: dict[str, Verdict] = {}
    for s in (ML, NSE, HO):
        if xfail and v.kind == "hugetlb":
            out[s] = leak(R_HUGETLB_XFAIL)
        elif s == HO and v.key == "partially-shared-thp":
            out[s] = flag_gap(R_HEAD_ONLY)
        else:
            out[s] = PASS
    return out


def r_head_only_mthp(n: int) -> str:
    """Why head-only fails the partially shared run of an mTHP of ``n`` pages."""
    rest = _subpages(1, n)
    return (
        f"once subpage 0 has been shared with the child and {rest} have not, one bit for "
        "the whole mTHP cannot describe the folio; read as shared, the writable PTEs of "
        f"{rest} break INV-1 (writable implies exclusive) at the fork"
    )


def mthp_verdicts(v: Variant) -> dict[str, Verdict]:
    """The verdicts of every case A1-A14 on an mTHP variant, the same for every case and size.

    mTHP allocation at fault is 6.8 and later (docs/large-folios.md §1), so only the
    schemes for kernels that had it apply: ``mainline`` (6.12) and ``head-only``
    (``mainline`` with one flag per large folio). The other schemes stand for kernels
    without mTHP, and the header does not name them (§11).

    - ``mainline`` passes every case, as cow.c reports PASS on 6.12 for each of them: the
      flag is per page for a PTE-mapped folio from the first fault on
      (``folio_add_new_anon_rmap``, mm/rmap.c, sets every page's flag when the folio is not
      ``folio_test_pmd_mappable``); a write fault reuses only a page whose own flag is set,
      and ``wp_can_reuse_anon_folio`` (mm/memory.c) refuses every other page of a large
      folio, so a page the other process or a pipe holds is copied (A1-A6), never a page
      this process pinned, which is exclusive (A7-A14); ``gup_must_unshare``
      (mm/internal.h) asks the flag of the page the PTE maps, so a R/O pin on a shared page
      unshares that one page (A9-A12); fork copies every exclusive page of a maybe-pinned
      folio for the child (``__folio_try_dup_anon_rmap``, include/linux/rmap.h; A8).
    - ``head-only`` keeps one bit per large folio, on its head page (docs/large-folios.md
      §9): it reads the same as ``mainline`` wherever every mapped page of the folio has the
      same exclusivity, which holds in every variant but the partially shared one. There the
      fork shares subpage 0 and not subpages 1-3: clearing the one bit leaves the writable
      PTEs of subpages 1-3 on pages read as shared, INV-1 at the fork (the same rule as for
      the partially shared PMD THP). One more difference is safe and invisible to these
      cases: swapping out the whole mTHP clears the one bit at the first PTE
      (``try_to_unmap_one``, mm/rmap.c), so subpages 1-3 get swap PTEs without the exclusive
      bit (scenarios/mthp/m06-swap-whole-mthp.scn shows it); each comes back as a small
      folio that nothing else references, which ``do_swap_page`` and
      ``wp_can_reuse_anon_folio`` (mm/memory.c) prove exclusive by the reference count at
      the first write fault or unshare, so no case copies away from its pin or leaks.
    """
    assert v.kind == "mthp", v.key
    out = {ML: PASS, HO: PASS}
    if v.key.startswith("partially-shared-mthp"):
        out[HO] = flag_gap(r_head_only_mthp(_mthp_pages(v)))
    return out


def verdicts_for(case: str) -> Callable[[Variant], dict[str, Verdict]]:
    """The verdict per scheme: A3-A6 fail by a leak into a pipe (INV-12), A7-A14 by a lost
    pin (INV-11), and the partially shared THP under head-only by the one bit (INV-1).
    The mTHP variants have their own rule, :func:`mthp_verdicts`."""

    def verdicts(v: Variant) -> dict[str, Verdict]:
        if v.kind == "mthp":
            return mthp_verdicts(v)
        out = _mainline_family(v, case in ("A3", "A4", "A5", "A6"))
        hugetlb, pmd = v.kind == "hugetlb", v.kind == "pmd"
        pc_pin = pin_lost(R_PC_PIN_THP if v.kind == "pte" else R_PC_PIN)
        if case in ("A1", "A2"):
            out.update({PC: PASS, GCB: PASS, LM: PASS})
        elif case in ("A3", "A4"):
            out[LM] = leak(R_LM_CHILD)
            out[GCB] = Verdict(0, N_GCB_BREAK)
            if hugetlb:
                out[PC] = leak(R_HUGETLB_OLD)
            elif v.swapped:
                out[PC] = leak(R_PC_SWAPIN)
            elif pmd:
                out[PC] = leak(R_PC_PMD)
            else:
                out[PC] = Verdict(0, N_PC_COPY)
        elif case == "A5":
            out[LM] = leak(R_PARENT_PIPE)
            out[GCB] = leak(
                "P's GUP came while the page was P's alone, so there was no COW to break; "
                "fork shares the page, and after P unmaps, Q's write fault finds map count 1 "
                "and reuses the page P's pipe holds"
            )
            if hugetlb:
                out[PC] = leak(R_HUGETLB_OLD)
            elif pmd:
                out[PC] = leak(R_PC_PMD_CHILD)
            else:
                out[PC] = Verdict(0, N_PC_COPY)
        elif case == "A6":
            out[LM] = leak("P's R/O GUP does not break COW; " + R_PARENT_PIPE)
            out[GCB] = Verdict(0, N_GCB_BREAK)
            if hugetlb:
                out[PC] = leak(R_HUGETLB_OLD)
            elif v.swapped:
                out[PC] = leak(R_PC_SWAPIN_CHILD)
            elif pmd:
                out[PC] = leak(R_PC_PMD_CHILD)
            else:
                out[PC] = Verdict(0, N_PC_COPY)
        elif case == "A7":
            out[LM] = Verdict(0, N_MAPCOUNT_PIN)
            out[GCB] = Verdict(0, N_MAPCOUNT_PIN)
            out[PC] = Verdict(0, N_PC_PIN_PMD) if pmd or hugetlb else pc_pin
        elif case == "A8":
            out[LM] = pin_lost(R_PIN_FORK)
            out[GCB] = pin_lost(R_PIN_FORK)
            out[PC] = Verdict(0, N_PC_EARLY_COW)
        elif case in ("A9", "A10"):
            out[LM] = pin_lost(R_RO_PIN_SHARED)
            out[PC] = pin_lost(R_RO_PIN_SHARED)
            out[GCB] = Verdict(0, N_GCB_BREAK)
        elif case in ("A11", "A12", "A13", "A14"):
            out[LM] = Verdict(0, N_MAPCOUNT_PIN)
            out[GCB] = Verdict(
                0,
                "passes: the GUP breaks COW first, and with map count 1 that "
                "reuses the page, mapped writable",
            )
            out[PC] = Verdict(0, N_PC_PIN_PMD) if pmd or hugetlb else pc_pin
        return out

    return verdicts


CASES: list[Case] = [
    Case(
        "A1",
        "basic-cow",
        "Basic COW after fork()",
        "test_cow_in_parent",
        body_a1,
        "P's writes after fork must stay invisible to the child Q.",
        verdicts_for("A1"),
    ),
    Case(
        "A2",
        "basic-cow-mprotect",
        "Basic COW after fork() with mprotect() optimization",
        "test_cow_in_parent_mprotect",
        body_a2,
        "As A1, with mprotect(R) and mprotect(R/W) before the writes: mprotect must not make "
        "the shared pages writable (INV-13).",
        verdicts_for("A2"),
    ),
    Case(
        "A3",
        "vmsplice-in-child",
        "vmsplice() + unmap in child",
        "test_vmsplice_in_child",
        body_vmsplice_in_child(False),
        "The child vmsplices the shared pages into a pipe (FOLL_GET) and unmaps them; the "
        "pipe must keep what the child saw, not the parent's later writes (CVE-2020-29374).",
        verdicts_for("A3"),
    ),
    Case(
        "A4",
        "vmsplice-in-child-mprotect",
        "vmsplice() + unmap in child with mprotect() optimization",
        "test_vmsplice_in_child_mprotect",
        body_vmsplice_in_child(True),
        "As A3, with mprotect(R) and mprotect(R/W) in the parent before its writes: the pages "
        "have map count 1 but are not exclusive, so mprotect must not make them writable.",
        verdicts_for("A4"),
    ),
    Case(
        "A5",
        "vmsplice-before-fork",
        "vmsplice() before fork(), unmap in parent after fork()",
        "test_vmsplice_before_fork",
        body_vmsplice_parent(True),
        "The parent vmsplices its pages (FOLL_GET), forks and unmaps them; the child's later "
        "writes must not reach the parent's pipe.",
        verdicts_for("A5"),
    ),
    Case(
        "A6",
        "vmsplice-after-fork",
        "vmsplice() + unmap in parent after fork()",
        "test_vmsplice_after_fork",
        body_vmsplice_parent(False),
        "The parent forks, then vmsplices the shared pages and unmaps them; the child's later "
        "writes must not reach the parent's pipe.",
        verdicts_for("A6"),
    ),
    Case(
        "A7",
        "iouring-ro-mapping",
        "R/O-mapping a page registered as iouring fixed buffer",
        "test_iouring_ro",
        body_a7,
        "An io_uring fixed buffer (a R/W long-term pin) mapped R/O again (mprotect, soft-dirty "
        "clearing): the write fault must reuse the pinned page, or io_uring's writes from the "
        "buffer miss P's data.",
        verdicts_for("A7"),
    ),
    Case(
        "A8",
        "iouring-fork",
        "fork() with an iouring fixed buffer",
        "test_iouring_fork",
        body_a8,
        "An io_uring fixed buffer (a R/W long-term pin) across fork: the parent must keep the "
        "pinned pages (fork copies them for the child), so the pin sees the parent's writes.",
        verdicts_for("A8"),
    ),
    Case(
        "A9",
        "ro-pin-on-shared",
        "R/O GUP pin on R/O-mapped shared page",
        "test_ro_pin_on_shared",
        body_ro_pin(["P fork Q"], False),
        "A R/O long-term pin on a page shared with a live child must see the parent's later "
        "writes: GUP unshares first (FAULT_FLAG_UNSHARE).",
        verdicts_for("A9"),
    ),
    Case(
        "A10",
        "ro-fast-pin-on-shared",
        "R/O GUP-fast pin on R/O-mapped shared page",
        "test_ro_fast_pin_on_shared",
        body_ro_pin(["P fork Q"], True),
        "A9 through GUP-fast, which must refuse the shared page and fall back to the slow "
        "path that unshares.",
        verdicts_for("A10"),
    ),
    Case(
        "A11",
        "ro-pin-on-ro-previously-shared",
        "R/O GUP pin on R/O-mapped previously-shared page",
        "test_ro_pin_on_ro_previously_shared",
        body_ro_pin(["P fork Q", "Q exit"], False),
        "A R/O long-term pin on a page the exited child used to share (map count 1, not "
        "exclusive) must see the parent's later writes.",
        verdicts_for("A11"),
    ),
    Case(
        "A12",
        "ro-fast-pin-on-ro-previously-shared",
        "R/O GUP-fast pin on R/O-mapped previously-shared page",
        "test_ro_fast_pin_on_ro_previously_shared",
        body_ro_pin(["P fork Q", "Q exit"], True),
        "A11 through GUP-fast.",
        verdicts_for("A12"),
    ),
    Case(
        "A13",
        "ro-pin-on-ro-exclusive",
        "R/O GUP pin on R/O-mapped exclusive page",
        "test_ro_pin_on_ro_exclusive",
        body_ro_pin(["P mprotect A ro", "P clear-softdirty", "P mprotect A rw"], False),
        "A R/O long-term pin on an exclusive page mapped R/O (mprotect, soft-dirty clearing) "
        "must see the parent's later writes: the write fault reuses the exclusive page.",
        verdicts_for("A13"),
    ),
    Case(
        "A14",
        "ro-fast-pin-on-ro-exclusive",
        "R/O GUP-fast pin on R/O-mapped exclusive page",
        "test_ro_fast_pin_on_ro_exclusive",
        body_ro_pin(["P mprotect A ro", "P clear-softdirty", "P mprotect A rw"], True),
        "A13 through GUP-fast, which can pin the R/O page directly because it is exclusive.",
        verdicts_for("A14"),
    ),
]


# ---------------------------------------------------------------- collapse and zero page


def _collapse_body(before_fork: bool, dontfork: tuple[int, ...]) -> list[str]:
    shared = [i for i in range(THP) if i not in dontfork]
    lines = list(_PTE)
    lines += [f"P madvise A[{i}] dontfork" for i in dontfork]
    if before_fork:
        lines.append("P madvise A collapse expect ok")
    lines.append("P fork Q")
    lines += [f"Q read A[{i}] expect {OLD}" for i in shared]
    lines += [f"P madvise A[{i}] dofork" for i in dontfork]
    if not before_fork:
        # fully shared: no writable PTE, so MADV_COLLAPSE fails (EINVAL); otherwise it copies
        lines.append("P madvise A collapse" + (" expect ok" if dontfork else ""))
    lines += [f"P write A[{i}] {NEW}" for i in range(THP)]
    lines += [f"Q read A[{i}] expect {OLD}" for i in shared]
    return lines


COLLAPSE = [
    (
        "C1",
        "collapse-before-fork",
        "Basic COW after fork() when collapsing before fork()",
        _collapse_body(True, ()),
        "MADV_COLLAPSE of the PTE-mapped THP before fork copies it into a new PMD-mapped THP; "
        "after fork, P's writes must stay invisible to Q.",
        {ML: PASS, NSE: PASS, HO: PASS},
    ),
    (
        "C2",
        "collapse-after-fork-fully-shared",
        "Basic COW after fork() when collapsing after fork() (fully shared)",
        _collapse_body(False, ()),
        "After fork every PTE is R/O, so MADV_COLLAPSE fails with EINVAL (cow.c reports SKIP); "
        "an in-place collapse that set the head's flag would leak P's writes to Q.",
        {ML: PASS, NSE: PASS, HO: PASS},
    ),
    (
        "C3",
        "collapse-after-fork-lower-shared",
        "Basic COW after fork() when collapsing after fork() (lower shared)",
        _collapse_body(False, (2, 3)),
        "Only the lower half is shared with Q; the collapse copies into a new THP for P, and "
        "Q keeps the old pages.",
        {
            ML: PASS,
            NSE: PASS,
            HO: flag_gap(
                R_HEAD_ONLY.replace("subpage 0", "the lower half").replace(
                    "subpages 1-3", "the upper half"
                )
            ),
        },
    ),
    (
        "C4",
        "collapse-after-fork-upper-shared",
        "Basic COW after fork() when collapsing after fork() (upper shared)",
        _collapse_body(False, (0, 1)),
        "Only the upper half is shared with Q; symmetric to C3.",
        {
            ML: PASS,
            NSE: PASS,
            HO: flag_gap(
                R_HEAD_ONLY.replace("subpage 0", "the upper half").replace(
                    "subpages 1-3", "the lower half"
                )
            ),
        },
    ),
]

R_ZERO_PAGE_PIN = (
    "no unsharing of the zero page (6.2): the pin holds the shared zero page and P's "
    "write maps a new page"
)
_ZERO_PAGE_PIN = {
    ML: PASS,
    NSE: PASS,
    HO: PASS,
    GCB: PASS,
    PC: pin_lost(R_ZERO_PAGE_PIN),
    LM: pin_lost(R_ZERO_PAGE_PIN),
}

ZERO = [
    (
        "N1",
        "zero-page-cow",
        "Basic COW (test_cow), with shared zeropage",
        [
            "P mmap A 1",
            "P mmap S 1",
            "P mprotect S ro",
            "P read A[0] expect 0",
            "P read S[0] expect 0",
            f"P write A[0] {NEW}",
            "P read S[0] expect 0",
            f"P read A[0] expect {NEW}",
        ],
        "Two private mappings both read the shared zero page; a write through one must not "
        "change the other.",
        {s: PASS for s in ALL},
    ),
    (
        "N2",
        "zero-page-ro-pin",
        "R/O longterm GUP pin (test_ro_pin), with shared zeropage",
        [
            "P mmap A 1",
            "P read A[0] expect 0",
            "P pin A[0] ro longterm as H",
            f"P write A[0] {NEW}",
            f"H read expect {NEW}",
        ],
        "A R/O long-term pin of never-written memory must see later writes: since 6.2 GUP "
        "unshares the zero page in a COW mapping first. no-swp-exclusive follows its scheme "
        "record here (6.2's rule); 5.19-6.1 kernels failed this case.",
        dict(_ZERO_PAGE_PIN),
    ),
    (
        "N3",
        "zero-page-ro-fast-pin",
        "R/O longterm GUP-fast pin (test_ro_fast_pin), with shared zeropage",
        [
            "P mmap A 1",
            "P read A[0] expect 0",
            "P pin A[0] ro longterm fast as H",
            f"P write A[0] {NEW}",
            f"H read expect {NEW}",
        ],
        "N2 through GUP-fast, which bails out on a non-anonymous page and falls back to the "
        "slow path.",
        dict(_ZERO_PAGE_PIN),
    ),
]


# ---------------------------------------------------------------- writing files


def _wrap(text: str, prefix: str = "# ", width: int = 79) -> list[str]:
    words, lines, cur = text.split(), [], prefix
    for w in words:
        if len(cur) + len(w) + 1 > width and cur.strip() != prefix.strip():
            lines.append(cur.rstrip())
            cur = prefix + "  " * (prefix != "# ") + w + " "
        else:
            cur += w + " "
    lines.append(cur.rstrip())
    return lines


# ---------------------------------------------------------------- the swap PTE's bit

# tools/kernelcheck/swap_exclusive.c: the selftest cow.c lacks. No cow.c case tells 6.12 from
# no-swp-exclusive, since each swaps out a page nothing else references, which do_swap_page
# (mm/memory.c) proves exclusive by its reference count. Here a pipe (vmsplice, FOLL_GET)
# holds the page through the swap-out, so only the swap PTE's bit can say it is exclusive.
_SWAP_SETUP = ["P mmap A 1", f"P write A[0] {OLD}", "P get A[0] ro as H", *_SWAP]
R_NSE_SWAP = (
    "the swap PTE has no exclusive bit, and the pipe's reference keeps the page in the swap "
    "cache with a reference count above one, so do_swap_page cannot prove it exclusive: "
    "the write copies, and the pipe keeps the old data"
)
R_PC_SWAP_READ = (
    "the read fault maps the page read-only (only a write fault reused at swap-in, by map "
    "count + swap count); the later write fault reuses by page_count, which counts the "
    "pipe's reference, so it copies and the pipe keeps the old data"
)
N_SWAP_MAPCOUNT = (
    "passes: the write fault that swaps the page in reuses it by map count + swap count "
    "(reuse_swap_page, up to 5.17), which does not see the pipe"
)
N_SWAP_READ_MAPCOUNT = (
    "passes: the write fault after the read reuses by map count (up to 5.8; 5.8 broke COW "
    "at the GUP, on a page nothing else mapped), which does not see the pipe"
)
SWAP_EXCLUSIVE = [
    (
        "X1",
        "swap-exclusive-write",
        "R/O GUP reference (vmsplice) on an exclusive page swapped out, then written",
        [*_SWAP_SETUP, f"P write A[0] {NEW}", f"H read expect {NEW}"],
        "A pipe holds P's exclusive page (vmsplice) while reclaim swaps it out; P's write "
        "fault swaps it in. With the swap PTE's exclusive bit the page comes back "
        "exclusive, the write reuses it, and the pipe reads the new data.",
        {ML: PASS, NSE: Verdict(1, R_NSE_SWAP, "expect"), PC: Verdict(0, N_SWAP_MAPCOUNT),
         GCB: Verdict(0, N_SWAP_MAPCOUNT), LM: Verdict(0, N_SWAP_MAPCOUNT), HO: PASS},
    ),
    (
        "X2",
        "swap-exclusive-read-write",
        "R/O GUP reference (vmsplice) on an exclusive page swapped out, read, then written",
        [*_SWAP_SETUP, f"P read A[0] expect {OLD}", f"P write A[0] {NEW}",
         f"H read expect {NEW}"],
        "The same, but a read fault swaps the page in: since 6.11 it is mapped writable when "
        "exclusive, and the write needs no fault; before, the write fault reused it as the "
        "only mapping.",
        {ML: PASS, NSE: Verdict(1, R_NSE_SWAP, "expect"), PC: Verdict(1, R_PC_SWAP_READ,
         "expect"), GCB: Verdict(0, N_SWAP_READ_MAPCOUNT),
         LM: Verdict(0, N_SWAP_READ_MAPCOUNT), HO: PASS},
    ),
]


def _expect_item(scheme: str, v: Verdict) -> str:
    """One item of the ``# expect:`` line: ``page-count=0``, ``page-count=1:INV-11``."""
    return f"{scheme}={v.status}" + (f":{v.reason}" if v.reason else "")


def render(
    title: str,
    origin: str,
    summary: str,
    variant_note: str,
    verdicts: dict[str, Verdict],
    setup: list[str],
    body: list[str],
    config: tuple[str, ...] = (),
) -> str:
    out = [f"# {title}"]
    out += _wrap(origin)
    out += _wrap(summary)
    if variant_note:
        out += _wrap(variant_note)
    for s, v in verdicts.items():
        if (v.status == 1) != bool(v.reason) or (v.status == 1 and not v.why):
            raise ValueError(
                f"{title}: {s}: a failure, and only a failure, has a reason and says why: {v}"
            )
    fails = [(s, v.why) for s, v in verdicts.items() if v.status]
    if fails:
        out.append("# Fails under (exit 1):")
        for s, why in fails:
            out += _wrap(f"{s}: {why}.", prefix="#   ")
    notes = [(s, v.why) for s, v in verdicts.items() if not v.status and v.why]
    if notes:
        out.append("# Notes:")
        for s, why in notes:
            out += _wrap(f"{s} {why}.", prefix="#   ")
    out.append("# Generated by tools/gen_cow_scenarios.py; edit the generator, not this file.")
    out.append("# expect: " + " ".join(_expect_item(s, verdicts[s]) for s in ALL if s in verdicts))
    out.append("")
    out += config
    out.append("spawn P")
    out += setup
    out.append("")
    out += body
    return "\n".join(out) + "\n"


def generate() -> dict[str, str]:
    files: dict[str, str] = {}
    for case in CASES:
        for v in (*VARIANTS, *SIZE_VARIANTS):
            name = f"{case.id.lower()}-{case.slug}-{v.key}.scn"
            if case.id[1:].isdigit() and len(case.id) == 2:
                name = f"a0{case.id[1]}-{case.slug}-{v.key}.scn"
            verdicts = case.verdicts(v)
            if v.schemes and set(verdicts) != set(v.schemes):
                raise ValueError(f"{name}: verdicts for {sorted(verdicts)}, not {v.schemes}")
            origin = (
                "From tools/testing/selftests/mm/cow.c, anon_test_cases[] run by "
                "run_anon_test_case(); see docs/cow-cases.md §3."
            )
            if v.kind == "mthp":
                n = _mthp_pages(v)
                origin += (
                    f" The {n * 4} kB mTHP run (mthp_pages={n}); mTHP is 6.8 and later, so "
                    "only mainline and head-only apply (docs/large-folios.md §11, §12)."
                )
            files[name] = render(
                f'cow.c {case.id} "{case.title}" ({case.function}), {v.log}.',
                origin,
                case.summary,
                v.note,
                verdicts,
                list(v.setup),
                case.body(v.pages),
                v.config,
            )
    for cid, slug, title, body, summary, verdicts in COLLAPSE:
        files[f"{cid.lower()}-{slug}.scn"] = render(
            f'cow.c {cid} "{title}" (test_anon_thp_collapse), with THP.',
            "From tools/testing/selftests/mm/cow.c, anon_thp_test_cases[] (6.3); see "
            "docs/cow-cases.md §4. MADV_COLLAPSE appeared in 6.1, so the "
            "older schemes do not apply.",
            summary,
            "cow.c makes the THP PTE-mapped with mprotect of subpage 1; 'kernel split-pmd' "
            "leaves the same state.",
            verdicts,
            [],
            body,
        )
    for cid, slug, title, body, summary, verdicts in ZERO:
        files[f"{cid.lower()}-{slug}.scn"] = render(
            f'cow.c {cid} "{title}".',
            "From tools/testing/selftests/mm/cow.c, non_anon_test_cases[]; see "
            "docs/cow-cases.md §5. Only the zero-page variant: the model "
            "has no file-backed mappings (memfd, tmpfile) and no huge zero page.",
            summary,
            "",
            verdicts,
            [],
            body,
        )
    for cid, slug, title, body, summary, verdicts in SWAP_EXCLUSIVE:
        files[f"{cid.lower()}-{slug}.scn"] = render(
            f'swap_exclusive.c {cid} "{title}" (run), with base page.',
            "From tools/kernelcheck/swap_exclusive.c, this project's selftest for the swap "
            "PTE's exclusive bit (1493a1913e34, 5.19), which cow.c lacks; run next to "
            "cow.c by python -m anonlib selftests-check (docs/real-kernel.md).",
            summary,
            "",
            verdicts,
            [],
            body,
        )
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check the committed files")
    args = ap.parse_args()
    files = generate()
    existing = {p.name for p in OUT.glob("*.scn")} if OUT.is_dir() else set()
    stale = sorted(
        n
        for n, text in files.items()
        if not (OUT / n).is_file() or (OUT / n).read_text(encoding="utf-8") != text
    )
    extra = sorted(existing - set(files))
    if args.check:
        for n in stale:
            print(f"stale or missing: scenarios/cow/{n}", file=sys.stderr)
        for n in extra:
            print(f"not generated: scenarios/cow/{n}", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for n in extra:
        (OUT / n).unlink()
    for n in stale:
        (OUT / n).write_text(files[n], encoding="utf-8")
    print(
        f"{len(files)} files in {OUT.relative_to(ROOT)}: {len(stale)} written, {len(extra)} removed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
