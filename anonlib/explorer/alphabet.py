"""The explorer's operation alphabet: every operation enabled in a World, and its label.

:func:`enabled` lists, for one world, the operations the explorer tries:
every process operation on every page of every mapping it has, every GUP
variant, every operation on every reference, and every ``kernel``
operation. It only names operations; whether one does anything is decided
by :func:`anonlib.model.apply` (an operation the model refuses is not a
transition; one the kernel backs off from is a ``skipped`` transition that
keeps the state). The generator leaves out only what is refused or inert
by construction, each case named where it happens:

* pages a fork child does not have (``holes``: MADV_DONTFORK in the parent);
* ``split-pmd`` / ``split-folio`` / ``madvise collapse`` outside THP mappings
  (the model backs off or refuses there);
* ``device-exclusive`` under schemes whose kernel lacks it (refused as invalid);
* KSM, swap-out, swap-cache drop and device migration of hugetlb pages: the
  kernel does none of them to hugetlb (the model backs off every time, which
  a test checks over a whole hugetlb world);
* madvise on one page of a hugetlb mapping of several pages: the kernel
  takes only whole huge pages (EINVAL, or MADV_DONTNEED rounds down to
  nothing), so the state never changes, which the same test checks; the
  whole-mapping madvise is offered;
* ``clear-softdirty`` in a process whose mappings are all hugetlb (or that
  has none): the soft-dirty walk skips hugetlb (the same test checks it
  never changes a state);
* a new GUP reference beyond the ``handles`` bound, a fork beyond ``processes``.

Names are fresh along a path (``P``, ``Q``, ``R``... for processes, ``H``,
``J``, ``K``... for references), because the scenario language does not let
a name be reused after its process exits or its GUP failed. Values are small
and say who wrote them: process ``P`` writes ``P1``, ``P2``...; a device
behind reference ``H`` writes ``H1``, ``H2``... Only one value that appears
nowhere in the world is offered per writer: all absent values are
interchangeable (the canonical form renames values), so offering more would
only repeat the same states.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ops import (
    Advice,
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
    Mprotect,
    Munmap,
    Op,
    PageRef,
    Read,
    Release,
    Write,
)
from ..schemes import Scheme
from ..state import ZERO_FOLIO, EntryKind, FolioKind, World

PROC_NAMES = ("P", "Q", "R", "S", "T", "U", "V", "W")
HANDLE_NAMES = ("H", "J", "K", "L", "M", "N", "O", "X", "Y", "Z")

#: Operation families, the unit of ``--ops`` (and the rows' first word in the coverage table).
PROCESS_FAMILIES = ("write", "read", "fork", "pin-ro", "pin-rw", "get-ro", "get-rw", "mprotect",
                    "madvise", "clear-softdirty", "munmap", "exit")
HANDLE_FAMILIES = ("handle-read", "handle-write", "unpin", "put")
KERNEL_FAMILIES = ("swapout", "swapcache-drop", "migrate", "migrate-begin", "migrate-end",
                   "split-pmd", "split-folio", "device-private", "device-private-end",
                   "device-exclusive", "poison", "ksm")
FAMILIES = PROCESS_FAMILIES + HANDLE_FAMILIES + KERNEL_FAMILIES
GROUPS: dict[str, tuple[str, ...]] = {
    "all": FAMILIES,
    "process": PROCESS_FAMILIES,
    "gup": ("pin-ro", "pin-rw", "get-ro", "get-rw"),
    "pin": ("pin-ro", "pin-rw"),
    "get": ("get-ro", "get-rw"),
    "handle": HANDLE_FAMILIES,
    "kernel": KERNEL_FAMILIES,
}
_PAGE_KERNEL = (
    ("swapout", KernelAction.SWAPOUT),
    ("swapcache-drop", KernelAction.SWAPCACHE_DROP),
    ("migrate", KernelAction.MIGRATE),
    ("migrate-begin", KernelAction.MIGRATE_BEGIN),
    ("migrate-end", KernelAction.MIGRATE_END),
    ("device-private", KernelAction.DEVICE_PRIVATE),
    ("device-private-end", KernelAction.DEVICE_PRIVATE_END),
    ("device-exclusive", KernelAction.DEVICE_EXCLUSIVE),
    ("poison", KernelAction.POISON),
)
#: Kernel actions the kernel never takes on hugetlb pages (see the module doc).
NOT_FOR_HUGETLB = frozenset({KernelAction.SWAPOUT, KernelAction.SWAPCACHE_DROP,
                             KernelAction.DEVICE_PRIVATE, KernelAction.DEVICE_PRIVATE_END,
                             KernelAction.DEVICE_EXCLUSIVE})
#: (pin, write, longterm, fast): every GUP variant the scenario language has.
GUP_VARIANTS = tuple(
    (pin, write, longterm, fast)
    for pin in (True, False)
    for write in (False, True)
    for longterm in ((False, True) if pin else (False,))
    for fast in (False, True)
)


def parse_ops(spec: str) -> frozenset[str]:
    """``--ops`` text to a set of families: names or groups, ``-name`` removes (``all,-poison``).

    Raises ValueError naming the unknown word and the known ones.
    """
    chosen: set[str] = set()
    words = [w.strip() for w in spec.split(",") if w.strip()]
    if words and all(w.startswith("-") for w in words):
        chosen = set(FAMILIES)
    for w in words:
        drop = w.startswith("-")
        name = w[1:] if drop else w
        fams = GROUPS.get(name, (name,) if name in FAMILIES else None)
        if fams is None:
            raise ValueError(f"unknown operation family {name!r}; families: "
                             f"{', '.join(FAMILIES)}; groups: {', '.join(GROUPS)}")
        if drop:
            chosen -= set(fams)
        else:
            chosen |= set(fams)
    return frozenset(chosen)


@dataclass(frozen=True)
class Alphabet:
    """What the explorer may do: operation families and the bounds on names and values."""

    families: frozenset[str] = frozenset(FAMILIES)
    processes: int = 2  # live processes at most (fork creates the others)
    handles: int = 1  # live GUP references at most
    values: int = 2  # distinct values per writer


@dataclass(frozen=True)
class Names:
    """How many process and reference names a path has used (names are never reused)."""

    procs: int = 1
    handles: int = 0

    def proc(self) -> str:
        i = self.procs
        return PROC_NAMES[i] if i < len(PROC_NAMES) else f"P{i}"

    def handle(self) -> str:
        i = self.handles
        return HANDLE_NAMES[i] if i < len(HANDLE_NAMES) else f"H{i}"


def _values(world: World, writer: str, k: int) -> list[str]:
    """The writer's values present in the world, plus its first absent one (if any is left)."""
    present: set[str] = set()
    for f in world.folios:
        for p in f.pages:
            present.add(p.data)
    for s in world.slots:
        present.add(s.data)
    for proc in world.procs:
        for v in proc.vmas:
            for sh in v.shadow:
                present |= sh
    for h in world.handles:
        present |= h.allowed
    out = []
    for i in range(1, k + 1):
        val = f"{writer}{i}"
        if val in present:
            out.append(val)
        else:
            out.append(val)
            break
    return out


