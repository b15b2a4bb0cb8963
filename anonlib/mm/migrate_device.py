"""Device-private memory: migrating anonymous pages to a device and back (mm/migrate_device.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..results import BackOff
from ..state import ZERO_FOLIO, ZERO_VALUE, Entry, EntryKind, FolioKind
from .anon_rmap import folio_add_new_anon_rmap, folio_try_share_anon_rmap
from .internal import folio_expected_ref_count
from .swapfile import folio_free_swap


def migrate_vma_pages(m: Mem, loc: Loc, index: int) -> None:
    """Move the page at ``loc`` to device-private memory (migrate_vma_setup/pages/finalize).

    mm/migrate_device.c: migrate_vma_collect_pmd, migrate_device_unmap, migrate_vma_pages,
    migrate_vma_finalize (6.12). Every mapping of the page becomes a device-private
    entry, writable iff it was writable, and the device page is exclusive iff the
    page was. An empty or zero-page entry gets a new device page
    (migrate_vma_insert_page). Backs off for a page that may be pinned or has
    other references.
    """
    e = m.get(loc)
    v = m.vma(loc.proc, loc.vma)
    if loc.huge:
        raise BackOff("the model moves only small folios to device memory (split the PMD first)")
    if e is None or (e.kind is EntryKind.PRESENT and e.folio == ZERO_FOLIO):
        d = m.new_folio(FolioKind.DEVICE, (ZERO_VALUE,))
        folio_add_new_anon_rmap(m, d.id)
        m.set(loc, Entry(EntryKind.DEVICE_PRIVATE, d.id, 0, writable=v.writable))
        return
    if e.kind is not EntryKind.PRESENT:
        raise BackOff(f"no present page at {loc.proc} {loc.vma}[{index}] ({e.kind.value} entry)")
    f = m.folio(e.folio)
    if f.large:
        raise BackOff("a page of a large folio is not collected: migrate_vma_collect_pmd "
                      "skips PageTransCompound pages (6.12)")
    if f.kind is not FolioKind.SMALL:
        raise BackOff(f"the model moves only small anonymous folios to device memory, "
                      f"not {f.kind.value}")
    was_exclusive = m.exclusive(f.id, 0)
    if was_exclusive and not folio_try_share_anon_rmap(m, f.id, 0):
        raise BackOff("the folio may be pinned: folio_try_share_anon_rmap refused")
    maps = m.mappings_of(f.id)
    if m.refcount(f.id) > folio_expected_ref_count(m, f.id):
        raise BackOff("migrate_vma_check_page: the page has references beyond its mappings")
    d = m.new_folio(FolioKind.DEVICE, (f.pages[0].data,))
    # the migration entry type carries exclusivity: writable or readable_exclusive
    exclusive = was_exclusive or any(e2.writable for _l, e2 in maps)
    for loc2, e2 in maps:
        m.set(loc2, Entry(EntryKind.DEVICE_PRIVATE, d.id, 0, writable=e2.writable,
                          soft_dirty=e2.soft_dirty))
    if f.swapcache is not None:
        folio_free_swap(m, f.id)
    if exclusive:
        m.set_exclusive(d.id, (0,))


def migrate_to_ram(m: Mem, did: int) -> None:
    """A CPU fault on a device-private entry migrates the page back to system RAM.

    mm/memory.c: do_swap_page -> pgmap->ops->migrate_to_ram, which uses the same
    migrate_vma machinery (6.12). Every process that maps the device page gets a
    present PTE again, writable iff its entry was, exclusive iff the device page was.
    """
    d = m.folio(did)
    exclusive = m.exclusive(did, 0)
    f = m.new_folio(FolioKind.SMALL, (d.pages[0].data,))
    for loc, e in m.mappings_of(did, (EntryKind.DEVICE_PRIVATE,)):
        m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=e.writable,
                         soft_dirty=e.soft_dirty))
    if exclusive:
        m.set_exclusive(f.id, (0,))
