"""Canonical form of a World for the explorer: symmetric states collapse to one key.

Two worlds get the same key exactly when one turns into the other by
renaming processes, GUP references, folio ids, swap slots and written
values, and by permuting the tail pages of THPs. Names carry no meaning for
the model: it compares values only for equality (KSM) and treats the zero
value ``0`` specially, which is kept. Mapping names are kept (they are fixed
by the explored world's setup).

Tail pages: every THP mapping has ``thp_pages`` pages, and the model treats
pages 1..n-1 alike: only the head page (0) is special (the PMD maps it; a
PMD-mapped THP keeps its flag there; ``head-only`` keeps it nowhere else).
So a permutation ``sigma`` of the tail indices, applied at once to the PTEs
(and per-page sets) of every THP mapping, the pages (and swap-cache slots)
of every THP folio, and every reference to them (an entry's page, a GUP
reference's page and address), gives a world that behaves the same up to
the same permutation. The key is the smallest over those permutations
(``(n-1)!``: 6 for four pages). A test holds the model to this: an
exhaustive search with and without it reaches the same classes of states.
Not under ``head-only``, where the one bit makes the first tail page that
reclaim unmaps special (see :func:`key_for`).

Left out of the key: the ghost counters ``World.copies`` and
``World.next_id``, which do not influence any transition. Kept: the ghost
``Vma.shadow`` and ``Handle.allowed`` sets, which decide isolation (INV-12).

How: processes are ordered by a signature that does not depend on names
(their encoding on their own); processes with equal signatures are tried in
every order and the smallest encoding wins. Within that order, folios,
slots and values are numbered by first appearance; references are ordered by
what they point at. Where that order still has ties the key may keep two
symmetric states apart, which costs time, never soundness.

:data:`ENCODED_FIELDS` lists the fields the key covers; a test fails when a
dataclass of :mod:`anonlib.state` gains a field the key does not know about.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations, product
from typing import TypeAlias, TypeVar

from ..ops import MapKind
from ..schemes import LargeReuse, Scheme
from ..state import (
    ZERO_FOLIO,
    ZERO_VALUE,
    Entry,
    FolioKind,
    Handle,
    Process,
    Vma,
    World,
    replace,
)

#: Fields of the state's dataclasses the key encodes (names are renamed, not dropped).
ENCODED_FIELDS: dict[str, tuple[str, ...]] = {
    "World": ("config", "procs", "folios", "handles", "slots"),
    "Process": ("name", "vmas", "has_pinned"),
    "Vma": ("name", "kind", "npages", "writable", "softdirty_tracking", "dontfork", "holes",
            "huge", "ptes", "shadow"),
    "Entry": ("kind", "folio", "page", "writable", "exclusive", "soft_dirty", "slot"),
    "Folio": ("id", "kind", "pages", "swapcache", "partially_mapped", "mm_slots",
              "maybe_mapped_shared"),
    "Page": ("data", "anon_exclusive", "hwpoison"),
    "Handle": ("name", "owner", "pin", "write", "longterm", "folio", "page", "mapping", "index",
               "tracking", "allowed", "release_head"),
    "Slot": ("id", "data"),
}
#: Fields deliberately left out of the key (ghost counters that no transition reads).
IGNORED_FIELDS: dict[str, tuple[str, ...]] = {"World": ("next_id", "copies")}

#: A key: nested tuples of ints, strings and booleans (or, for ``raw``, the state itself).
Key: TypeAlias = tuple[object, ...]
#: An encoding made by :class:`_Namer` (nested tuples; compared, hashed, never read back).
Enc: TypeAlias = tuple[object, ...]
_T = TypeVar("_T")


class _Namer:
    """Numbers folios, slots and values by first appearance."""

    __slots__ = ("folios", "slots", "values", "perm")

    def __init__(self, values: dict[str, int] | None = None,
                 perm: tuple[int, ...] | None = None) -> None:
        self.folios: dict[int, int] = {ZERO_FOLIO: 0}
        self.slots: dict[int, int] = {}
        self.values: dict[str, int] = values if values is not None else {ZERO_VALUE: 0}
        self.perm = perm  # tail-page permutation (old index -> new), None: identity

    def folio(self, fid: int) -> int:
        n = self.folios.get(fid)
        if n is None:
            n = self.folios[fid] = len(self.folios)
        return n

    def slot(self, sid: int) -> int:
        if sid < 0:
            return -1
        n = self.slots.get(sid)
        if n is None:
            n = self.slots[sid] = len(self.slots)
        return n

    def value(self, v: str) -> int:
        n = self.values.get(v)
        if n is None:
            n = self.values[v] = len(self.values)
        return n

    def vset(self, vs: frozenset[str]) -> tuple[int, ...]:
        if len(vs) == 1:
            for v in vs:
                return (self.value(v),)
        return tuple(sorted([self.value(v) for v in sorted(vs)]))

    def entry(self, e: Entry | None, perm: tuple[int, ...] | None = None) -> Enc:
        if e is None:
            return ()
        return (e.kind._value_, self.folio(e.folio), e.page if perm is None else perm[e.page],
                e.writable, e.exclusive, e.soft_dirty, self.slot(e.slot))

    def vma(self, v: Vma) -> Enc:
        entry, vset = self.entry, self.vset
        perm = self.perm if v.kind in _TAIL_MAPS else None
        ptes, shadow, dontfork, holes = v.ptes, v.shadow, v.dontfork, v.holes
        if perm is not None:
            ptes, shadow = _permuted(ptes, perm), _permuted(shadow, perm)
            dontfork = frozenset([perm[i] for i in dontfork])
            holes = frozenset([perm[i] for i in holes])
        return (v.name, v.kind._value_, v.npages, v.writable, v.softdirty_tracking,
                tuple(sorted(dontfork)) if dontfork else (),
                tuple(sorted(holes)) if holes else (), entry(v.huge),
                tuple([entry(e, perm) for e in ptes]), tuple([vset(s) for s in shadow]))

    def process(self, p: Process) -> Enc:
        return (p.has_pinned, tuple([self.vma(v) for v in p.vmas]))


def _permuted(items: tuple[_T, ...], perm: tuple[int, ...]) -> tuple[_T, ...]:
    """``items`` with item ``i`` moved to position ``perm[i]``."""
    out = list(items)
    for i, x in enumerate(items):
        out[perm[i]] = x
    return tuple(out)


#: Local encodings of Process objects ((id, tail permutation) -> (process, encoding, folios,
#: slots, values)). Processes are immutable and shared between a world and its successors,
#: so many recur, mostly soon: a small cache hits as often as a large one, and each entry
#: keeps its process alive (thp:4 to depth 4: 20,000 entries in 0.2 GB less than 200,000,
#: in the same time; benchmarks/results/explore-log.md).
_LOCAL: dict[tuple[int, tuple[int, ...] | None],
             tuple[Process, Enc, tuple[int, ...], tuple[int, ...], tuple[str, ...]]] = {}
_LOCAL_MAX = 50_000


def _local(p: Process, perm: tuple[int, ...] | None = None
           ) -> tuple[Process, Enc, tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    """A process encoded on its own (tail pages permuted), with the ids it numbered, in order."""
    hit = _LOCAL.get((id(p), perm))
    if hit is not None and hit[0] is p:
        return hit
    n = _Namer({}, perm)
    enc = n.process(p)
    del n.folios[ZERO_FOLIO]
    out = (p, enc, tuple(n.folios), tuple(n.slots), tuple(n.values))
    if len(_LOCAL) >= _LOCAL_MAX:
        _LOCAL.clear()
    _LOCAL[(id(p), perm)] = out
    return out


def _encode(world: World, order: tuple[Process, ...], values: dict[str, int] | None = None,
            handle_order: list[str] | None = None, perm: tuple[int, ...] | None = None,
            mm: bool = False) -> tuple[Key, list[str]]:
    """The key for one process order (and tail permutation), and the reference names in order.

    Each process is encoded on its own (with local numbers, cached); ``links``
    then maps every process's local numbers to the world's, which ties the
    processes together again. Together they determine the world up to renaming.
    ``mm``: encode the per-MM tracking of large folios (see :func:`key_for`).
    """
    n = _Namer(values, perm)
    procs = []
    links = []
    for p in order:
        _p, enc, fids, sids, vals = _local(p, perm)
        procs.append(enc)
        links.append((tuple([n.folio(f) for f in fids]), tuple([n.slot(x) for x in sids]),
                      tuple([n.value(v) for v in vals])))
    index = {p.name: i for i, p in enumerate(order)}
    big = 1 << 30
    thp = tail_folios(world) if perm else set()
    tails = perm or ()  # indexed only for a folio in thp, so only when there is a perm

    def where(h: Handle) -> tuple[int, int]:
        """The reference's address and page (tail pages permuted).

        Once its owner has no mapping of that name (munmap, exit) the address
        is dead: nothing maps there again (the explorer has no mmap), and the
        model reads it only while the mapping exists. It is then left out (-1).
        """
        owner = next((p for p in order if p.name == h.owner), None)
        v = owner.vma(h.mapping) if owner is not None else None
        if v is None:
            at = -1
        elif perm is not None and v.kind in _TAIL_MAPS:
            at = perm[h.index]
        else:
            at = h.index
        return at, tails[h.page] if h.folio in thp else h.page

    places = {h.name: where(h) for h in world.handles}

    def hkey(h: Handle) -> Enc:
        at, page = places[h.name]
        return (index.get(h.owner, -1), h.mapping, at, h.pin, h.write,
                h.longterm, h.tracking, page, n.folios.get(h.folio, big),
                tuple(sorted(n.values.get(v, big) for v in h.allowed)))
    if handle_order is None:
        ordered = sorted(world.handles, key=hkey) if len(world.handles) > 1 else world.handles
    else:
        rank = {name: i for i, name in enumerate(handle_order)}
        ordered = sorted(world.handles, key=lambda h: (rank.get(h.name, big), hkey(h)))
    handles = tuple(
        (index.get(h.owner, -1), h.mapping, places[h.name][0], h.pin, h.write, h.longterm,
         h.tracking, n.folio(h.folio), places[h.name][1], n.vset(h.allowed), h.release_head)
        for h in ordered
    )
    # folios in the order first reached; then any nothing reaches (in id order)
    nf = n.folios
    reached = sorted([f for f in world.folios if f.id in nf], key=lambda f: nf[f.id])
    rest = [f for f in world.folios if f.id not in nf]
    folios = []
    value, slot = n.value, n.slot
    for f in reached + rest:
        pages, cache = f.pages, f.swapcache
        if perm is not None and f.kind in _TAIL_FOLIOS:
            pages = _permuted(pages, perm)
            cache = None if cache is None else _permuted(cache, perm)
        enc = (n.folio(f.id), f.kind._value_,
               tuple([(value(p.data), p.anon_exclusive, p.hwpoison) for p in pages]),
               () if cache is None else (-1,) + tuple([slot(s) for s in cache]),
               f.partially_mapped)
        if mm and (f.mm_slots or f.maybe_mapped_shared):
            # a set of (process in this order, count): which slot a pair sits in decides
            # nothing (taking either free slot sets the bit iff the folio was mapped)
            enc += (tuple(sorted([(index.get(name, -1), count) for name, count in f.mm_slots])),
                    f.maybe_mapped_shared)
        folios.append(enc)
    slots = sorted(world.slots, key=lambda s: (n.slots.get(s.id, big), s.id))
    key = (tuple(procs), tuple(links), handles, tuple(folios),
           tuple([(slot(s.id), value(s.data)) for s in slots]))
    return key, [h.name for h in ordered]


def _orders(world: World, perm: tuple[int, ...] | None = None) -> list[tuple[Process, ...]]:
    """Process orders to try: sorted by local encoding, every order within groups of equal ones."""
    procs = world.procs
    if len(procs) <= 1:
        return [procs]
    sig = {p.name: _local(p, perm)[1] for p in procs}
    ranked = sorted(procs, key=lambda p: sig[p.name])
    groups: list[list[Process]] = []
    for p in ranked:
        if groups and sig[groups[-1][0].name] == sig[p.name]:
            groups[-1].append(p)
        else:
            groups.append([p])
    if all(len(g) == 1 for g in groups):
        return [tuple(ranked)]
    choices = [list(permutations(g)) for g in groups]
    return [tuple(p for part in combo for p in part) for combo in product(*choices)]


#: Mapping and folio kinds whose tail pages the key may permute.
_TAIL_MAPS = frozenset({MapKind.THP, MapKind.MTHP})
_TAIL_FOLIOS = frozenset({FolioKind.THP, FolioKind.MTHP})


def tail_folios(world: World) -> set[int]:
    """The folios whose pages the tail permutation moves: every THP or mTHP folio, and the
    zero folio (a GUP reference on the huge zero page names one of its pages, which moves
    with the address it was taken at; every other reference to it names page 0)."""
    return {ZERO_FOLIO} | {f.id for f in world.folios if f.kind in _TAIL_FOLIOS}


def tail_pages(world: World) -> int:
    """How many pages the world's large folios have, if their tails may be permuted; else 0.

    A world with THP mappings or folios, or a GUP reference to a page of the huge zero
    page (which a THP mapping faulted in): ``thp_pages``. A world with mTHP
    mappings or folios instead: the one enabled mTHP size, when every ``mthp``
    mapping is exactly one such block and every mTHP folio has that size (as in
    the explorer's ``mthp:N`` world); a page index then always names the same
    position of the mapping. A world with both, or an mTHP world of other
    shapes: 0 (no permutation: correct, only slower).
    """
    maps = {v.kind.value for p in world.procs for v in p.vmas if v.kind in _TAIL_MAPS}
    kinds = maps | {f.kind.value for f in world.folios if f.kind in _TAIL_FOLIOS}
    if any(h.folio == ZERO_FOLIO and h.page for h in world.handles):
        kinds.add("thp")  # a reference to a page of the huge zero page: a THP's tail order
    if kinds == {"thp"}:
        return world.config.thp_pages
    if kinds != {"mthp"} or len(world.config.mthp_pages) != 1:
        return 0
    n = world.config.mthp_pages[0]
    if any(v.kind is MapKind.MTHP and v.npages != n for p in world.procs for v in p.vmas):
        return 0
    if any(f.kind is FolioKind.MTHP and len(f.pages) != n for f in world.folios):
        return 0
    return n


def _tail_sig(world: World, i: int) -> Enc:
    """What tail page ``i`` looks like, without names: the same after renaming and permuting.

    Only tails with equal signatures need to be tried in every order; the
    rest go in signature order. Leaving a detail out costs time, never soundness.
    """
    entries = []
    for p in world.procs:
        for v in p.vmas:
            if v.kind in _TAIL_MAPS:
                e = v.ptes[i] if i < len(v.ptes) else None
                entries.append((v.name, i in v.dontfork, i in v.holes, () if e is None else (
                    e.kind._value_, e.writable, e.exclusive, e.soft_dirty, e.page == i,
                    e.folio == ZERO_FOLIO, e.slot >= 0)))
    thp = [f for f in world.folios if f.kind in _TAIL_FOLIOS]
    pages = [(f.pages[i].anon_exclusive, f.pages[i].hwpoison, f.pages[i].data == ZERO_VALUE,
              f.swapcache is not None) for f in thp]
    ids = tail_folios(world)
    refs = [(h.pin, h.write, h.longterm) for h in world.handles if h.page == i and h.folio in ids]
    return (sorted(entries), sorted(pages), sorted(refs))


def _tail_perms(world: World) -> list[tuple[int, ...] | None]:
    """The tail-page permutations to try (old index -> new): tails sorted by signature,
    every order within a group of equal ones; ``[None]`` when no tails may be permuted."""
    n = tail_pages(world)
    if n < 3:
        return [None]
    sig = {i: _tail_sig(world, i) for i in range(1, n)}
    ranked = sorted(sig, key=lambda i: sig[i])
    groups: list[list[int]] = []
    for i in ranked:
        if groups and sig[groups[-1][0]] == sig[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    out: list[tuple[int, ...] | None] = []
    for combo in product(*(permutations(g) for g in groups)):
        perm = [0] * n
        for new, old in enumerate((i for part in combo for i in part), start=1):
            perm[old] = new
        out.append(tuple(perm))
    return out


def _swap(k: int, a: int, b: int) -> int:
    return b if k == a else a if k == b else k


def _fixed_by_swap(world: World, a: int, b: int) -> bool:
    """Does swapping tail pages ``a`` and ``b`` (everywhere the key permutes them) leave
    ``world`` exactly as it is?"""
    for p in world.procs:
        for v in p.vmas:
            if v.kind not in _TAIL_MAPS:
                continue
            if (a in v.dontfork) != (b in v.dontfork) or (a in v.holes) != (b in v.holes):
                return False
            if v.shadow and v.shadow[a] != v.shadow[b]:
                return False
            ptes = v.ptes
            if not ptes:
                continue
            ea, eb = ptes[a], ptes[b]
            if (ea is None) != (eb is None):
                return False
            if ea is not None and eb is not None:
                if ea.page != _swap(eb.page, a, b):
                    return False
                if (ea.kind is not eb.kind or ea.folio != eb.folio or ea.writable != eb.writable
                        or ea.exclusive != eb.exclusive or ea.soft_dirty != eb.soft_dirty
                        or ea.slot != eb.slot):
                    return False
            for k, e in enumerate(ptes):
                if k != a and k != b and e is not None and (e.page == a or e.page == b):
                    return False
    for f in world.folios:
        if f.kind in _TAIL_FOLIOS:
            if f.pages[a] != f.pages[b]:
                return False
            if f.swapcache is not None and f.swapcache[a] != f.swapcache[b]:
                return False
    thp = tail_folios(world)
    for h in world.handles:
        if h.folio in thp and (h.page == a or h.page == b):
            return False
        if h.index == a or h.index == b:
            owner = world.proc(h.owner)
            at = owner.vma(h.mapping) if owner is not None else None
            if at is not None and at.kind in _TAIL_MAPS:
                return False
    return True


def swappable_classes(world: World) -> dict[int, tuple[int, ...]]:
    """Tail pages any permutation of which leaves ``world`` exactly as it is (nothing
    renamed): each tail page in such a class of two or more -> the class, in order.

    Swapping ``a`` and ``b`` changes nothing when, in every THP or mTHP mapping,
    the entries at ``a`` and ``b`` are equal once the page they map is swapped too
    (and no other entry maps either), as are their sets of allowed values, their
    MADV_DONTFORK marks and fork holes; in every THP or mTHP folio the two pages
    are equal and sit in the same swap-cache slot (if any); and no GUP reference
    names either page. Swappable pairs chain into classes. Empty when the
    world's tails are not permuted at all (:func:`tail_pages` below 3).
    """
    n = tail_pages(world)
    if n < 3:
        return {}
    least = list(range(n))
    for a in range(1, n):
        if least[a] != a:
            continue  # already in a smaller tail's class (swaps chain: checked through it)
        for b in range(a + 1, n):
            if least[b] == b and _fixed_by_swap(world, a, b):
                least[b] = a
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(least):
        groups.setdefault(c, []).append(i)
    return {i: tuple(g) for g in groups.values() if len(g) > 1 for i in g}


def canonical_key(world: World, mm: bool = False) -> Key:
    """The canonical form of ``world``: equal for worlds equal up to renaming and tail order.

    ``mm``: with the per-MM tracking of large folios (``Folio.mm_slots``,
    ``Folio.maybe_mapped_shared``); without it (the default) they are left out,
    which is sound only where the scheme never reads them (see :func:`key_for`).
    """
    perms = _tail_perms(world)
    if perms == [None]:
        return names_key(world, mm)
    if len(perms) > 1:
        # Permuting tails the world cannot tell apart gives the same encoding, so one
        # order per class suffices: the one that keeps the class's pages in order.
        classes = set(swappable_classes(world).values())
        if classes:
            perms = [p for p in perms if p is not None and all(
                all(p[a] < p[b] for a, b in zip(m, m[1:], strict=False)) for m in classes)]
    return min(_encode(world, order, perm=perm, mm=mm)[0]
               for perm in perms for order in _orders(world, perm))


def names_key(world: World, mm: bool = False) -> Key:
    """The canonical form up to renaming only (tail pages keep their order)."""
    orders = _orders(world)
    if len(orders) == 1:
        return _encode(world, orders[0], mm=mm)[0]
    return min(_encode(world, order, mm=mm)[0] for order in orders)


def raw_key(world: World, mm: bool = False) -> Key:
    """The naive key: the world itself without its ghost counters (no symmetry reduction)."""
    folios = world.folios
    if not mm and any(f.mm_slots or f.maybe_mapped_shared for f in folios):
        folios = tuple(replace(f, mm_slots=(), maybe_mapped_shared=False) for f in folios)
    return (world.procs, folios, world.handles, world.slots)


def canonical_mm_key(world: World) -> Key:
    """:func:`canonical_key` with the per-MM tracking of large folios."""
    return canonical_key(world, mm=True)


def names_mm_key(world: World) -> Key:
    """:func:`names_key` with the per-MM tracking of large folios."""
    return names_key(world, mm=True)


def raw_mm_key(world: World) -> Key:
    """:func:`raw_key` with the per-MM tracking of large folios."""
    return raw_key(world, mm=True)


def pair_key(a: World, b: World, mm: bool = False) -> Key:
    """Canonical form of two worlds driven by the same operations (for scheme comparisons).

    Processes, references and values are renamed the same way in both (the
    operations name them); folios and slots independently. ``mm``: as for
    :func:`canonical_key` (set it when either scheme reads the tracking).
    """
    best = None
    for order in _orders(a):
        names = [p.name for p in order]
        ob = tuple(p for name in names for p in b.procs if p.name == name)
        ob += tuple(p for p in b.procs if p.name not in names)
        values: dict[str, int] = {ZERO_VALUE: 0}
        ka, handles = _encode(a, order, values, mm=mm)
        k = (ka, _encode(b, ob, values, handles, mm=mm)[0])
        if best is None or k < best:
            best = k
    assert best is not None
    return best


KEYS: dict[str, Callable[[World], Key]] = {"canonical": canonical_key, "names": names_key,
                                           "raw": raw_key}
#: The same keys with the per-MM tracking of large folios.
MM_KEYS: dict[str, Callable[[World], Key]] = {"canonical": canonical_mm_key,
                                              "names": names_mm_key, "raw": raw_mm_key}


def reads_mm_tracking(scheme: Scheme) -> bool:
    """Does the scheme read ``Folio.mm_slots`` / ``maybe_mapped_shared`` (``large_reuse``)?

    The model keeps them under every scheme; where nothing reads them, two
    states that differ only there behave alike, and the key leaves them out
    (so 6.12's state counts do not change).
    """
    return scheme.large_reuse is LargeReuse.MM_SLOTS


def permutes_tails(key: Callable[[World], Key]) -> bool:
    """Does ``key`` (one of :data:`KEYS` or :data:`MM_KEYS`) permute tail pages?"""
    return key is canonical_key or key is canonical_mm_key


def key_for(name: str, scheme: Scheme) -> Callable[[World], Key]:
    """The key ``name`` (a :data:`KEYS` name) as the explorer uses it under ``scheme``.

    ``canonical`` permutes tail pages only under schemes that treat them alike.
    Under ``head-only`` they are not: a PTE-mapped THP has one bit, and the first
    page reclaim unmaps takes it (its swap entry is exclusive, the others are
    not), so the lowest mapped tail page is special; there the key is ``names``.
    Under a scheme that reads the per-MM tracking the key includes it
    (:data:`MM_KEYS`): processes in the slots are renamed as the key renames
    them, and the slots form a set.
    """
    keys = MM_KEYS if reads_mm_tracking(scheme) else KEYS
    if name == "canonical" and scheme.head_only:
        return keys["names"]
    return keys[name]