def enabled(world: World, scheme: Scheme, alphabet: Alphabet, names: Names
            ) -> list[tuple[str, Op, Names]]:
    """Every operation to try in ``world``: (family, operation, names after), in a fixed order."""
    fam = alphabet.families
    out: list[tuple[str, Op, Names]] = []
    live = len(world.procs)
    can_gup = len(world.handles) < alphabet.handles
    pages: list[PageRef] = []
    hugetlb = {v.name for p in world.procs for v in p.vmas if v.kind is MapKind.HUGETLB}
    for p in world.procs:
        vals = _values(world, p.name, alphabet.values) if "write" in fam else []
        for v in p.vmas:
            for i in range(v.npages):
                if i in v.holes:
                    continue
                ref = PageRef(p.name, v.name, i)
                pages.append(ref)
                for val in vals:
                    out.append(("write", Write(ref, val), names))
                if "read" in fam:
                    out.append(("read", Read(ref), names))
                if can_gup:
                    h = names.handle()
                    after = Names(names.procs, names.handles + 1)
                    for pin, write, longterm, fast in GUP_VARIANTS:
                        family = ("pin-" if pin else "get-") + ("rw" if write else "ro")
                        if family in fam:
                            out.append((family, Gup(ref, h, pin, write, longterm, fast), after))
                if "madvise" in fam and not (v.kind is MapKind.HUGETLB and v.npages > 1):
                    for adv in (Advice.DONTNEED, Advice.DONTFORK, Advice.DOFORK):
                        out.append(("madvise", Madvise(p.name, v.name, i, adv), names))
                for family, action in _PAGE_KERNEL:
                    if family in fam and (action is not KernelAction.DEVICE_EXCLUSIVE
                                          or scheme.device_exclusive) and not (
                            v.kind is MapKind.HUGETLB and action in NOT_FOR_HUGETLB):
                        out.append((family, Kernel(action, ref), names))
            whole = PageRef(p.name, v.name, 0)
            if "madvise" in fam:
                if v.npages > 1:
                    for adv in (Advice.DONTNEED, Advice.DONTFORK, Advice.DOFORK):
                        out.append(("madvise", Madvise(p.name, v.name, None, adv), names))
                if v.kind is MapKind.THP:
                    out.append(("madvise", Madvise(p.name, v.name, None, Advice.COLLAPSE),
                                names))
            if v.kind is MapKind.THP:
                if "split-pmd" in fam:
                    out.append(("split-pmd", Kernel(KernelAction.SPLIT_PMD, whole), names))
                if "split-folio" in fam:
                    out.append(("split-folio", Kernel(KernelAction.SPLIT_FOLIO, whole), names))
            if "mprotect" in fam:
                out.append(("mprotect", Mprotect(p.name, v.name, False), names))
                out.append(("mprotect", Mprotect(p.name, v.name, True), names))
            if "munmap" in fam:
                out.append(("munmap", Munmap(p.name, v.name), names))
        if "clear-softdirty" in fam and any(v.kind is not MapKind.HUGETLB for v in p.vmas):
            out.append(("clear-softdirty", ClearSoftDirty(p.name), names))
        if "fork" in fam and live < alphabet.processes:
            out.append(("fork", Fork(p.name, names.proc()),
                        Names(names.procs + 1, names.handles)))
        if "exit" in fam:
            out.append(("exit", Exit(p.name), names))
    for h in world.handles:
        if "handle-read" in fam:
            out.append(("handle-read", HandleRead(h.name), names))
        if h.write and "handle-write" in fam:
            for val in _values(world, h.name, alphabet.values):
                out.append(("handle-write", HandleWrite(h.name, val), names))
        family = "unpin" if h.pin else "put"
        if family in fam:
            out.append((family, Release(h.name, h.pin), names))
    if "ksm" in fam:
        pages = [r for r in pages if r.mapping not in hugetlb]
        for a in pages:
            for b in pages:
                if a != b:
                    out.append(("ksm", Ksm(a, b), names))
    return out


