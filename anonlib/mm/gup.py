"""get_user_pages(): FOLL_GET and FOLL_PIN references, slow path and GUP-fast (mm/gup.c)."""

from __future__ import annotations

from ..mem import LARGE_ANON, Mem
from ..ops import Gup
from ..results import ErrorKind, OpFailed, Outcome
from ..schemes import PinRecord
from ..state import ZERO_FOLIO, Entry, EntryKind, FolioKind, Handle, replace
from .memory import handle_mm_fault

EFAULT = "EFAULT"
#: follow_page_mask + faultin_page rounds; more than any sequence needs.
MAX_ROUNDS = 8


def mm_set_has_pinned_flag(m: Mem, proc: str) -> None:
    """Mark the process's mm as one that has pinned pages (MMF_HAS_PINNED); never cleared.

    mm/gup.c: mm_set_has_pinned_flag (6.12), called by every FOLL_PIN before
    any page is looked up (__get_user_pages_locked, gup_fast_fallback), so even a
    pin that then fails with EFAULT leaves the flag set. fork reads it
    (copy_present_ptes: folio_try_dup_anon_rmap only asks about pins in such an mm).
    """
    m.procs[proc] = replace(m.proc(proc), has_pinned=True)


def gup_must_unshare(m: Mem, op: Gup, e: Entry, page: int, huge: bool, have_vma: bool) -> bool:
    """Must a R/O pin unshare the page first, so that the pin stays coherent?

    mm/internal.h: gup_must_unshare (6.12). Only R/O FOLL_PIN. An anonymous page:
    yes unless exclusive (KSM pages never are). Not anonymous (the zero page):
    only for FOLL_LONGTERM (6.2), and GUP-fast, having no VMA, always bails out.
    Scheme points ``gup_unshare`` and ``gup_unshare_zero_page``.
    """
    if op.write or not op.pin or not m.scheme.gup_unshare:
        return False
    if e.folio == ZERO_FOLIO:
        if not op.longterm:
            return False
        return True if not have_vma else m.scheme.gup_unshare_zero_page
    if m.folio(e.folio).kind is FolioKind.KSM:
        return True
    return not m.exclusive(e.folio, page, huge)


def _grab(m: Mem, op: Gup, e: Entry, page: int) -> None:
    """try_grab_folio(): take the reference (or pin) and remember it as a handle.

    Scheme point ``pin_record``: under the mutant ``iouring-unpin-head`` a pin of a page
    of a large folio is recorded by the folio's head page, as io_uring's buffer
    coalescing did (io_uring/rsrc.c: io_coalesce_buffer, a8edbb424b13, 6.12-rc1 to
    6.16-rc); reads and writes still go to the pinned page.
    """
    ref = op.page
    head = (op.pin and m.scheme.pin_record is PinRecord.FOLIO_HEAD and e.folio != ZERO_FOLIO
            and m.folio(e.folio).kind in LARGE_ANON)
    m.handles[op.handle] = Handle(
        name=op.handle, owner=ref.proc, pin=op.pin, write=op.write, longterm=op.longterm,
        folio=e.folio, page=page, mapping=ref.mapping, index=ref.index,
        allowed=frozenset({m.data(e.folio, page)}), release_head=head,
    )


def gup_fast(m: Mem, op: Gup) -> str | None:
    """Try to take the reference without locks or faults; return why it backed off, or None.

    mm/gup.c: gup_fast_pte_range / gup_fast_pmd_leaf (6.12): the entry must be
    present and not special (the zero page is), writable for FOLL_WRITE, and a
    R/O pin must pass gup_must_unshare with no VMA. The barriers that make this
    safe against a concurrent clearer are modelled step by step in anonlib.race;
    here GUP-fast is one atomic step.
    """
    ref = op.page
    loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
    v = m.vma(ref.proc, ref.mapping)
    if ref.index in v.holes or e is None or e.kind is not EntryKind.PRESENT:
        return "no present entry"
    if e.folio == ZERO_FOLIO:
        return "the zero page is mapped by a special entry"
    if op.write and not e.writable:
        return "the entry is read-only"
    if m.scheme.gup_cow_break and not e.writable:
        return "COW must be broken first (5.8), which needs a fault"
    if gup_must_unshare(m, op, e, page, loc.huge, have_vma=False):
        return "gup_must_unshare: the page is not exclusive"
    _grab(m, op, e, page)
    return None


