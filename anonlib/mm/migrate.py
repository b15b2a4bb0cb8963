"""Migration of anonymous folios: migration entries carry exclusivity (mm/migrate.c, mm/rmap.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..results import BackOff
from ..state import ZERO_FOLIO, Entry, EntryKind, replace
from .anon_rmap import (
    back_off_from_device_exclusive,
    folio_remove_rmap,
    folio_try_share_anon_rmap,
)
from .huge_memory import split_folio
from .internal import folio_expected_ref_count


def try_to_migrate_one(m: Mem, loc: Loc, e: Entry) -> None:
    """Replace one present entry of a folio by a migration entry; the entry takes the flag over.

    mm/rmap.c: try_to_migrate_one (6.12); set_pmd_migration_entry (mm/huge_memory.c)
    for a PMD. Entry type: writable if the PTE was, else readable_exclusive if
    the page was exclusive, else readable. An exclusive page of a folio that
    may be pinned cannot be shared, and the migration backs off.
    """
    exclusive = m.exclusive(e.folio, e.page, loc.huge)
    if exclusive and not folio_try_share_anon_rmap(m, e.folio, e.page, loc.huge):
        raise BackOff("the folio may be pinned: folio_try_share_anon_rmap refused")
    if not m.scheme.readable_exclusive_migration:
        exclusive = e.writable  # before 5.19 there were only writable and readable entries
    m.set(loc, Entry(EntryKind.MIGRATION, e.folio, e.page, writable=e.writable,
                     exclusive=exclusive or e.writable, soft_dirty=e.soft_dirty))
    if not loc.huge:
        folio_remove_rmap(m, e.folio, (e.page,))  # one PTE at a time (folio_remove_rmap_pte)


def migrate_folio_unmap(m: Mem, fid: int) -> None:
    """First half of migrating a folio: unmap it everywhere, installing migration entries.

    mm/migrate.c: migrate_folio_unmap -> try_to_migrate (mm/rmap.c) (6.12). The walk
    goes one PTE at a time, so a large folio with two or more pages mapped is
    partially mapped once the first of them is unmapped (folio_remove_rmap_pte).
    """
    if m.mappings_of(fid, (EntryKind.MIGRATION,)):
        raise BackOff("the folio is already under migration")
    back_off_from_device_exclusive(m, fid, "migration")
    for _loc, e in m.mappings_of(fid):
        if e.kind is not EntryKind.PRESENT:
            raise BackOff(f"the folio is mapped by a {e.kind.value} entry")
    for loc, e in m.mappings_of(fid):
        try_to_migrate_one(m, loc, e)


def migrate_folio_move(m: Mem, fid: int) -> str | None:
    """Second half: copy to a new folio and map it from the entries, or restore the old one.

    mm/migrate.c: migrate_folio_move -> folio_migrate_mapping, remove_migration_ptes (6.12).
    folio_migrate_mapping refuses a folio with references it did not expect
    (a FOLL_GET or a pin): the old folio is then mapped back from the same
    entries. Returns the reason for failing, or None.
    """
    entries = m.mappings_of(fid, (EntryKind.MIGRATION,))
    if not entries:
        return "no migration entry refers to this folio"
    old = m.folio(fid)
    # __migrate_folio: folio_expected_ref_count plus the reference isolation took
    if m.refcount(fid) != folio_expected_ref_count(m, fid) + 1:
        remove_migration_ptes(m, fid, fid)
        return ("folio_migrate_mapping: unexpected references (GUP); "
                "the old folio was mapped back")
    new = m.new_folio(old.kind, tuple(p.data for p in old.pages))
    # the new folio is queued for deferred split as the old one was, partially mapped if it
    # was (read after the unmap, which may have marked it)
    m.set_folio(replace(new, swapcache=old.swapcache, partially_mapped=old.partially_mapped))
    m.set_folio(replace(old, swapcache=None))
    remove_migration_ptes(m, fid, new.id)
    return None


def remove_migration_ptes(m: Mem, old: int, new: int) -> None:
    """Map ``new`` where migration entries for ``old`` are: writable iff the entry was,
    exclusive iff the entry was writable or readable_exclusive.

    mm/migrate.c: remove_migration_ptes -> remove_migration_pte (6.12); remove_migration_pmd.
    """
    for loc, e in m.mappings_of(old, (EntryKind.MIGRATION,)):
        m.set(loc, Entry(EntryKind.PRESENT, new, e.page, writable=e.writable,
                         soft_dirty=e.soft_dirty))
        if e.exclusive:
            m.set_exclusive(new, (e.page,), loc.huge)


def migrate_pages(m: Mem, fid: int) -> list[int]:
    """The folios ``kernel migrate`` moves for folio ``fid``: itself, or, for a partially
    mapped large folio, the small folios it splits into that are still mapped.

    mm/migrate.c: migrate_pages -> migrate_pages_batch (6.12): a folio of more than two
    pages that is partially mapped (PG_partially_mapped) is split with
    try_split_folio first, and the small folios join the list being migrated; if
    the split fails (a reference beyond the mappings), the folio is tried whole.
    Scheme point ``migrate_splits_partially_mapped``: 6.1 moves it whole.
    """
    f = m.folio(fid)
    if not (m.scheme.migrate_splits_partially_mapped and len(f.pages) > 2
            and f.partially_mapped):
        return [fid]
    locs = [loc for loc, _e in sorted(m.mappings_of(fid, (EntryKind.PRESENT,)),
                                      key=lambda le: le[1].page)]
    if split_folio(m, fid):
        return [fid]
    out: list[int] = []
    for loc in locs:
        e = m.get(loc)
        if (e is not None and e.kind is EntryKind.PRESENT and e.folio != ZERO_FOLIO
                and e.folio not in out):
            out.append(e.folio)
    return out


def migration_entry_wait(m: Mem, fid: int) -> None:
    """A fault on a migration entry waits until the migration is over (here: finishes it).

    mm/migrate.c: migration_entry_wait (6.12).
    """
    migrate_folio_move(m, fid)
