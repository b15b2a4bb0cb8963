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
  (the model backs off or refuses there), except ``split-folio`` in an
  ``mthp`` mapping, offered once per large folio at the lowest page that maps it;
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

from collections.abc import Callable
from dataclasses import dataclass, field

from ..ops import (
    STATEMENTS,
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
from ..state import ZERO_FOLIO, EntryKind, FolioKind, Handle, Process, Vma, World

PROC_NAMES = ("P", "Q", "R", "S", "T", "U", "V", "W")
HANDLE_NAMES = ("H", "J", "K", "L", "M", "N", "O", "X", "Y", "Z")

#: Operation families, the unit of ``--ops`` (and the rows' first word in the coverage table):
#: each operation class names its own (:attr:`anonlib.ops.Operation.families`).
PROCESS_FAMILIES = STATEMENTS.families("process")
HANDLE_FAMILIES = STATEMENTS.families("handle")
KERNEL_FAMILIES = STATEMENTS.families("kernel")
FAMILIES = STATEMENTS.families()


def groups() -> dict[str, tuple[str, ...]]:
    """The ``--ops`` groups, read from the registry now (a test may add a statement)."""
    return {
        "all": STATEMENTS.families(),
        "process": STATEMENTS.families("process"),
        "gup": ("pin-ro", "pin-rw", "get-ro", "get-rw"),
        "pin": ("pin-ro", "pin-rw"),
        "get": ("get-ro", "get-rw"),
        "handle": STATEMENTS.families("handle"),
        "kernel": STATEMENTS.families("kernel"),
    }


GROUPS: dict[str, tuple[str, ...]] = groups()
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
    families, grouped = STATEMENTS.families(), groups()
    words = [w.strip() for w in spec.split(",") if w.strip()]
    if words and all(w.startswith("-") for w in words):
        chosen = set(families)
    for w in words:
        drop = w.startswith("-")
        name = w[1:] if drop else w
        fams = grouped.get(name, (name,) if name in families else None)
        if fams is None:
            raise ValueError(f"unknown operation family {name!r}; families: "
                             f"{', '.join(families)}; groups: {', '.join(grouped)}")
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


@dataclass
class Here:
    """What the alphabet's rules see: the world, the bounds, and where the generator is."""

    world: World
    scheme: Scheme
    alphabet: Alphabet
    names: Names
    fam: frozenset[str]
    can_gup: bool  # may one more GUP reference be taken?
    values: list[str]  # the values the current process may write
    pages: list[PageRef]  # every page visited so far (KSM pairs them up)


Candidates = list[tuple[str, Op, Names]]
PageRule = Callable[[Here, Vma, PageRef], Candidates]
MappingRule = Callable[[Here, Process, Vma], Candidates]
ProcessRule = Callable[[Here, Process], Candidates]
HandleRule = Callable[[Here, Handle], Candidates]
WorldRule = Callable[[Here], Candidates]


@dataclass
class Rules:
    """The alphabet's rules, by what they range over, each list in the order it is tried.

    :func:`enabled` visits every page of every mapping of every process (page
    rules), then the mapping (mapping rules), then the process (process rules);
    then every reference (handle rules); then the world once (world rules).
    A new statement adds its rule with one of the decorators below.
    """

    page: list[PageRule] = field(default_factory=list)
    mapping: list[MappingRule] = field(default_factory=list)
    process: list[ProcessRule] = field(default_factory=list)
    handle: list[HandleRule] = field(default_factory=list)
    world: list[WorldRule] = field(default_factory=list)


RULES = Rules()


def page_rule(fn: PageRule) -> PageRule:
    """An alphabet rule run for every page of every mapping."""
    RULES.page.append(fn)
    return fn


def mapping_rule(fn: MappingRule) -> MappingRule:
    """An alphabet rule run for every mapping, after its pages."""
    RULES.mapping.append(fn)
    return fn


def process_rule(fn: ProcessRule) -> ProcessRule:
    """An alphabet rule run for every process, after its mappings."""
    RULES.process.append(fn)
    return fn


def handle_rule(fn: HandleRule) -> HandleRule:
    """An alphabet rule run for every GUP reference."""
    RULES.handle.append(fn)
    return fn


def world_rule(fn: WorldRule) -> WorldRule:
    """An alphabet rule run once per world, last."""
    RULES.world.append(fn)
    return fn


def enabled(world: World, scheme: Scheme, alphabet: Alphabet, names: Names
            ) -> list[tuple[str, Op, Names]]:
    """Every operation to try in ``world``: (family, operation, names after), in a fixed order."""
    fam = alphabet.families
    here = Here(world, scheme, alphabet, names, fam,
                can_gup=len(world.handles) < alphabet.handles, values=[], pages=[])
    out: Candidates = []
    for p in world.procs:
        here.values = _values(world, p.name, alphabet.values) if "write" in fam else []
        for v in p.vmas:
            for i in range(v.npages):
                if i in v.holes:
                    continue
                ref = PageRef(p.name, v.name, i)
                here.pages.append(ref)
                for rule in RULES.page:
                    out += rule(here, v, ref)
            for mrule in RULES.mapping:
                out += mrule(here, p, v)
        for prule in RULES.process:
            out += prule(here, p)
    for h in world.handles:
        for hrule in RULES.handle:
            out += hrule(here, h)
    for wrule in RULES.world:
        out += wrule(here)
    return out


# ------------------------------------------------------------------ the rules, in order


@page_rule
def _write(here: Here, v: Vma, ref: PageRef) -> Candidates:
    return [("write", Write(ref, val), here.names) for val in here.values]


@page_rule
def _read(here: Here, v: Vma, ref: PageRef) -> Candidates:
    return [("read", Read(ref), here.names)] if "read" in here.fam else []


@page_rule
def _gup(here: Here, v: Vma, ref: PageRef) -> Candidates:
    if not here.can_gup:
        return []
    names = here.names
    h = names.handle()
    after = Names(names.procs, names.handles + 1)
    out: Candidates = []
    for pin, write, longterm, fast in GUP_VARIANTS:
        family = ("pin-" if pin else "get-") + ("rw" if write else "ro")
        if family in here.fam:
            out.append((family, Gup(ref, h, pin, write, longterm, fast), after))
    return out


@page_rule
def _madvise_page(here: Here, v: Vma, ref: PageRef) -> Candidates:
    if "madvise" not in here.fam or (v.kind is MapKind.HUGETLB and v.npages > 1):
        return []
    return [("madvise", Madvise(ref.proc, ref.mapping, ref.index, adv), here.names)
            for adv in (Advice.DONTNEED, Advice.DONTFORK, Advice.DOFORK)]


@page_rule
def _kernel_page(here: Here, v: Vma, ref: PageRef) -> Candidates:
    out: Candidates = []
    for family, action in _PAGE_KERNEL:
        if family in here.fam and (action is not KernelAction.DEVICE_EXCLUSIVE
                                   or here.scheme.device_exclusive) and not (
                v.kind is MapKind.HUGETLB and action in NOT_FOR_HUGETLB):
            out.append((family, Kernel(action, ref), here.names))
    return out


@mapping_rule
def _madvise_mapping(here: Here, p: Process, v: Vma) -> Candidates:
    if "madvise" not in here.fam:
        return []
    out: Candidates = []
    if v.npages > 1:
        out += [("madvise", Madvise(p.name, v.name, None, adv), here.names)
                for adv in (Advice.DONTNEED, Advice.DONTFORK, Advice.DOFORK)]
    if v.kind is MapKind.THP:
        out.append(("madvise", Madvise(p.name, v.name, None, Advice.COLLAPSE), here.names))
    return out


@mapping_rule
def _split(here: Here, p: Process, v: Vma) -> Candidates:
    if v.kind is MapKind.MTHP and "split-folio" in here.fam:
        # each large folio once, at the lowest page that maps it (an mthp mapping may
        # hold several, and a zapped page 0 does not end the folio)
        seen: set[int] = set()
        out: Candidates = []
        for i, e in enumerate(v.ptes):
            if (e is not None and e.kind is EntryKind.PRESENT and e.folio not in seen
                    and e.folio != ZERO_FOLIO and i not in v.holes):
                f = here.world.folio(e.folio)
                if f is not None and f.large:
                    seen.add(e.folio)
                    out.append(("split-folio", Kernel(KernelAction.SPLIT_FOLIO,
                                                      PageRef(p.name, v.name, i)), here.names))
        return out
    if v.kind is not MapKind.THP:
        return []
    whole = PageRef(p.name, v.name, 0)
    return [(a.value, Kernel(a, whole), here.names)
            for a in (KernelAction.SPLIT_PMD, KernelAction.SPLIT_FOLIO) if a.value in here.fam]


@mapping_rule
def _mprotect(here: Here, p: Process, v: Vma) -> Candidates:
    if "mprotect" not in here.fam:
        return []
    return [("mprotect", Mprotect(p.name, v.name, False), here.names),
            ("mprotect", Mprotect(p.name, v.name, True), here.names)]


@mapping_rule
def _munmap(here: Here, p: Process, v: Vma) -> Candidates:
    return [("munmap", Munmap(p.name, v.name), here.names)] if "munmap" in here.fam else []


@process_rule
def _clear_softdirty(here: Here, p: Process) -> Candidates:
    if "clear-softdirty" in here.fam and any(v.kind is not MapKind.HUGETLB for v in p.vmas):
        return [("clear-softdirty", ClearSoftDirty(p.name), here.names)]
    return []


@process_rule
def _fork(here: Here, p: Process) -> Candidates:
    names = here.names
    if "fork" in here.fam and len(here.world.procs) < here.alphabet.processes:
        return [("fork", Fork(p.name, names.proc()), Names(names.procs + 1, names.handles))]
    return []


@process_rule
def _exit(here: Here, p: Process) -> Candidates:
    return [("exit", Exit(p.name), here.names)] if "exit" in here.fam else []


@handle_rule
def _handle_read(here: Here, h: Handle) -> Candidates:
    return [("handle-read", HandleRead(h.name), here.names)] if "handle-read" in here.fam else []


@handle_rule
def _handle_write(here: Here, h: Handle) -> Candidates:
    if not (h.write and "handle-write" in here.fam):
        return []
    return [("handle-write", HandleWrite(h.name, val), here.names)
            for val in _values(here.world, h.name, here.alphabet.values)]


@handle_rule
def _release(here: Here, h: Handle) -> Candidates:
    family = "unpin" if h.pin else "put"
    return [(family, Release(h.name, h.pin), here.names)] if family in here.fam else []


@world_rule
def _ksm(here: Here) -> Candidates:
    if "ksm" not in here.fam:
        return []
    world = here.world
    hugetlb = {v.name for p in world.procs for v in p.vmas if v.kind is MapKind.HUGETLB}
    pages = [r for r in here.pages if r.mapping not in hugetlb]
    return [("ksm", Ksm(a, b), here.names) for a in pages for b in pages if a != b]


# ------------------------------------------------------------------ coverage labels
ENTRY_LABELS = ("none", "zero", "pte", "pte-thp", "pte-mthp", "pmd", "hugetlb", "ksm", "swap",
                "migration", "dev-private", "dev-excl", "hwpoison")


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
    if f is not None and f.kind is FolioKind.MTHP:
        return "pte-mthp"
    return "pte"


def op_label(op: Op) -> str:
    """The coverage table's row: the statement without names and values (``pin ro longterm``)."""
    return op.label()


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
    scope = op.scope()
    if scope.pages:
        return [get((r.proc, r.mapping, r.index), "none") for r in scope.pages]
    if scope.mapping is not None:
        return _mapping_entries(world, *scope.mapping, labels)
    if scope.handle is not None:
        h = world.handle(scope.handle)
        if h is None:
            return ["none"]
        return [get((h.owner, h.mapping, h.index), "none")]
    proc = scope.process or ""
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
