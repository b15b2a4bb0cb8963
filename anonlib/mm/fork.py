"""fork(): copying page tables, and where PG_anon_exclusive is cleared or a copy is made early.

kernel/fork.c: dup_mmap; mm/memory.c: copy_page_range, copy_present_pte(s),
copy_nonpresent_pte, copy_present_page; mm/huge_memory.c: copy_huge_pmd;
mm/hugetlb.c: copy_hugetlb_page_range (6.12).
"""

from __future__ import annotations

from ..mem import Loc, Mem
from ..ops import MapKind
from ..results import ErrorKind, OpFailed
from ..schemes import ForkPinned
from ..state import ZERO_FOLIO, Entry, EntryKind, FolioKind, Process, Vma, replace
from .anon_rmap import folio_try_dup_anon_rmap
from .huge_memory import split_huge_pmd
from .internal import copy_anon_folio
from .memory import remove_device_exclusive_entry


def dup_mmap(m: Mem, parent: str, child: str) -> None:
    """Create ``child`` with a copy of ``parent``'s address space.

    kernel/fork.c: dup_mmap -> copy_page_range (6.12). VMAs (here: pages) marked
    MADV_DONTFORK are not copied; the child's MMF_HAS_PINNED starts clear. The
    parent's write_protect_seq is odd throughout, which is what keeps GUP-fast
    away (:mod:`anonlib.race`); here fork is one atomic step.
    """
    if child in m.procs:
        raise OpFailed(f"process {child!r} already exists", ErrorKind.INVALID)
    p = m.proc(parent)
    m.procs[child] = Process(child)
    for v in p.vmas:
        skip = v.holes | v.dontfork
        if len(skip) == v.npages:
            continue
        cv = replace(v, dontfork=frozenset(), holes=frozenset(skip), huge=None,
                     ptes=tuple(None for _ in v.ptes),
                     shadow=tuple(frozenset() if i in skip else s
                                  for i, s in enumerate(v.shadow)))
        m.procs[child] = replace(m.procs[child], vmas=m.procs[child].vmas + (cv,))
        copy_page_range(m, parent, child, v.name)


def copy_page_range(m: Mem, parent: str, child: str, vma: str) -> None:
    """Copy one mapping's entries, huge ones first (a failed PMD dup splits and retries by PTE).

    mm/memory.c: copy_page_range -> copy_pmd_range -> copy_huge_pmd / copy_pte_range (6.12).
    """
    v = m.vma(parent, vma)
    if v.kind is MapKind.HUGETLB:
        if v.huge is not None:
            copy_hugetlb_page_range(m, parent, child, vma)
        return
    if v.huge is not None and copy_huge_pmd(m, parent, child, vma):
        return
    v = m.vma(parent, vma)
    for i, e in enumerate(v.ptes):
        if e is None or i in v.holes or i in v.dontfork:
            continue
        src, dst = Loc(parent, vma, False, i), Loc(child, vma, False, i)
        if e.kind is EntryKind.DEVICE_EXCLUSIVE:
            remove_device_exclusive_entry(m, src)  # revoke device access first
            e = m.get(src)
            assert e is not None
        if e.kind is EntryKind.PRESENT:
            copy_present_pte(m, src, dst, e)
        else:
            copy_nonpresent_pte(m, src, dst, e)


def _early_cow(m: Mem, parent: str, fid: int, page: int, huge: bool) -> bool:
    """Must the child get its own copy now? The scheme point ``fork_pinned``."""
    has_pinned = m.proc(parent).has_pinned
    rule = m.scheme.fork_pinned
    if rule is ForkPinned.SHARE:
        return False
    if rule is ForkPinned.COPY_MAYBE_PINNED:
        return has_pinned and m.maybe_pinned(fid)
    return not folio_try_dup_anon_rmap(m, fid, page, huge, has_pinned)


def copy_present_pte(m: Mem, src: Loc, dst: Loc, e: Entry) -> None:
    """Share a present page with the child, write-protected in both, or copy it for the child.

    mm/memory.c: copy_present_ptes -> folio_try_dup_anon_rmap_ptes (6.12). On -EBUSY
    (exclusive and maybe pinned) copy_present_page gives the child a copy and
    leaves the parent's PTE as it was: the pinned page stays with the parent.
    For a large folio 6.12 takes a run of PTEs at once (folio_pte_batch, 6.9); a
    run with an exclusive page of a maybe-pinned folio fails as a whole and is
    retried one PTE at a time, so page by page the outcome is this function's:
    every exclusive page of a folio pinned anywhere is copied, the others shared.
    """
    anon = e.folio != ZERO_FOLIO and m.folio(e.folio).kind is not FolioKind.KSM
    if anon and _early_cow(m, src.proc, e.folio, e.page, False):
        copy_present_page(m, dst, m.data(e.folio, e.page))
        return
    share_write_protected(m, src, dst, e)