# ------------------------------------------------------------------ coverage labels
ENTRY_LABELS = ("none", "zero", "pte", "pte-thp", "pmd", "hugetlb", "ksm", "swap", "migration",
                "dev-private", "dev-excl", "hwpoison")


def entry_label(world: World, proc: str, mapping: str, index: int) -> str:
    """What kind of entry maps a virtual page: a column of the coverage table."""
    p = world.proc(proc)
    v = p.vma(mapping) if p is not None else None
    if v is None:
        return "none"
    e = v.entry(index)
    if e is None:
        return "none"
    k = e.kind
    if k is EntryKind.SWAP:
        return "swap"
    if k is EntryKind.MIGRATION:
        return "migration"
    if k is EntryKind.DEVICE_PRIVATE:
        return "dev-private"
    if k is EntryKind.DEVICE_EXCLUSIVE:
        return "dev-excl"
    if k is EntryKind.HWPOISON:
        return "hwpoison"
    if e.folio == ZERO_FOLIO:
        return "zero"
    if v.kind is MapKind.HUGETLB:
        return "hugetlb"
    if v.huge is not None:
        return "pmd"
    f = world.folio(e.folio)
    if f is not None and f.kind is FolioKind.KSM:
        return "ksm"
    if f is not None and f.kind is FolioKind.THP:
        return "pte-thp"
    return "pte"


