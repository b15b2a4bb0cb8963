"""The model's front door: apply one operation to a World under a Scheme.

:func:`apply` is the only function the scenario runner, the explorer and the
widgets call to change state. It works on a scratch copy (:class:`~anonlib.mem.Mem`),
so the World it is given is never modified: on success it returns the next
World with the operation's outcome, on a refused operation a
:class:`~anonlib.results.ModelError`, and where the kernel backs off the
unchanged World with the outcome ``skipped``.

Simplifications (the one list; each is also noted where it happens)
------------------------------------------------------------------
Sizes and counters
  * A THP has ``thp_pages`` subpages (default 4, not 512) and a hugetlb page
    ``hugetlb_pages`` (default 4). An mTHP has 4 to 256 pages, as in the kernel
    (orders 2 to 8 of a 512-page PMD); the model's THP and mTHP sizes are
    independent, so a 4-page mTHP and a 4-page THP can exist side by side.
  * Pins are counted exactly (``pincount``); the kernel's small-folio
    refcount bias (GUP_PIN_COUNTING_BIAS) and its false positives are not
    reproduced. ``folio_maybe_dma_pinned`` is therefore exact.
  * Refcounts, mapcounts and swap counts are derived from the page tables,
    references and swap cache (:mod:`anonlib.mem`); there are no per-CPU LRU
    batches or speculative references, so the "unnecessary COW" of 5.9-5.17
    (LRU batch) does not appear; the swap-cache variant does.
Concurrency
  * Every operation is atomic. The races between GUP-fast and the code that
    clears the flag (fork's write_protect_seq, the barriers in
    folio_try_share_anon_rmap) are modelled step by step, with memory
    models, in :mod:`anonlib.race`, not here.
Swap
  * The swap device is not SWP_SYNCHRONOUS_IO: a swapped-in page always goes
    through the swap cache (the real check's zram device skips it when the
    swap count is 1), and the large swap-in of synchronous devices
    (alloc_swap_folio, 6.12) is not modelled: a swapped-out mTHP or THP comes
    back one small folio per page, as 6.12's readahead path gives.
    Reclaim is atomic and writeback completes at swap-out, so the
    stable-writes case of do_swap_page never arises, and a large folio never
    stays in the swap cache with its PTEs swapped (6.12 maps such a folio back
    all at once, a state its reclaim passes through only while it runs). KSM
    pages are not swapped out. The swap device always has a run of free slots
    for a large folio unless ``swap_slots`` runs out.
THP
  * A read fault on an untouched THP range maps the huge zero page; a write
    fault on it splits the PMD and copies only the faulting page (6.12).
    Faults in a ``thp`` range that is already PTE-mapped allocate small
    folios: the model keeps ``thp`` and ``mthp`` mappings apart (in the
    kernel a VM_HUGEPAGE range would also get the enabled mTHP sizes there).
    The model has one zero page; the kernel's huge zero page is a separate
    frame.
  * An ``mthp`` mapping starts at an address aligned to its largest enabled
    size, and mTHP allocation never fails. The zap of a range treats all the
    pages of one folio in it as one batch (the kernel batches runs of
    consecutive PTEs; the partially-mapped verdict is the same in every state
    the model reaches).
  * Large folios are never reused by a write fault unless exclusive (6.12;
    6.15's CONFIG_MM_ID reuse is not modelled).
  * MADV_DONTFORK on part of a THP splits the PMD, as the kernel's VMA split
    does; the model keeps one VMA and records the excluded pages.
  * MADV_COLLAPSE refuses ranges with swap or other non-present entries.
Devices and failures
  * Only small folios move to device-private memory (6.12 skips a page of a
    PTE-mapped large folio; a PMD-mapped THP, which 6.12 splits and migrates,
    makes the model back off).
  * Device-exclusive entries (6.12's rmap walk, scheme point
    ``device_exclusive_walk``): where the walk meets an entry of the folio
    that is already device-exclusive, which ends it in the kernel, the model
    has converted the requested PTE only (it keeps no anon_vma tree or
    address order, and its explorer renames processes and permutes tail
    pages), so it may report ``EBUSY`` where the kernel, walking in a
    luckier order, converts every mapping. Reclaim, migration and KSM back
    off from a folio with a device-exclusive entry, where 6.12's rmap walkers
    do not handle such entries consistently (:mod:`anonlib.mm.anon_rmap`).
  * Memory failure on a large folio that cannot be split (pinned) backs off instead
    of the kernel's partial handling, and so does memory failure on a pinned
    exclusive page in the swap cache, whose unmap the pin check refuses (the
    kernel leaves it mapped and kills the processes that map it).
Old eras
  * ``gup-cow-break`` breaks COW only in writable mappings.
  * ``page-count`` stands for 5.9 to 5.17. Its early COW of maybe-pinned
    pages at fork is 5.9's (70e806e4e645); its reclaim check, which keeps
    maybe-pinned pages out of the swap cache, is 5.11's (feb889fb40fa), so
    for 5.9 and 5.10 the model is stricter than the kernel was.
Processes
  * A process's GUP references (pipes, DMA buffers) are dropped when it exits.
  * File-backed mappings, shared mappings, userfaultfd, NUMA hinting and
    FOLL_FORCE are not modelled; of mremap, only moving the tail of a mapping
    to a new place (``P mremap``, cow.c's partially mremap()'ed THP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .mem import Mem
from .mm import fork as fork_mm
from .mm import (
    gup,
    ksm,
    madvise,
    memory,
    memory_failure,
    migrate,
    migrate_device,
    mmap,
    mprotect,
    mremap,
    rmap,
    vmscan,
)
from .mm.huge_memory import split_folio, split_huge_pmd
from .ops import (
    ClearSoftDirty,
    Exit,
    Fork,
    Gup,
    HandleRead,
    HandleWrite,
    Kernel,
    KernelAction,
    Ksm,
    Madvise,
    MapKind,
    Mmap,
    Mprotect,
    Mremap,
    Munmap,
    Op,
    Operation,
    PageRef,
    Read,
    Release,
    Spawn,
    Write,
)
from .results import BackOff, ErrorKind, ModelError, OpFailed, Outcome
from .schemes import MAINLINE, Scheme
from .state import ZERO_FOLIO, Config, EntryKind, World

OK = Outcome("ok")


@dataclass(frozen=True)
class Step:
    """The result of a successful :func:`apply`: the next world and the outcome."""

    world: World
    outcome: Outcome


def initial_world(config: Config | None = None) -> World:
    """An empty world: no processes, no memory in use."""
    return World(config=config or Config())


#: The transition for each operation class (see :func:`transition`).
TRANSITIONS: dict[type[Operation], Callable[[Mem, Any], Outcome]] = {}

OpT = TypeVar("OpT", bound=Operation)


def transition(cls: type[OpT]
               ) -> Callable[[Callable[[Mem, OpT], Outcome]], Callable[[Mem, OpT], Outcome]]:
    """Register the function that carries out operations of class ``cls``.

    A transition checks what the model refuses or the kernel backs off from
    (a mapping that is gone, a page out of range) and calls the function of
    ``anonlib/mm`` named after the kernel function the statement reaches.
    """

    def register(fn: Callable[[Mem, OpT], Outcome]) -> Callable[[Mem, OpT], Outcome]:
        if cls in TRANSITIONS:
            raise ValueError(f"{cls.__name__} already has a transition")
        TRANSITIONS[cls] = fn
        return fn

    return register


def apply(world: World, op: Op, scheme: Scheme = MAINLINE) -> Step | ModelError:
    """Carry out ``op`` on ``world`` under ``scheme``; never modifies ``world``."""
    fn = TRANSITIONS.get(type(op))
    if fn is None:
        return ModelError(ErrorKind.INVALID, f"unknown operation {op!r}")
    m = Mem(world, scheme)
    try:
        outcome = fn(m, op)
    except BackOff as why:
        return Step(world, Outcome("skipped", str(why)))
    except OpFailed as err:
        return ModelError(err.kind, str(err))
    return Step(m.freeze(), outcome)


def _mapped(m: Mem, proc: str, mapping: str) -> bool:
    """Does the (existing) process still have this mapping? (It may have unmapped it.)"""
    return m.proc(proc).vma(mapping) is not None


def _check_page(m: Mem, ref: PageRef) -> None:
    """Name the problem if ``ref`` is not a page of an existing mapping."""
    v = m.vma(ref.proc, ref.mapping)
    if not 0 <= ref.index < v.npages:
        raise OpFailed(f"{ref.mapping}[{ref.index}] is out of range: mapping {ref.mapping} of "
                       f"{ref.proc} has {v.npages} pages (0..{v.npages - 1})", ErrorKind.INVALID)


def _access(m: Mem, ref: PageRef, write: bool) -> str | None:
    if not _mapped(m, ref.proc, ref.mapping):
        return memory.SIGSEGV  # the address is no longer mapped
    _check_page(m, ref)
    return memory.handle_mm_fault(m, ref.proc, ref.mapping, ref.index, write)


@transition(Spawn)
def _spawn(m: Mem, op: Spawn) -> Outcome:
    mmap.spawn(m, op.proc)
    return OK


@transition(Mmap)
def _mmap(m: Mem, op: Mmap) -> Outcome:
    mmap.do_mmap(m, op.proc, op.mapping, op.kind, op.npages)
    return OK


@transition(Write)
def _write(m: Mem, op: Write) -> Outcome:
    sig = _access(m, op.page, True)
    if sig:
        return Outcome(sig)
    _loc, e, page = m.page_at(op.page.proc, op.page.mapping, op.page.index)
    assert e is not None and e.kind is EntryKind.PRESENT and e.writable
    m.set_page(e.folio, page, data=op.value)
    m.note_write(op.page.proc, op.page.mapping, op.page.index, op.value, exact=True)
    return OK


@transition(Read)
def _read(m: Mem, op: Read) -> Outcome:
    sig = _access(m, op.page, False)
    if sig:
        return Outcome(sig)
    _loc, e, page = m.page_at(op.page.proc, op.page.mapping, op.page.index)
    assert e is not None and e.kind is EntryKind.PRESENT
    return Outcome(m.data(e.folio, page))


@transition(Fork)
def _fork(m: Mem, op: Fork) -> Outcome:
    fork_mm.dup_mmap(m, op.parent, op.child)
    return OK


@transition(Gup)
def _gup(m: Mem, op: Gup) -> Outcome:
    if not _mapped(m, op.page.proc, op.page.mapping):
        if op.pin:
            gup.mm_set_has_pinned_flag(m, op.page.proc)
        return Outcome(gup.EFAULT, "the address is not mapped")
    _check_page(m, op.page)
    return gup.get_user_pages(m, op)


@transition(HandleRead)
def _handle_read(m: Mem, op: HandleRead) -> Outcome:
    return gup.handle_read(m, op.handle)


@transition(HandleWrite)
def _handle_write(m: Mem, op: HandleWrite) -> Outcome:
    return gup.handle_write(m, op.handle, op.value)


@transition(Release)
def _release(m: Mem, op: Release) -> Outcome:
    gup.unpin_user_page(m, op.handle, op.pin)
    return OK


@transition(Mprotect)
def _mprotect(m: Mem, op: Mprotect) -> Outcome:
    if not _mapped(m, op.proc, op.mapping):
        return Outcome("ENOMEM", "the range is not mapped")
    mprotect.change_protection(m, op.proc, op.mapping, op.write)
    return OK


@transition(Madvise)
def _madvise(m: Mem, op: Madvise) -> Outcome:
    if not _mapped(m, op.proc, op.mapping):
        return Outcome("ENOMEM", "the range is not mapped")
    if op.index is not None:
        _check_page(m, PageRef(op.proc, op.mapping, op.index))
    return madvise.madvise(m, op.proc, op.mapping, op.index, op.advice)


@transition(ClearSoftDirty)
def _clear_softdirty(m: Mem, op: ClearSoftDirty) -> Outcome:
    m.proc(op.proc)
    mprotect.clear_refs_soft_dirty(m, op.proc)
    return OK


@transition(Munmap)
def _munmap(m: Mem, op: Munmap) -> Outcome:
    if not _mapped(m, op.proc, op.mapping):
        return Outcome("ok", "nothing was mapped there")
    mmap.do_munmap(m, op.proc, op.mapping)
    return OK


@transition(Mremap)
def _mremap(m: Mem, op: Mremap) -> Outcome:
    if not _mapped(m, op.proc, op.mapping):
        return Outcome("EFAULT", "the range is not mapped")
    _check_page(m, PageRef(op.proc, op.mapping, op.index))
    if m.proc(op.proc).vma(op.new) is not None:
        raise OpFailed(f"process {op.proc} already has a mapping {op.new!r}", ErrorKind.INVALID)
    return mremap.move_vma(m, op.proc, op.mapping, op.index, op.new) or OK


@transition(Exit)
def _exit(m: Mem, op: Exit) -> Outcome:
    mmap.exit_mmap(m, op.proc)
    return OK


@transition(Ksm)
def _ksm(m: Mem, op: Ksm) -> Outcome:
    for ref in (op.first, op.second):
        if not _mapped(m, ref.proc, ref.mapping):
            raise BackOff(f"{ref} is not mapped")
    _check_page(m, op.first)
    _check_page(m, op.second)
    ksm.try_to_merge_pages(m, op.first, op.second)
    return OK


@transition(Kernel)
def _kernel(m: Mem, op: Kernel) -> Outcome:
    ref, act = op.page, op.action
    if not _mapped(m, ref.proc, ref.mapping):
        raise BackOff(f"{ref.proc} has no mapping {ref.mapping} any more")
    _check_page(m, ref)
    if act is KernelAction.DEVICE_EXCLUSIVE and not m.scheme.device_exclusive:
        raise OpFailed(f"kernel device-exclusive: make_device_exclusive does not exist in the "
                       f"{m.scheme.name} scheme ({m.scheme.versions}); it arrived in 5.14",
                       ErrorKind.INVALID)
    if act is KernelAction.SPLIT_PMD:
        if not split_huge_pmd(m, ref.proc, ref.mapping):
            raise BackOff(f"{ref.mapping} of {ref.proc} is not mapped by a PMD")
        return OK
    if act is KernelAction.DEVICE_PRIVATE:
        loc = m.loc_of(ref.proc, ref.mapping, ref.index)
        migrate_device.migrate_vma_pages(m, loc, ref.index)
        return OK
    if act is KernelAction.DEVICE_EXCLUSIVE:
        why = rmap.make_device_exclusive(m, ref.proc, ref.mapping, ref.index)
        # not converted (6.12): the driver sees no page and fails with EBUSY (lib/test_hmm.c:
        # dmirror_exclusive); unlike a back-off, the lookup's fault and the entries stay
        return Outcome("EBUSY", why) if why else OK
    if act is KernelAction.POISON:
        memory_failure.memory_failure(m, ref)
        return OK
    _loc, e, _page = m.page_at(ref.proc, ref.mapping, ref.index)
    if act is KernelAction.SWAPCACHE_DROP:
        if e is None or e.kind is not EntryKind.SWAP:
            raise BackOff(f"{ref} is not a swap entry")
        f = m.swapcache_folio(e.slot)
        if f is None:
            raise BackOff("the page is not in the swap cache")
        vmscan.remove_from_swapcache(m, f.id)
        return OK
    if act is KernelAction.DEVICE_PRIVATE_END:
        if e is None or e.kind is not EntryKind.DEVICE_PRIVATE:
            raise BackOff(f"{ref} is not a device-private entry")
        migrate_device.migrate_to_ram(m, e.folio)
        return OK
    if act is KernelAction.MIGRATE_END:
        if e is None or e.kind is not EntryKind.MIGRATION:
            raise BackOff(f"{ref} is not a migration entry")
        reason = migrate.migrate_folio_move(m, e.folio)
        # failed: the old folio is mapped back, a change of the entries ("skipped" is
        # kept for a back-off that leaves the world as it was)
        return Outcome("restored", reason) if reason else OK
    if e is None or e.kind is not EntryKind.PRESENT or e.folio == ZERO_FOLIO:
        if e is None:
            what = "nothing"
        elif e.kind is EntryKind.PRESENT:
            what = "the zero page"
        else:
            what = f"a {e.kind.value} entry"
        raise BackOff(f"no anonymous page is mapped at {ref} ({what})")
    if act is KernelAction.SWAPOUT:
        vmscan.shrink_folio_list(m, e.folio)
        return OK
    if act is KernelAction.MIGRATE_BEGIN:
        for fid in migrate.migrate_pages(m, e.folio):
            migrate.migrate_folio_unmap(m, fid)
        return OK
    if act is KernelAction.MIGRATE:
        fids = migrate.migrate_pages(m, e.folio)
        for fid in fids:
            migrate.migrate_folio_unmap(m, fid)
        reasons = [r for fid in fids if (r := migrate.migrate_folio_move(m, fid))]
        return Outcome("skipped", reasons[0]) if reasons else OK
    if act is KernelAction.SPLIT_FOLIO:
        # the large folio mapped at the page (a THP mapping's one folio, or an mTHP)
        reason = split_folio(m, e.folio)
        if reason:
            raise BackOff(reason)
        return OK
    raise OpFailed(f"unknown kernel action {act}", ErrorKind.INVALID)  # pragma: no cover


@dataclass(frozen=True)
class PageState:
    """What ``expect P A[i] WORD...`` can ask about one virtual page (None: undefined there)."""

    kind: str
    pmd: bool
    writable: bool | None
    exclusive: bool | None
    pinned: bool | None
    page: tuple[int, int] | None  # (folio id, page index): the physical page, for same-page

    def words(self) -> tuple[str, ...]:
        """The state words that hold, in the contract's order."""
        out = [self.kind]
        if self.pmd:
            out.append("pmd")
        if self.writable is not None:
            out.append("writable" if self.writable else "readonly")
        if self.exclusive is not None:
            out.append("exclusive" if self.exclusive else "shared")
        if self.pinned is not None:
            out.append("pinned" if self.pinned else "unpinned")
        return tuple(out)


