"""The state of the model: immutable values, one World per point in time.

Everything here is a frozen dataclass of tuples, so a World can be hashed,
compared, kept for undo, and shared between the scenario runner, the
explorer and the widgets. Transition functions never modify a World; they
work on a :class:`~anonlib.mem.Mem` (a mutable scratch copy) and freeze it
into a new World, or return an error and leave the old one untouched.

What is stored and what is derived
----------------------------------
Stored: page tables (per process, per mapping), folios with their pages'
flags and contents, swap slots' contents, GUP references ("handles"), and
``MMF_HAS_PINNED`` per mm. Two things about a folio are history the page
tables do not determine, so they are stored too: ``PG_partially_mapped``
and 6.15's per-MM tracking of large folios (``Folio.mm_slots``,
``Folio.maybe_mapped_shared``), which :meth:`~anonlib.mem.Mem.set` keeps.

Derived, never stored (see :mod:`anonlib.mem`): a folio's refcount, its
exact pin count, per-page and total mapcounts, and a swap slot's swap count.
The kernel keeps these as counters; deriving them means the model cannot
get them out of step with the page tables, which is the property the
kernel's counters are meant to have.

Ghost state (not in the kernel; used to state user-visible truths):
``Vma.shadow`` and ``Handle.allowed`` hold, per page, the set of values a
correct kernel may show the process (or the device behind a reference);
``World.copies`` counts page copies for the design discussion.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from dataclasses import replace as _dataclasses_replace
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from .ops import MapKind

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}
_new = object.__new__
_set = object.__setattr__


def replace(obj: _T, /, **changes: Any) -> _T:
    """``dataclasses.replace`` for the frozen dataclasses of this module, about a third cheaper.

    The model makes a new Entry, Vma, Page, Folio or Process for every change,
    several per operation, and the explorer runs millions of operations.
    ``dataclasses.replace`` walks the class's field objects and calls the
    frozen ``__init__`` on every call; this copies the fields by name (the
    names worked out once per class) and runs ``__post_init__`` where the
    class has one, so the result is the same. An unknown field is a
    TypeError naming it, as with ``dataclasses.replace``; a class with
    ``init=False`` fields is handed to ``dataclasses.replace``.
    """
    cls = type(obj)
    try:
        names = _FIELD_NAMES[cls]
    except KeyError:
        fs = fields(cls)
        names = _FIELD_NAMES[cls] = (tuple(f.name for f in fs)
                                     if all(f.init for f in fs) else None)
    if names is None:
        return _dataclasses_replace(obj, **changes)
    new = _new(cls)
    for name in names:
        _set(new, name, changes.pop(name) if name in changes else getattr(obj, name))
    if changes:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(changes))}")
    post = getattr(cls, "__post_init__", None)
    if post is not None:
        post(new)
    return new


#: Folio id of the shared zero page. It is not anonymous and never stored in World.folios.
ZERO_FOLIO = 0
#: What a never-written anonymous page reads as.
ZERO_VALUE = "0"


class EntryKind(Enum):
    """Kinds of page-table entry (none is represented by ``None``)."""

    PRESENT = "present"
    SWAP = "swap"
    MIGRATION = "migration"
    DEVICE_PRIVATE = "device-private"
    DEVICE_EXCLUSIVE = "device-exclusive"
    HWPOISON = "hwpoison"


@dataclass(frozen=True, slots=True)
class Entry:
    """One page-table entry: a PTE, or a PMD / hugetlb entry covering a whole folio.

    ``folio``/``page`` say which physical page the entry leads to (for a
    huge entry, ``page`` is 0: the head). ``exclusive`` is the bit the
    *entry* carries: the swap PTE's exclusive bit, or for a migration entry
    whether it is writable/readable_exclusive (True) or readable (False).
    Present and device entries leave it False: for them exclusivity lives
    in PG_anon_exclusive on the page.
    """

    kind: EntryKind
    folio: int = ZERO_FOLIO
    page: int = 0
    writable: bool = False
    exclusive: bool = False
    soft_dirty: bool = False
    slot: int = -1

    def __post_init__(self) -> None:
        if self.kind is EntryKind.SWAP and self.slot < 0:
            raise ValueError("a swap entry needs a slot")


@dataclass(frozen=True, slots=True)
class Vma:
    """A private anonymous mapping (struct vm_area_struct) and its page table.

    For a THP mapping, ``huge`` holds the PMD while the folio is PMD-mapped
    (and the PTEs are then all None); after a PMD split the PTEs hold the
    entries. A hugetlb mapping only ever uses ``huge``. The kernel splits a
    VMA when MADV_DONTFORK covers part of it; the model keeps one Vma and
    records the excluded pages in ``dontfork`` (and, in a fork child, the
    pages that were not copied in ``holes``).
    """

    name: str
    kind: MapKind
    npages: int
    writable: bool = True  # VM_WRITE
    softdirty_tracking: bool = False  # VM_SOFTDIRTY cleared by clear_refs: writes must fault
    dontfork: frozenset[int] = frozenset()
    holes: frozenset[int] = frozenset()
    huge: Entry | None = None
    ptes: tuple[Entry | None, ...] = ()
    shadow: tuple[frozenset[str], ...] = ()

    def entry(self, index: int) -> Entry | None:
        """The entry that maps page ``index`` (the huge entry when there is one)."""
        if self.huge is not None:
            return self.huge
        if self.kind is MapKind.HUGETLB:
            return None
        return self.ptes[index]


#: Up to this many mappings, Process.vma scans the tuple (cheaper than any index).
_SCAN_VMAS = 8
#: Most recent ``vmas`` tuples indexed by name: id -> (the tuple, name -> position).
#: The tuple is kept in the value, so an id is never reused while its entry exists.
_VMA_INDEXES: dict[int, tuple[tuple[Vma, ...], dict[str, int]]] = {}
#: How many indexes to keep; a run touches a few per step, the rest are dropped oldest first.
_VMA_INDEXES_KEPT = 64


def _vma_index(vmas: tuple[Vma, ...]) -> dict[str, int]:
    """Name -> position of the first mapping with that name in ``vmas``, built once per tuple."""
    hit = _VMA_INDEXES.get(id(vmas))
    if hit is not None and hit[0] is vmas:
        return hit[1]
    index: dict[str, int] = {}
    for i, v in enumerate(vmas):
        index.setdefault(v.name, i)
    if len(_VMA_INDEXES) >= _VMA_INDEXES_KEPT:
        del _VMA_INDEXES[next(iter(_VMA_INDEXES))]
    _VMA_INDEXES[id(vmas)] = (vmas, index)
    return index


@dataclass(frozen=True, slots=True)
class Process:
    """A process and its mm."""

    name: str
    vmas: tuple[Vma, ...] = ()
    has_pinned: bool = False  # MMF_HAS_PINNED: set by the first FOLL_PIN, never cleared

    def vma(self, name: str) -> Vma | None:
        """The mapping called ``name``, or None.

        A few mappings are scanned; more are looked up in an index of this
        ``vmas`` tuple, built once and shared by every Process that carries
        the same tuple (see :func:`_vma_index`), so that a check visiting
        every page of N mappings costs N lookups, not N * N comparisons.
        """
        vmas = self.vmas
        if len(vmas) <= _SCAN_VMAS:
            for v in vmas:
                if v.name == name:
                    return v
            return None
        i = _vma_index(vmas).get(name)
        return None if i is None else vmas[i]


class FolioKind(Enum):
    """What kind of folio: decides granularity of the flag and the COW rules."""

    SMALL = "small"
    THP = "thp"  # PMD-sized: may be mapped by a PMD (folio_test_pmd_mappable)
    MTHP = "mthp"  # a large folio below the PMD size, mapped by PTEs only (6.8+)
    HUGETLB = "hugetlb"
    KSM = "ksm"
    DEVICE = "device-private"


@dataclass(frozen=True, slots=True)
class Page:
    """One struct page: its contents and the flags the model follows."""

    data: str = ZERO_VALUE
    anon_exclusive: bool = False  # PG_anon_exclusive
    hwpoison: bool = False


@dataclass(frozen=True, slots=True)
class Folio:
    """An anonymous folio. ``swapcache`` is the slot of each page while in the swap cache."""

    id: int
    kind: FolioKind
    pages: tuple[Page, ...]
    swapcache: tuple[int, ...] | None = None
    #: PG_partially_mapped (6.12): some page lost its last mapping while others stayed
    #: mapped; history, not derivable from the page tables (see anon_rmap.folio_remove_rmap)
    partially_mapped: bool = False
    #: Per-MM tracking of a large non-hugetlb folio (6.15, 6af8cb80d3a9; the kernel's
    #: ``_mm_id_mapcount`` and ``_mm_ids``): at most two (process, number of its mappings:
    #: a PTE or a PMD counts one) pairs, sorted by process name (the slot a pair sits in
    #: decides nothing). History, kept by :meth:`anonlib.mem.Mem.set` under every scheme and
    #: read only under ``large_reuse=MM_SLOTS``.
    mm_slots: tuple[tuple[str, int], ...] = ()
    #: The "maybe mapped shared" bit of the same tracking
    #: (folio_test_large_maybe_mapped_shared, 6.15).
    maybe_mapped_shared: bool = False

    @property
    def large(self) -> bool:
        """folio_test_large(): more than one page."""
        return len(self.pages) > 1

@dataclass(frozen=True, slots=True)
class Handle:
    """A GUP reference (FOLL_GET or FOLL_PIN) held outside the page tables: a pipe, a DMA buffer.

    ``mapping``/``index`` name the address it was taken at, so pin coherence
    can be checked; ``tracking`` turns False once the owner unmaps that
    address itself (the kernel promises nothing after that).
    """

    name: str
    owner: str
    pin: bool
    write: bool
    longterm: bool
    folio: int
    page: int
    mapping: str
    index: int
    tracking: bool = True
    allowed: frozenset[str] = frozenset()
    #: the pin is recorded by its folio's head page, not the pinned page (the mutant
    #: ``iouring-unpin-head``, scheme point ``pin_record``); the unpin's debug check
    #: (sanity_check_pinned_pages) then looks at the head
    release_head: bool = False


@dataclass(frozen=True, slots=True)
class Slot:
    """A swap slot and the contents written to it."""

    id: int
    data: str


@dataclass(frozen=True, slots=True)
class Config:
    """The ``config`` keys of the scenario language."""

    thp_pages: int = 4
    hugetlb_pages: int = 4
    swap_slots: int = 16
    #: the mTHP sizes enabled for ``mthp`` mappings, in pages, largest first
    #: (hugepages-<size>kB/enabled set to ``madvise``; 16 kB by default)
    mthp_pages: tuple[int, ...] = (4,)

    def pages_for(self, kind: MapKind, npages: int = 0) -> int:
        if kind is MapKind.THP:
            return self.thp_pages
        if kind is MapKind.HUGETLB:
            return self.hugetlb_pages
        if kind is MapKind.MTHP and not npages:
            return self.mthp_pages[0]
        return npages


@dataclass(frozen=True, slots=True)
class World:
    """The whole state at one point in time."""

    config: Config = field(default_factory=Config)
    procs: tuple[Process, ...] = ()
    folios: tuple[Folio, ...] = ()
    handles: tuple[Handle, ...] = ()
    slots: tuple[Slot, ...] = ()
    next_id: int = 1  # next folio or slot number to hand out (not part of the canonical form)
    copies: int = 0  # ghost: page copies made so far (COW, unshare, early COW at fork)

    def proc(self, name: str) -> Process | None:
        for p in self.procs:
            if p.name == name:
                return p
        return None

    def folio(self, fid: int) -> Folio | None:
        for f in self.folios:
            if f.id == fid:
                return f
        return None

    def handle(self, name: str) -> Handle | None:
        for h in self.handles:
            if h.name == name:
                return h
        return None