def get_user_pages(m: Mem, op: Gup) -> Outcome:
    """Take a FOLL_GET or FOLL_PIN reference on one page, faulting as needed.

    mm/gup.c: __get_user_pages -> follow_page_mask / faultin_page (6.12), with
    pin_user_pages_fast / get_user_pages_fast when ``fast``. FOLL_PIN sets
    MMF_HAS_PINNED first (mm_set_has_pinned_flag). FOLL_WRITE on a read-only
    entry takes a write fault (COW or reuse); a R/O pin that gup_must_unshare
    flags takes an unshare fault. Scheme point ``gup_cow_break``: 5.8 broke COW
    for every GUP in a writable private mapping.
    """
    ref = op.page
    if op.handle in m.handles:
        raise OpFailed(f"reference {op.handle!r} is still held; release it first",
                       ErrorKind.INVALID)
    if op.pin:
        mm_set_has_pinned_flag(m, ref.proc)
    v = m.vma(ref.proc, ref.mapping)
    detail = ""
    if op.fast:
        reason = gup_fast(m, op)
        if reason is None:
            return Outcome("ok", "GUP-fast")
        detail = f"GUP-fast backed off: {reason}; slow path"
    if ref.index in v.holes or (op.write and not v.writable):
        return Outcome(EFAULT, "the mapping does not allow this access")
    for _ in range(MAX_ROUNDS):
        loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
        if e is not None and e.kind is EntryKind.HWPOISON:
            return Outcome(EFAULT, "hwpoison entry (EHWPOISON)")
        if e is None or e.kind is not EntryKind.PRESENT:
            if handle_mm_fault(m, ref.proc, ref.mapping, ref.index, op.write):
                return Outcome(EFAULT, "the fault failed")
            continue
        if op.write and not e.writable:
            handle_mm_fault(m, ref.proc, ref.mapping, ref.index, True)
            continue
        if m.scheme.gup_cow_break and not e.writable and v.writable:
            handle_mm_fault(m, ref.proc, ref.mapping, ref.index, True)
            continue
        if gup_must_unshare(m, op, e, page, loc.huge, have_vma=True):
            handle_mm_fault(m, ref.proc, ref.mapping, ref.index, False, unshare=True)
            continue
        _grab(m, op, e, page)
        return Outcome("ok", detail)
    raise AssertionError("GUP did not settle")  # pragma: no cover


def unpin_user_page(m: Mem, name: str, pin: bool) -> None:
    """Drop a FOLL_PIN (unpin) or FOLL_GET (put) reference; the flag never changes here.

    mm/gup.c: unpin_user_page; include/linux/mm.h: put_page (6.12).
    """
    h = m.handle(name)
    if h.pin != pin:
        took, needs = ("pin", "unpin") if h.pin else ("get", "put")
        raise OpFailed(f"{name} was taken with {took}; release it with {needs} {name}",
                       ErrorKind.INVALID)
    del m.handles[name]


def handle_write(m: Mem, name: str, value: str) -> Outcome:
    """A device or pipe writes through a R/W reference into the page it holds."""
    h = m.handle(name)
    if not h.write:
        raise OpFailed(f"{name} is a read-only reference; only rw references can be written",
                       ErrorKind.INVALID)
    if m.folio(h.folio).pages[h.page].hwpoison:
        return Outcome("SIGBUS", "the page is poisoned")
    m.set_page(h.folio, h.page, data=value)
    for other in list(m.handles.values()):  # the owner's references to this page see it
        if other.owner == h.owner and (other.folio, other.page) == (h.folio, h.page):
            m.handles[other.name] = replace(other, allowed=other.allowed | {value})
    if not h.pin:
        # FOLL_GET promises nothing about where a device write lands: after fork it may
        # be a page the child still maps (the old O_DIRECT-vs-fork problem, why O_DIRECT
        # moved to FOLL_PIN). The ghost state lets everyone who sees the page see it.
        m.note_device_write_anywhere(h.folio, h.page, value)
    if h.tracking and h.owner in m.procs:
        m.note_write(h.owner, h.mapping, h.index, value, exact=False)
    return Outcome("ok")


def handle_read(m: Mem, name: str) -> Outcome:
    """Read the page a reference holds (a pipe read, a DMA read)."""
    h = m.handle(name)
    if h.folio != ZERO_FOLIO and m.folio(h.folio).pages[h.page].hwpoison:
        return Outcome("SIGBUS", "the page is poisoned")
    return Outcome(m.data(h.folio, h.page))
