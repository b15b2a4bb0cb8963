"""Kernel eras as schemes: the decision points where the rules differ.

A scheme is a record of choices. Every transition function in the model
asks the scheme at a named decision point (a field below) and nowhere else,
so the whole difference between two kernel eras is the difference between
two records in this file. ``python -m anonlib schemes`` (and
:func:`describe_difference`) prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum


class Reuse(Enum):
    """How a fault decides to reuse a page instead of copying it (or, on swap-in, to map it
    exclusive). One function applies every value to every fault:
    :func:`anonlib.mm.internal.can_reuse_anon_page`."""

    ANON_EXCLUSIVE = "PG_anon_exclusive, else refcount == 1 (small folios only)"
    PAGE_COUNT = "page_count == 1"
    MAPCOUNT = "mapcount + swapcount == 1 (reuse_swap_page)"


class DeviceExclusive(Enum):
    """How make_device_exclusive converts PTEs, and what a device-exclusive entry is then."""

    RMAP_WALK = ("5.14 to 6.14: an rmap walk converts every PTE of the folio, in every mm, "
                 "to a writable or readable entry that holds no map count")
    FOLIO_WALK = ("6.15+: a folio walk converts the requested PTE only, to the one entry "
                  "type, which keeps its map count")


class ForkPinned(Enum):
    """What fork does with a page that may be pinned."""

    SHARE = "share it like any other page"
    COPY_MAYBE_PINNED = "copy every maybe-pinned page for the child (early COW)"
    COPY_PINNED_EXCLUSIVE = "copy for the child if the page is exclusive and maybe pinned"


class HugeZeroWp(Enum):
    """A write (or unshare) fault on the huge zero page's PMD."""

    SPLIT = "split the PMD; the PTE fault copies one page (6.12)"
    ALLOC_THP = "allocate a THP and map it by the PMD, exclusive (6.13+)"


class MprotectBatch(Enum):
    """How mprotect(PROT_WRITE) decides which PTEs of a large folio to make writable."""

    PER_PAGE = "each PTE by its own page's flag (6.12; 6.17 after cf1b80dc31a1)"
    FOLIO_HEAD = ("a run of PTEs starting at folio page k decides PTE k+i by page i "
                  "(cac1db8c3aad, 6.17-rc1: a bug)")


class PinRecord(Enum):
    """Which page a FOLL_PIN user records to unpin (and the debug check looks at)."""

    PINNED_PAGE = "the page it pinned"
    FOLIO_HEAD = "the head page of the pinned page's folio (io_uring, a8edbb424b13: a bug)"


class LargeReuse(Enum):
    """Whether a write or unshare fault may reuse a page of a PTE-mapped large folio whose flag
    is clear. Read by :func:`anonlib.mm.internal.wp_can_reuse_anon_folio` only."""

    REFCOUNT = ("as a small folio: when the folio's refcount is 1 (after dropping an unneeded "
                "swap cache copy), that is, the faulting PTE is its only mapping and reference "
                "(up to 6.8)")
    NEVER = "never: a large folio is reused only while the faulting page is exclusive"
    MM_SLOTS = ("per-MM tracking: reuse when the folio is certainly mapped by this mm alone "
                "and every reference is a mapping")


class ReclaimSplit(Enum):
    """Which large anonymous folios reclaim splits before it adds them to the swap cache.
    Read by :func:`anonlib.mm.vmscan.shrink_folio_list` only."""

    NOT_PMD_MAPPED = ("every large folio that no PMD maps (folio_entire_mapcount == 0), "
                      "up to 6.9")
    PARTIALLY_MAPPED = "only a partially mapped one (PG_partially_mapped, 6.12)"