def share_write_protected(m: Mem, src: Loc, dst: Loc, e: Entry) -> None:
    """Map the same page in the child, and write-protect the parent's entry if it was writable.

    mm/memory.c: __copy_present_ptes (is_cow_mapping: wrprotect both); the same step in
    copy_huge_pmd and copy_hugetlb_page_range (6.12).
    """
    if e.writable:
        m.set(src, replace(e, writable=False))
    m.set(dst, replace(e, writable=False))


def copy_present_page(m: Mem, dst: Loc, data: str) -> None:
    """The child gets a new exclusive page with a copy of the data, writable if VM_WRITE.

    mm/memory.c: copy_present_page (6.12).
    """
    v = m.vma(dst.proc, dst.vma)
    f = copy_anon_folio(m, FolioKind.SMALL, (data,))
    m.set(dst, Entry(EntryKind.PRESENT, f.id, 0, writable=v.writable, soft_dirty=True))


def copy_nonpresent_pte(m: Mem, src: Loc, dst: Loc, e: Entry) -> None:
    """Copy a swap, migration, device-private or hwpoison entry.

    mm/memory.c: copy_nonpresent_pte (6.12). Swap: the parent's entry loses its
    exclusive bit (swap_duplicate raises the count). Migration: writable and
    readable_exclusive entries become readable in both. Device-private: the dup
    cannot fail (such pages are never pinned); the flag is cleared and a
    writable entry is replaced by a readable one (without the soft-dirty bit).
    hwpoison: copied as it is. Not modelled (no userfaultfd): the uffd-wp bit
    of any copied entry stays in the parent and is kept in the child only if
    the child's VMA is registered for uffd-wp (userfaultfd_wp(dst_vma)).
    """
    if e.kind is EntryKind.SWAP:
        if e.exclusive:
            m.set(src, replace(e, exclusive=False))
        m.set(dst, replace(e, exclusive=False))
    elif e.kind is EntryKind.MIGRATION:
        shared = replace(e, writable=False, exclusive=False)
        m.set(src, shared)
        m.set(dst, shared)
    elif e.kind is EntryKind.DEVICE_PRIVATE:
        m.clear_exclusive(e.folio, e.page)
        if e.writable:  # a fresh readable entry: soft-dirty is not carried over
            e = replace(e, writable=False, soft_dirty=False)
            m.set(src, e)
        m.set(dst, e)
    else:
        m.set(dst, e)


def copy_huge_pmd(m: Mem, parent: str, child: str, vma: str) -> bool:
    """Copy a PMD; False when it had to be split, so the caller copies PTE by PTE instead.

    mm/huge_memory.c: copy_huge_pmd (6.12): folio_try_dup_anon_rmap_pmd clears the
    head flag, or fails for an exclusive, maybe-pinned THP: the parent's PMD is
    then split and each exclusive subpage copied for the child. The huge zero
    page is shared; a PMD migration entry becomes readable in both.
    """
    v = m.vma(parent, vma)
    e = v.huge
    assert e is not None
    src, dst = Loc(parent, vma, True, 0), Loc(child, vma, True, 0)
    if e.kind is EntryKind.MIGRATION:
        copy_nonpresent_pte(m, src, dst, e)
        return True
    if e.folio != ZERO_FOLIO and _early_cow(m, parent, e.folio, 0, True):
        split_huge_pmd(m, parent, vma)
        return False
    share_write_protected(m, src, dst, e)
    return True


def copy_hugetlb_page_range(m: Mem, parent: str, child: str, vma: str) -> None:
    """Copy a hugetlb entry: share it, or copy the whole huge page for an exclusive pinned one.

    mm/hugetlb.c: copy_hugetlb_page_range -> hugetlb_try_dup_anon_rmap (6.12).
    """
    v: Vma = m.vma(parent, vma)
    e = v.huge
    assert e is not None
    src, dst = Loc(parent, vma, True, 0), Loc(child, vma, True, 0)
    if e.kind is not EntryKind.PRESENT:
        copy_nonpresent_pte(m, src, dst, e)
        return
    if _early_cow(m, parent, e.folio, 0, True):
        old = m.folio(e.folio)
        f = copy_anon_folio(m, FolioKind.HUGETLB, tuple(p.data for p in old.pages), huge=True)
        m.set(dst, Entry(EntryKind.PRESENT, f.id, 0, writable=v.writable, soft_dirty=True))
        return
    share_write_protected(m, src, dst, e)
