"""Transition functions, one module per kernel source file they model.

Every function here is named after the kernel function it models and cites
it in its docstring (file, function, version). Each works on a
:class:`anonlib.mem.Mem`; :mod:`anonlib.model` dispatches operations to them.

The modules form layers, and a module imports only modules of lower layers
(``tests/test_layering.py`` checks this, and that no import hides inside a
function). The kernel's own files call each other in circles (mm/memory.c
maps pages through mm/rmap.c, and mm/rmap.c's make_device_exclusive_range
faults pages in through mm/gup.c and mm/memory.c); the layers follow the
kernel's headers instead: what a header declares for every mm file sits at
the bottom, the fault handlers in the middle, the system calls and kernel
actions that take faults on top.

0. ``anon_rmap`` (include/linux/rmap.h: the helpers that set and clear the
   flag) and ``swapfile`` (mm/swapfile.c: dropping the swap cache copy, the
   old map-count reuse rule). They import nothing from this package.
1. ``internal`` (include/linux/mm.h, mm/internal.h): the rules several files
   share, each once: folio_expected_ref_count, making and counting a COW
   copy, and the COW reuse decision of every fault (can_reuse_anon_page).
2. ``huge_memory``, ``hugetlb``, ``migrate_device``: the handlers the PTE
   fault path hands PMD, hugetlb and device-private entries to, and the
   folio split.
3. ``migrate``: migration entries; it splits a partially mapped folio before
   migrating it, through ``huge_memory``.
4. ``memory`` (mm/memory.c: handle_mm_fault and zapping), ``vmscan`` and
   ``ksm``: they split huge mappings and folios through layer 2.
5. ``fork``, ``gup``, ``madvise``, ``mmap``, ``mprotect``, ``mremap``, ``memory_failure``
   and ``rmap`` (mm/rmap.c: make_device_exclusive_range, which faults the
   page in first): entry points that may take faults.

A kernel rule lives in one function, and a module that needs it imports it
from the layer where it lives; a new module goes in the lowest layer above
everything it imports, and into :data:`LAYERS`.
"""

#: The layers above, bottom first: a module may import only from earlier layers.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("anon_rmap", "swapfile"),
    ("internal",),
    ("huge_memory", "hugetlb", "migrate_device"),
    ("migrate",),
    ("memory", "vmscan", "ksm"),
    ("fork", "gup", "madvise", "mmap", "mprotect", "mremap", "memory_failure", "rmap"),
)