@dataclass(frozen=True)
class Scheme:
    """One kernel era. Fields after ``description`` are the decision points."""

    name: str
    versions: str
    commits: tuple[str, ...]
    description: str
    #: PG_anon_exclusive exists (5.19+).
    anon_exclusive: bool = True
    #: swap PTEs carry the exclusive bit (1493a1913e34, 5.19, behind __HAVE_ARCH_PTE_SWP_EXCLUSIVE:
    #: implemented then for x86, arm64, s390 and powerpc book3s-64; every architecture from 6.3).
    swp_exclusive: bool = True
    #: a migration entry of a read-only exclusive page says so (readable_exclusive) and the
    #: page comes back exclusive: 6c287605fd56 ("mm: remember exclusively mapped anonymous
    #: pages with PG_anon_exclusive", 5.19). Before, migration entries were only writable or
    #: readable, and a read-only page came back from migration shared.
    readable_exclusive_migration: bool = True
    #: the flag of a large folio (THP or mTHP) lives on its head page only (the seed review's
    #: question).
    head_only: bool = False
    #: do_wp_page on a PTE (mm/memory.c).
    wp_reuse: Reuse = Reuse.ANON_EXCLUSIVE
    #: do_wp_page takes back a KSM page that is mapped once and has no other reference
    #: (reuse_ksm_page, up to 5.8). 09854ba94c6a ("mm: do_wp_page() simplification", 5.9)
    #: leaves KSM pages out of its reuse test; 1a0cf26323c8 ("mm/ksm: remove
    #: reuse_ksm_page()", 5.10) removed the dead function.
    ksm_reuse: bool = False
    #: do_huge_pmd_wp_page on a PMD-mapped THP (mm/huge_memory.c).
    pmd_reuse: Reuse = Reuse.ANON_EXCLUSIVE
    #: hugetlb_wp (mm/hugetlb.c): reuse a huge page mapped once (folio_mapcount == 1) in every
    #: era the model knows, 6.12 included (6c287605fd56, 5.19, only added the flag it sets
    #: on reuse), so a FOLL_GET reference does not stop it (docs/cow-cases.md, hugetlb).
    hugetlb_reuse: Reuse = Reuse.MAPCOUNT
    #: do_swap_page (mm/memory.c): ANON_EXCLUSIVE maps the page exclusive if the swap PTE's
    #: bit says so or ours is the only reference (5.18+, c145e0b47c77), on any fault;
    #: MAPCOUNT reuses on a write fault by map count plus swap count (reuse_swap_page,
    #: up to 5.17); PAGE_COUNT (no kernel had it here) on a write fault by refcount alone.
    swapin_reuse: Reuse = Reuse.ANON_EXCLUSIVE
    #: an exclusive page swapped in by a read fault is mapped writable (6.11+: c18160dba5ff,
    #: "mm: swap: reuse exclusive folio directly instead of wp page faults").
    swapin_writable_on_read: bool = True
    #: R/O FOLL_PIN unshares a maybe-shared anonymous page first (FAULT_FLAG_UNSHARE, 5.19).
    gup_unshare: bool = True
    #: R/O long-term pins also unshare the zero page in COW mappings (6.2).
    gup_unshare_zero_page: bool = True
    #: every GUP in a COW mapping breaks COW first, as a write would (5.8 only).
    gup_cow_break: bool = False
    #: fork and pages that may be pinned (5.9 early COW; 5.19 only exclusive ones).
    fork_pinned: ForkPinned = ForkPinned.COPY_PINNED_EXCLUSIVE
    #: reclaim leaves maybe-pinned folios alone (feb889fb40fa, 5.11; the 5.19 share check).
    #: The ``page-count`` scheme has it although its era starts at 5.9: 5.9 and 5.10 lacked it.
    reclaim_skips_pinned: bool = True
    #: clear_refs leaves writable PTEs of maybe-pinned folios alone (pte_is_pinned, 5.11).
    clear_refs_skips_pinned: bool = True
    #: mprotect(PROT_WRITE) makes the PTE of an exclusive anonymous page writable at once,
    #: clean or dirty: the rule since 6.2 (d84887739d5c, "mm/mprotect: allow clean exclusive
    #: anon pages to be writable"). 6.0 and 6.1 (64fe24a3e05e, "mm/mprotect: try avoiding write
    #: faults for exclusive anonymous pages when changing protection") upgraded only a *dirty*
    #: PTE. The model has no PTE dirty bit, so no scheme stands for 6.0-6.1: True is 6.2+,
    #: False is before 6.0 (and, for a clean PTE, 6.0-6.1).
    mprotect_upgrade: bool = True
    #: mprotect(PROT_WRITE) upgrades a PMD too (mm/huge_memory.c: change_huge_pmd asks
    #: can_change_pmd_writable): c27f479ef542 ("mm/huge_memory: try avoiding write faults
    #: when changing PMD protection", 6.2, in the series of d84887739d5c). Up to 6.1
    #: (change_huge_pmd) a PMD stays read-only until a write fault.
    mprotect_upgrade_pmd: bool = True
    #: make_device_exclusive exists (5.14).
    device_exclusive: bool = True
    #: a write fault on the huge zero PMD: 6.12 splits it and copies one page; 1ced09e0331f
    #: ("mm: allocate THP on hugezeropage wp-fault", 6.13) allocates a THP instead
    #: (do_huge_zero_wp_pmd), also for an unshare fault.
    huge_zero_wp: HugeZeroWp = HugeZeroWp.SPLIT
    #: mprotect's batching of a large folio's PTEs (mm/mprotect.c:change_pte_range). Only the
    #: mutant ``mprotect-batch-head`` has FOLIO_HEAD: cac1db8c3aad ("mm: optimize mprotect()
    #: by PTE batching", 6.17-rc1) read the folio's first pages' flags for a run that starts
    #: further in; cf1b80dc31a1 ("mm: pass page directly instead of using folio_page",
    #: 6.17-rc2) fixed it.
    mprotect_batch: MprotectBatch = MprotectBatch.PER_PAGE
    #: which page a pin is recorded by, for the unpin (mm/gup.c: sanity_check_pinned_pages
    #: checks that page). Only the mutant ``iouring-unpin-head`` has FOLIO_HEAD: io_uring's
    #: buffer coalescing (a8edbb424b13, 6.12-rc1) kept the folio's head page and unpinned it;
    #: 53fd75f25b22 ("io_uring/rsrc: fix folio unpinning", 6.16-rc, in the 6.12 stable
    #: series the model follows) unpins the folio.
    pin_record: PinRecord = PinRecord.PINNED_PAGE
    #: how device-exclusive entries are made and what they are. RMAP_WALK is
    #: make_device_exclusive_range (mm/rmap.c, 5.14 to 6.14): a tail page is skipped; for a
    #: small or head page an rmap walk (folio_make_device_exclusive) turns every present PTE
    #: of the folio, in every mm, into a writable or a readable entry as the PTE was, and
    #: drops its map count; mprotect makes a writable entry readable. FOLIO_WALK is the
    #: series "mm: device-exclusive memory access fixes + cleanups" (David Hildenbrand,
    #: 6.15: 599b684a7854, 438354724f69, 9a914592140e, c25465eb7630, f495bd7e0d9b):
    #: make_device_exclusive converts the requested PTE only, any subpage, into the single
    #: entry type, which keeps its map count (docs/after-6.12.md, section 2).
    device_exclusive_walk: DeviceExclusive = DeviceExclusive.RMAP_WALK
    #: COW reuse of a PTE-mapped large folio (mTHP, or a THP after a PMD split). NEVER up to
    #: 6.14: wp_can_reuse_anon_folio refuses every large folio. MM_SLOTS from 6.15:
    #: 6af8cb80d3a9 ("mm/rmap: basic MM owner tracking for large folios (!hugetlb)") keeps two
    #: (mm, count) slots and a "maybe mapped shared" bit per large folio, and 1da190f4d0a6
    #: ("mm: Copy-on-Write (COW) reuse support for PTE-mapped THP") reuses when that bit is
    #: clear, the folio is mapped more than once and every reference is a mapping.
    #: REFCOUNT up to 6.8: do_wp_page (6.1, mm/memory.c) applies the small folio's test to a
    #: large one, so the last PTE of a large folio reuses it. cd197c3a2040 ("mm: prohibit the
    #: last subpage from reusing the entire large folio", 6.9) made wp_can_reuse_anon_folio
    #: refuse every large folio (NEVER).
    large_reuse: LargeReuse = LargeReuse.NEVER
    #: which large folios reclaim splits before swapping them (mm/vmscan.c:
    #: shrink_folio_list). NOT_PMD_MAPPED up to 6.9 (6.1: a folio without a PMD mapping is
    #: split "right away"); 5ed890ce5147 ("mm: vmscan: avoid split during
    #: shrink_folio_list()", 6.10) split only folios on the deferred split list, and 6.12
    #: (8422acdc97ed, dafff3f4c850) only those marked partially mapped (PARTIALLY_MAPPED).
    reclaim_split: ReclaimSplit = ReclaimSplit.PARTIALLY_MAPPED
    #: migration splits a partially mapped large folio and moves its small folios (mm/migrate.c:
    #: migrate_pages_batch): 7262f208ca68 ("mm/migrate: split source folio if it is on
    #: deferred split list", 6.10), since 8422acdc97ed (6.12) only a folio marked partially
    #: mapped. False: 6.1's migrate_pages_batch splits a large folio only when moving it
    #: whole fails (-ENOSYS, -ENOMEM), so a partially mapped THP moves whole.
    migrate_splits_partially_mapped: bool = True
    #: a split of an anonymous large folio maps each zero-filled subpage to the shared zero
    #: page instead of keeping it (mm/huge_memory.c: __split_huge_page -> remap_page with
    #: RMP_USE_SHARED_ZEROPAGE): b1f202060afe ("mm: remap unused subpages to shared zeropage
    #: when splitting isolated thp", 6.12). False: 6.1's remap_page maps every subpage back.
    split_zero_remap: bool = True

    @property
    def tracks_partially_mapped(self) -> bool:
        """Whether a large folio is marked partially mapped (``Folio.partially_mapped``):
        only where reclaim or migration reads the mark (``reclaim_split``,
        ``migrate_splits_partially_mapped``). 6.1 has neither the PG_partially_mapped flag
        (8422acdc97ed, 6.12) nor a use for one, so under ``lts-6.1`` no folio carries it."""
        return (self.reclaim_split is ReclaimSplit.PARTIALLY_MAPPED
                or self.migrate_splits_partially_mapped)


