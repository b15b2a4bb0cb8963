"""Canonical form of a World for the explorer: symmetric states collapse to one key.

Two worlds get the same key exactly when one turns into the other by
renaming processes, GUP references, folio ids, swap slots and written
values. Those names carry no meaning for the model: it compares values only
for equality (KSM) and treats the zero value ``0`` specially, which is kept.
Mapping names are kept (they are fixed by the explored world's setup).

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

from ..state import ZERO_FOLIO, ZERO_VALUE, Entry, Process, Vma, World

#: Fields of the state's dataclasses the key encodes (names are renamed, not dropped).
ENCODED_FIELDS: dict[str, tuple[str, ...]] = {
    "World": ("config", "procs", "folios", "handles", "slots"),
    "Process": ("name", "vmas", "has_pinned"),
    "Vma": ("name", "kind", "npages", "writable", "softdirty_tracking", "dontfork", "holes",
            "huge", "ptes", "shadow"),
    "Entry": ("kind", "folio", "page", "writable", "exclusive", "soft_dirty", "slot"),
    "Folio": ("id", "kind", "pages", "swapcache"),
    "Page": ("data", "anon_exclusive", "hwpoison"),
    "Handle": ("name", "owner", "pin", "write", "longterm", "folio", "page", "mapping", "index",
               "tracking", "allowed"),
    "Slot": ("id", "data"),
}
#: Fields deliberately left out of the key (ghost counters that no transition reads).
IGNORED_FIELDS: dict[str, tuple[str, ...]] = {"World": ("next_id", "copies")}

Key = tuple


class _Namer:
    """Numbers folios, slots and values by first appearance."""

    __slots__ = ("folios", "slots", "values")

    def __init__(self, values: dict[str, int] | None = None) -> None:
        self.folios: dict[int, int] = {ZERO_FOLIO: 0}
        self.slots: dict[int, int] = {}
        self.values: dict[str, int] = values if values is not None else {ZERO_VALUE: 0}

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

    def entry(self, e: Entry | None) -> tuple:
        if e is None:
            return ()
        return (e.kind._value_, self.folio(e.folio), e.page, e.writable, e.exclusive,
                e.soft_dirty, self.slot(e.slot))

    def vma(self, v: Vma) -> tuple:
        entry, vset = self.entry, self.vset
        return (v.name, v.kind._value_, v.npages, v.writable, v.softdirty_tracking,
                tuple(sorted(v.dontfork)) if v.dontfork else (),
                tuple(sorted(v.holes)) if v.holes else (), entry(v.huge),
                tuple([entry(e) for e in v.ptes]), tuple([vset(s) for s in v.shadow]))

    def process(self, p: Process) -> tuple:
        return (p.has_pinned, tuple([self.vma(v) for v in p.vmas]))


#: Local encodings of Process objects (id -> (process, encoding, folios, slots, values)).
#: Processes are immutable and shared between a world and its successors, so many recur.
_LOCAL: dict[int, tuple[Process, tuple, tuple, tuple, tuple]] = {}
_LOCAL_MAX = 200_000


def _local(p: Process) -> tuple[Process, tuple, tuple, tuple, tuple]:
    """A process encoded on its own, with the ids it numbered, in order."""
    hit = _LOCAL.get(id(p))
    if hit is not None and hit[0] is p:
        return hit
    n = _Namer({})
    enc = n.process(p)
    del n.folios[ZERO_FOLIO]
    out = (p, enc, tuple(n.folios), tuple(n.slots), tuple(n.values))
    if len(_LOCAL) >= _LOCAL_MAX:
        _LOCAL.clear()
    _LOCAL[id(p)] = out
    return out


def _encode(world: World, order: tuple[Process, ...], values: dict[str, int] | None = None,
            handle_order: list[str] | None = None) -> tuple[tuple, list[str]]:
    """The key for one process order, and the reference names in the order it used.

    Each process is encoded on its own (with local numbers, cached); ``links``
    then maps every process's local numbers to the world's, which ties the
    processes together again. Together they determine the world up to renaming.
    """
    n = _Namer(values)
    procs = []
    links = []
    for p in order:
        _p, enc, fids, sids, vals = _local(p)
        procs.append(enc)
        links.append((tuple([n.folio(f) for f in fids]), tuple([n.slot(x) for x in sids]),
                      tuple([n.value(v) for v in vals])))
    index = {p.name: i for i, p in enumerate(order)}
    big = 1 << 30

    def hkey(h: object) -> tuple:
        return (index.get(h.owner, -1), h.mapping, h.index, h.pin, h.write,  # type: ignore
                h.longterm, h.tracking, h.page, n.folios.get(h.folio, big),  # type: ignore
                tuple(sorted(n.values.get(v, big) for v in h.allowed)))  # type: ignore
    if handle_order is None:
        ordered = sorted(world.handles, key=hkey) if len(world.handles) > 1 else world.handles
    else:
        rank = {name: i for i, name in enumerate(handle_order)}
        ordered = sorted(world.handles, key=lambda h: (rank.get(h.name, big), hkey(h)))
    handles = tuple(
        (index.get(h.owner, -1), h.mapping, h.index, h.pin, h.write, h.longterm, h.tracking,
         n.folio(h.folio), h.page, n.vset(h.allowed))
        for h in ordered
    )
    # folios in the order first reached; then any nothing reaches (in id order)
    nf = n.folios
    reached = sorted([f for f in world.folios if f.id in nf], key=lambda f: nf[f.id])
    rest = [f for f in world.folios if f.id not in nf]
    folios = []
    value, slot = n.value, n.slot
    for f in reached + rest:
        folios.append((n.folio(f.id), f.kind._value_,
                       tuple([(value(p.data), p.anon_exclusive, p.hwpoison) for p in f.pages]),
                       () if f.swapcache is None
                       else (-1,) + tuple([slot(s) for s in f.swapcache])))
    slots = sorted(world.slots, key=lambda s: (n.slots.get(s.id, big), s.id))
    key = (tuple(procs), tuple(links), handles, tuple(folios),
           tuple([(slot(s.id), value(s.data)) for s in slots]))
    return key, [h.name for h in ordered]


def _orders(world: World) -> list[tuple[Process, ...]]:
    """Process orders to try: sorted by local encoding, every order within groups of equal ones."""
    procs = world.procs
    if len(procs) <= 1:
        return [procs]
    sig = {p.name: _local(p)[1] for p in procs}
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


def canonical_key(world: World) -> Key:
    """The canonical form of ``world`` (hashable; equal for worlds equal up to renaming)."""
    orders = _orders(world)
    if len(orders) == 1:
        return _encode(world, orders[0])[0]
    return min(_encode(world, order)[0] for order in orders)


def raw_key(world: World) -> Key:
    """The naive key: the world itself without its ghost counters (no symmetry reduction)."""
    return (world.procs, world.folios, world.handles, world.slots)


def pair_key(a: World, b: World) -> Key:
    """Canonical form of two worlds driven by the same operations (for scheme comparisons).

    Processes, references and values are renamed the same way in both (the
    operations name them); folios and slots independently.
    """
    best = None
    for order in _orders(a):
        names = [p.name for p in order]
        ob = tuple(p for name in names for p in b.procs if p.name == name)
        ob += tuple(p for p in b.procs if p.name not in names)
        values: dict[str, int] = {ZERO_VALUE: 0}
        ka, handles = _encode(a, order, values)
        k = (ka, _encode(b, ob, values, handles)[0])
        if best is None or k < best:
            best = k
    assert best is not None
    return best


KEYS: dict[str, Callable[[World], Key]] = {"canonical": canonical_key, "raw": raw_key}