def page_state(world: World, scheme: Scheme, ref: PageRef) -> PageState | ModelError:
    """The entry that maps ``ref`` and the page behind it, in the contract's state words."""
    m = Mem(world, scheme)
    try:
        p = m.proc(ref.proc)
        v = p.vma(ref.mapping)
        if v is None or ref.index in v.holes:
            return PageState("none", False, None, None, False, None)
        _check_page(m, ref)
        loc, e, page = m.page_at(ref.proc, ref.mapping, ref.index)
    except OpFailed as err:
        return ModelError(err.kind, str(err))
    if e is None:
        return PageState("none", False, None, None, False, None)
    has_flag = scheme.anon_exclusive
    pmd = loc.huge and v.kind is MapKind.THP
    if e.kind is EntryKind.SWAP:
        f = m.swapcache_folio(e.slot)
        pinned = f is not None and m.maybe_pinned(f.id)
        return PageState("swap", False, None, e.exclusive if has_flag else None, pinned, None)
    pinned = m.maybe_pinned(e.folio)
    phys = (e.folio, page)
    if e.kind is EntryKind.HWPOISON:
        return PageState("hwpoison", pmd, None, None, pinned, phys)
    if e.kind is EntryKind.MIGRATION:
        return PageState("migration", pmd, e.writable, e.exclusive if has_flag else None,
                         pinned, phys)
    excl = m.exclusive(e.folio, page, loc.huge) if has_flag else None
    return PageState(e.kind.value, pmd, e.writable, excl, pinned, phys)