MAINLINE = Scheme(
    name="mainline",
    versions="Linux 6.12 (LTS)",
    commits=(
        "6c287605fd56 mm: remember exclusively mapped anonymous pages with PG_anon_exclusive",
        "1493a1913e34 mm/swap: remember PG_anon_exclusive via a swp pte bit",
        "64fe24a3e05e mm/mprotect: try avoiding write faults for exclusive anonymous pages "
        "when changing protection",
        "d84887739d5c mm/mprotect: allow clean exclusive anon pages to be writable",
    ),
    description=(
        "PG_anon_exclusive per page (head page for PMD-mapped THP and hugetlb), the swap-PTE "
        "exclusive bit, unsharing for R/O pins, early COW only of exclusive maybe-pinned pages."
    ),
)

LEGACY_MAPCOUNT = replace(
    MAINLINE,
    name="legacy-mapcount",
    versions="up to 5.7",
    commits=("(before 17839856fd58) reuse_swap_page() decides COW reuse",),
    description="COW reuse by map count (and swap count); GUP references are ignored.",
    anon_exclusive=False,
    swp_exclusive=False,
    wp_reuse=Reuse.MAPCOUNT,
    pmd_reuse=Reuse.MAPCOUNT,
    swapin_reuse=Reuse.MAPCOUNT,
    swapin_writable_on_read=False,
    readable_exclusive_migration=False,
    ksm_reuse=True,
    gup_unshare=False,
    gup_unshare_zero_page=False,
    fork_pinned=ForkPinned.SHARE,
    reclaim_skips_pinned=False,
    clear_refs_skips_pinned=False,
    mprotect_upgrade=False,
    device_exclusive=False,
)