def op_label(op: Op) -> str:
    """The coverage table's row: the statement without names and values (``pin ro longterm``)."""
    if isinstance(op, Write):
        return "write"
    if isinstance(op, Read):
        return "read"
    if isinstance(op, Fork):
        return "fork"
    if isinstance(op, Gup):
        words = ["pin" if op.pin else "get", "rw" if op.write else "ro"]
        if op.longterm:
            words.append("longterm")
        if op.fast:
            words.append("fast")
        return " ".join(words)
    if isinstance(op, HandleRead):
        return "H read"
    if isinstance(op, HandleWrite):
        return "H write"
    if isinstance(op, Release):
        return "unpin" if op.pin else "put"
    if isinstance(op, Mprotect):
        return f"mprotect {'rw' if op.write else 'ro'}"
    if isinstance(op, Madvise):
        return f"madvise {op.advice.value}" + (" (whole)" if op.index is None and
                                                op.advice is not Advice.COLLAPSE else "")
    if isinstance(op, ClearSoftDirty):
        return "clear-softdirty"
    if isinstance(op, Munmap):
        return "munmap"
    if isinstance(op, Exit):
        return "exit"
    if isinstance(op, Kernel):
        return f"kernel {op.action.value}"
    if isinstance(op, Ksm):
        return "kernel ksm"
    raise TypeError(f"not an explorer operation: {op!r}")  # pragma: no cover


def entry_labels(world: World) -> dict[tuple[str, str, int], str]:
    """:func:`entry_label` of every virtual page of every mapping, by (process, mapping, page).

    The explorer works them out once per state: every operation it tries there
    asks for one or more of them.
    """
    return {(p.name, v.name, i): entry_label(world, p.name, v.name, i)
            for p in world.procs for v in p.vmas for i in range(v.npages)}


def op_entries(world: World, op: Op, labels: dict[tuple[str, str, int], str] | None = None
               ) -> list[str]:
    """The entry kinds an operation acts on in ``world`` (before it): the coverage columns.

    A page operation: the entry at its page. A reference operation: the entry
    at the address the reference was taken at. fork, exit, clear-softdirty: every
    page of the process; mprotect, munmap, whole-mapping madvise and splits:
    every page of the mapping; KSM: both pages. ``labels``: :func:`entry_labels`
    of ``world``, if the caller has them.
    """
    if labels is None:
        labels = entry_labels(world)
    get = labels.get
    if isinstance(op, (Write, Read, Gup)):
        r = op.page
        return [get((r.proc, r.mapping, r.index), "none")]
    if isinstance(op, Kernel):
        r = op.page
        if op.action in (KernelAction.SPLIT_PMD, KernelAction.SPLIT_FOLIO):
            return _mapping_entries(world, r.proc, r.mapping, labels)
        return [get((r.proc, r.mapping, r.index), "none")]
    if isinstance(op, Ksm):
        return [get((r.proc, r.mapping, r.index), "none") for r in (op.first, op.second)]
    if isinstance(op, (HandleRead, HandleWrite, Release)):
        h = world.handle(op.handle)
        if h is None:
            return ["none"]
        return [get((h.owner, h.mapping, h.index), "none")]
    if isinstance(op, Madvise):
        if op.index is not None:
            return [get((op.proc, op.mapping, op.index), "none")]
        return _mapping_entries(world, op.proc, op.mapping, labels)
    if isinstance(op, (Mprotect, Munmap)):
        return _mapping_entries(world, op.proc, op.mapping, labels)
    proc = op.parent if isinstance(op, Fork) else op.proc  # type: ignore[union-attr]
    p = world.proc(proc)
    out: list[str] = []
    for v in p.vmas if p is not None else ():
        out += _mapping_entries(world, proc, v.name, labels)
    return out or ["none"]


def _mapping_entries(world: World, proc: str, mapping: str,
                     labels: dict[tuple[str, str, int], str]) -> list[str]:
    p = world.proc(proc)
    v = p.vma(mapping) if p is not None else None
    if v is None:
        return ["none"]
    return sorted({labels[(proc, mapping, i)] for i in range(v.npages)
                   if i not in v.holes} or {"none"})