LTS_6_18 = replace(
    MAINLINE,
    name="lts-6.18",
    versions="Linux 6.18 (LTS), the rules that changed since 6.12 (6.13 to 6.18)",
    commits=(
        "1ced09e0331f mm: allocate THP on hugezeropage wp-fault (6.13)",
        "599b684a7854 mm/rmap: convert make_device_exclusive_range() to "
        "make_device_exclusive() (6.15, with the series around it)",
        "6af8cb80d3a9 mm/rmap: basic MM owner tracking for large folios (!hugetlb) (6.15)",
        "1da190f4d0a6 mm: Copy-on-Write (COW) reuse support for PTE-mapped THP (6.15)",
    ),
    description=(
        "mainline's rules with the changes since 6.12 that touch the flag: a write fault on "
        "the huge zero page allocates a THP (6.13); device-exclusive entries made one PTE "
        "at a time, keeping the map count (6.15); a page of a PTE-mapped large folio that "
        "only this process maps is reused on a write fault (per-MM tracking, 6.15)."
    ),
    huge_zero_wp=HugeZeroWp.ALLOC_THP,
    device_exclusive_walk=DeviceExclusive.FOLIO_WALK,
    large_reuse=LargeReuse.MM_SLOTS,
)

LTS_6_1 = replace(
    MAINLINE,
    name="lts-6.1",
    versions="Linux 6.1 (LTS; Debian 12's kernel, 6.1.192), the rules that differ from 6.12",
    commits=(
        "84209e87c696 mm/gup: reliable R/O long-term pinning in COW mappings (6.2, not in 6.1)",
        "d84887739d5c mm/mprotect: allow clean exclusive anon pages to be writable "
        "(6.2, not in 6.1)",
        "c27f479ef542 mm/huge_memory: try avoiding write faults when changing PMD protection "
        "(6.2, not in 6.1)",
        "cd197c3a2040 mm: prohibit the last subpage from reusing the entire large folio "
        "(6.9, not in 6.1)",
        "7262f208ca68 mm/migrate: split source folio if it is on deferred split list "
        "(6.10, not in 6.1)",
        "5ed890ce5147 mm: vmscan: avoid split during shrink_folio_list() (6.10, not in 6.1)",
        "c18160dba5ff mm: swap: reuse exclusive folio directly instead of wp page faults "
        "(6.11, not in 6.1)",
        "b1f202060afe mm: remap unused subpages to shared zeropage when splitting isolated "
        "thp (6.12, not in 6.1)",
    ),
    description=(
        "mainline's rules as Linux 6.1 has them: a page swapped in by a read fault is mapped "
        "read-only; R/O long-term pins do not unshare the zero page; mprotect does not make "
        "a PMD writable; the last PTE of a large folio may reuse it on a write fault; "
        "reclaim splits every large folio no PMD maps; migration moves a partially mapped "
        "folio whole; a THP split keeps zero-filled subpages. 6.1 has no multi-size THP "
        "(6.8), so the kernel check does not run mthp mappings on it (the model still "
        "maps them as 6.12 would)."
    ),
    # do_swap_page (6.1, mm/memory.c) makes the PTE writable only on a write fault; 6.11
    # maps an exclusive page writable on a read fault too.
    swapin_writable_on_read=False,
    # gup_must_unshare (6.1, mm/gup.c) only unshares anonymous pages; 84209e87c696 (6.2)
    # made R/O long-term pins unshare the zero page (and page cache pages) in COW mappings.
    gup_unshare_zero_page=False,
    # mprotect_upgrade stays True: 6.1's can_change_pte_writable (mm/mprotect.c, 64fe24a3e05e,
    # 6.0) upgrades an exclusive anonymous PTE only if it is dirty, and the model has no
    # dirty bit. The PTE a write fault maps (a new page, a reused or copied one, a write
    # swap-in) is dirty, and fork, mremap and migration keep the bit, so True is 6.1's
    # answer for a page written through its own PTE. A clean exclusive PTE stays read-only
    # on 6.1 and is upgraded by the model: a read-fault swap-in, an unsharing copy for a
    # R/O pin, and every PTE of a PMD split (6.1's __split_huge_pmd_locked does not carry
    # the PMD's dirty bit over, mm/huge_memory.c). The kernel check's write check (page
    # faults of a store) sees it once, a known difference of 6.1; docs/history.md.
    mprotect_upgrade_pmd=False,
    large_reuse=LargeReuse.REFCOUNT,
    reclaim_split=ReclaimSplit.NOT_PMD_MAPPED,
    migrate_splits_partially_mapped=False,
    split_zero_remap=False,
)

SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        MAINLINE,
        # Only the swap bit differs from mainline. Its other decision points keep
        # 6.12's answers, some newer than the kernels it is named for: 5.19 had no
        # mprotect upgrade, 6.0-6.1 upgraded dirty PTEs only (mprotect_upgrade is
        # 6.2's rule), the zero page was unshared from 6.2 (gup_unshare_zero_page)
        # and read faults map swapped-in pages writable from 6.11; every other field
        # in which lts-6.1 differs from mainline is newer than 6.1 too.
        replace(
            MAINLINE,
            name="no-swp-exclusive",
            versions="5.19 to 6.2 on architectures without __HAVE_ARCH_PTE_SWP_EXCLUSIVE",
            commits=("6c287605fd56 (PG_anon_exclusive) without 1493a1913e34 (the swap bit)",),
            description="mainline, but every swap PTE reads as not exclusive.",
            swp_exclusive=False,
        ),
        replace(
            MAINLINE,
            name="page-count",
            versions="5.9 to 5.17",
            commits=(
                "09854ba94c6a mm: do_wp_page() simplification",
                "70e806e4e645 mm: Do early cow for pinned pages during fork() for ptes",
                "feb889fb40fa mm: don't put pinned pages into the swap cache",
            ),
            description=(
                "COW reuse by page_count == 1; PMD write faults and swap-in write faults still "
                "by map count; early COW of every maybe-pinned page at fork; no unsharing."
            ),
            anon_exclusive=False,
            swp_exclusive=False,
            wp_reuse=Reuse.PAGE_COUNT,
            pmd_reuse=Reuse.MAPCOUNT,
            swapin_reuse=Reuse.MAPCOUNT,
            swapin_writable_on_read=False,
            readable_exclusive_migration=False,
            gup_unshare=False,
            gup_unshare_zero_page=False,
            fork_pinned=ForkPinned.COPY_MAYBE_PINNED,
            mprotect_upgrade=False,
        ),
        replace(
            LEGACY_MAPCOUNT,
            name="gup-cow-break",
            versions="5.8 (and 5.7.3)",
            commits=(
                "17839856fd58 gup: document and work around 'COW can break either way' issue",
            ),
            description="map-count reuse, but every GUP in a COW mapping breaks COW first.",
            gup_cow_break=True,
        ),
        LEGACY_MAPCOUNT,
        replace(
            MAINLINE,
            name="head-only",
            versions="hypothetical: the alternative asked about in the 5.19 review (11 Mar 2022)",
            commits=("none: Matthew Wilcox's question on the PG_anon_exclusive v1 series",),
            description=(
                "mainline, but a large folio's (THP or mTHP) flag lives on its head page only; "
                "where one bit cannot "
                "describe every subpage it reads as shared (the conservative choice)."
            ),
            head_only=True,
        ),
        LTS_6_1,
        LTS_6_18,
        replace(
            LTS_6_18,
            name="mprotect-batch-head",
            versions="6.17-rc1 (a regression, fixed in 6.17-rc2)",
            commits=("cac1db8c3aad mm: optimize mprotect() by PTE batching (introduced)",
                     "cf1b80dc31a1 mm: pass page directly instead of using folio_page (fixed)"),
            description=(
                "lts-6.18, but mprotect's PTE batching decides a run of a large folio's PTEs "
                "by the flags of the folio's first pages: a shared page can become writable."
            ),
            mprotect_batch=MprotectBatch.FOLIO_HEAD,
        ),
        replace(
            MAINLINE,
            name="iouring-unpin-head",
            versions="6.12-rc1 to 6.16-rc (a GUP user's bug; the 6.12 stable series has the fix)",
            commits=("a8edbb424b13 io_uring/rsrc: enable multi-hugepage buffer coalescing "
                     "(introduced)",
                     "53fd75f25b22 io_uring/rsrc: fix folio unpinning (fixed)"),
            description=(
                "mainline, but a pin of a page of a large folio is recorded by the folio's "
                "head page, as io_uring's buffer coalescing did: the unpin's check looks at "
                "a page that may be shared."
            ),
            pin_record=PinRecord.FOLIO_HEAD,
        ),
    )
}

DECISION_POINTS: tuple[str, ...] = tuple(
    f.name for f in fields(Scheme) if f.name not in ("name", "versions", "commits", "description")
)


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; KeyError names the known schemes."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown scheme {name!r}; known schemes: {', '.join(SCHEMES)}") from None


def _show(value: object) -> str:
    return value.name if isinstance(value, Enum) else str(value)


def describe_difference(a: Scheme, b: Scheme) -> list[str]:
    """The decision points where two schemes differ, one line each."""
    out = []
    for point in DECISION_POINTS:
        va, vb = getattr(a, point), getattr(b, point)
        if va != vb:
            out.append(f"{point}: {a.name}={_show(va)} {b.name}={_show(vb)}")
    return out
