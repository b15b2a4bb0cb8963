"""The two sides of the race, step by step, and the variants that drop a barrier.

CPU B is always GUP-fast taking a ``FOLL_PIN`` (``pin_user_pages_fast``) on
one small anonymous folio. CPU A is the other side: a path that clears
PG_anon_exclusive after making the PTE non-present (swap-out, migration,
KSM), or ``fork``. Every step names the kernel function and paraphrases the
line it models; the steps follow Linux v6.12 (mm/gup.c, mm/internal.h,
include/linux/rmap.h, mm/rmap.c, mm/ksm.c, mm/memory.c).

Shared memory has four locations:

``pte``
    the PTE that maps the page in the pinning process.
``refcount``
    the folio's reference count. A small folio counts a ``FOLL_PIN`` pin as
    GUP_PIN_COUNTING_BIAS references in the same word, so pins and plain
    references (``folio_get``) live in one location; the model shows them
    apart (``refs`` and ``pins``).
``flag``
    PG_anon_exclusive of the page.
``seq``
    ``mm->write_protect_seq``.

What the model leaves out, once: the TLB flush that goes with clearing a PTE
(GUP-fast walks the page tables, not the TLB, and the kernel does not rely on
the flush for this race); the PMD re-check in ``gup_fast_pte_range`` (no THP
here); ``MMF_HAS_PINNED`` (set, as for any process that has pinned);
``try_get_folio``'s fully ordered increment of the refcount that precedes the
pin bias (it comes before the access that matters, the bias); the swap
reference ``try_to_unmap_one`` takes between A1 and A2; the child's page
table in fork. A1 is a plain store under every memory model, although x86
clears a PTE with an implicitly locked ``xchg``: the kernel places its own
``smp_mb`` and does not rely on that (arm64's clear is a relaxed ``xchg``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .machine import (
    END,
    LOCK,
    MB,
    MB_AFTER_ATOMIC,
    MEMORY_MODELS,
    RMB,
    UNLOCK,
    WMB,
    Atomic,
    Load,
    Program,
    Step,
    Store,
)

# ---------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Pte:
    """A page table entry: present (read-only or writable), none, or a swap/migration entry."""

    kind: str  # "present" | "none" | "swap" | "migration"
    writable: bool = False
    exclusive: bool = False  # swap / migration entries carry exclusivity

    @property
    def present(self) -> bool:
        return self.kind == "present"

    def text(self) -> str:
        if self.kind == "present":
            return "present " + ("writable" if self.writable else "read-only") + " -> page P"
        if self.kind == "none":
            return "none"
        if self.kind == "swap":
            return "swap entry" + (" (exclusive)" if self.exclusive else "")
        if self.writable:
            return "migration entry (writable)"
        return "migration entry (" + ("readable-exclusive" if self.exclusive else "readable") + ")"


@dataclass(frozen=True)
class Ref:
    """The folio's refcount, shown as plain references plus pins (each pin is the bias)."""

    refs: int
    pins: int

    def text(self) -> str:
        return f"refs {self.refs} + pins {self.pins}"


PTE_RW = Pte("present", writable=True)
PTE_RO = Pte("present", writable=False)
PTE_NONE = Pte("none")
SWAP_EXCL = Pte("swap", exclusive=True)
MIGRATION_W = Pte("migration", writable=True, exclusive=True)


def _pin(r: Ref) -> Ref:
    return Ref(r.refs, r.pins + 1)


def _unpin(r: Ref) -> Ref:
    return Ref(r.refs, r.pins - 1)


def _get(r: Ref) -> Ref:
    return Ref(r.refs + 1, r.pins)


def _put(r: Ref) -> Ref:
    return Ref(r.refs - 1, r.pins)


def _clear(_: bool) -> bool:
    return False


# ---------------------------------------------------------------------------- B: GUP-fast

GUP = "mm/gup.c"
PINNED = "pinned the page"
SLOW = "fell back to the slow path"


def gup_fast(
    *,
    write: bool,
    seqcount: bool = True,
    grab_mb: bool = True,
    unshare_check: bool = True,
    unshare_rmb: bool = True,
) -> Program:
    """pin_user_pages_fast() on one PTE: gup_fast -> gup_fast_pte_range (mm/gup.c, v6.12)."""
    first = "G0" if seqcount else "B1"
    after_b4 = "B5" if unshare_check else ("G6" if seqcount else END)
    after_b5 = "G6" if seqcount else END
    steps = [
        Step(
            "G0",
            "gup_fast",
            GUP,
            "raw_seqcount_try_begin(&current->mm->write_protect_seq, seq): "
            "read the sequence; odd (a fork is copying) -> return 0; smp_rmb",
            Load("seq"),
            after=(RMB,),
            backoff=lambda r: r["G0"] % 2 == 1,
            bail_outcome=SLOW,
            next="B1",
        ),
        Step(
            "B1",
            "gup_fast_pte_range",
            GUP,
            "pte = ptep_get_lockless(ptep): read the PTE once",
            Load("pte"),
            next="B2",
        ),
        Step(
            "B2",
            "gup_fast_pte_range",
            GUP,
            "pte_access_permitted(pte, flags & FOLL_WRITE) fails -> goto pte_unmap"
            + (" (FOLL_WRITE: the PTE must be writable)" if write else ""),
            backoff=lambda r: not r["B1"].present or (write and not r["B1"].writable),
            bail_outcome=SLOW,
            next="B3",
        ),
        Step(
            "B3",
            "try_grab_folio_fast",
            GUP,
            "folio_ref_add(folio, refs * (GUP_PIN_COUNTING_BIAS - 1)): take the pin"
            + ("; smp_mb__after_atomic()" if grab_mb else " (no barrier after it)"),
            Atomic("refcount", _pin, "pins += 1"),
            after=(MB_AFTER_ATOMIC,) if grab_mb else (),
            next="B4",
        ),
        Step(
            "B4",
            "gup_fast_pte_range",
            GUP,
            "pte_val(pte) != pte_val(ptep_get(ptep)): re-read the PTE; changed -> back off",
            Load("pte"),
            backoff=lambda r: r["B4"] != r["B1"],
            bail="B4x",
            next=after_b4,
        ),
        Step(
            "B4x",
            "gup_put_folio",
            GUP,
            "gup_put_folio(folio, 1, flags): drop the pin, goto pte_unmap",
            Atomic("refcount", _unpin, "pins -= 1"),
            outcome=SLOW,
        ),
        Step(
            "B5",
            "gup_must_unshare",
            "mm/internal.h",
            ("smp_rmb(); " if unshare_rmb else "(no smp_rmb) ")
            + "the PTE is read-only: return !PageAnonExclusive(page); set -> keep the pin",
            Load("flag"),
            before=(RMB,) if unshare_rmb else (),
            when=lambda r: not r["B1"].writable,
            backoff=lambda r: not r["B5"],
            bail="B5x",
            next=after_b5,
        ),
        Step(
            "B5x",
            "gup_put_folio",
            GUP,
            "gup_must_unshare() said unshare: gup_put_folio(), goto pte_unmap",
            Atomic("refcount", _unpin, "pins -= 1"),
            outcome=SLOW,
        ),
        Step(
            "G6",
            "gup_fast",
            GUP,
            "read_seqcount_retry(&current->mm->write_protect_seq, seq): smp_rmb, "
            "re-read the sequence; changed -> unpin everything",
            Load("seq"),
            before=(RMB,),
            backoff=lambda r: r["G6"] != r["G0"],
            bail="G6x",
        ),
        Step(
            "G6x",
            "gup_fast_unpin_user_pages",
            GUP,
            "gup_fast_unpin_user_pages(pages, nr_pinned); return 0",
            Atomic("refcount", _unpin, "pins -= 1"),
            outcome=SLOW,
        ),
    ]
    keep = {s.id: s for s in steps}
    if not seqcount:
        for sid in ("G0", "G6", "G6x"):
            del keep[sid]
    if not unshare_check:
        del keep["B5"], keep["B5x"]
    kind = "FOLL_PIN | FOLL_WRITE" if write else "FOLL_PIN, read-only"
    # Finishing without backing off means the pin is kept.
    return Program("B", f"GUP-fast ({kind})", first, keep, done=PINNED)


# ---------------------------------------------------------------------------- A: clearers

RMAP_H = "include/linux/rmap.h"
SHARE = "__folio_try_share_anon_rmap"
BACKED_OFF = "backed off, PTE restored"


def clearer(
    kind: str,
    *,
    orig: Pte,
    share_mb: bool = True,
    share_wmb: bool = True,
    check_first: bool = False,
) -> Program:
    """A path that clears the flag via folio_try_share_anon_rmap_pte: swap-out, migration, KSM.

    The order is A1 (clear the PTE), A2 (smp_mb; maybe pinned? back off),
    A3 (clear the flag; smp_mb__after_atomic), A4 (install the new entry).
    ``check_first`` puts A2 before A1, the pre-5.19 order of reclaim.
    """
    if kind == "swapout":
        func, file = "try_to_unmap_one", "mm/rmap.c"
        clear_code = "pteval = ptep_clear_flush(vma, address, pvmw.pte): clear the PTE"
        restore_code = "swap_free(entry); set_pte_at(mm, address, pvmw.pte, pteval): restore"
        new, new_code = (
            SWAP_EXCL,
            "set_pte_at(mm, address, pvmw.pte, swp_pte): a swap PTE with the exclusive bit",
        )
        done = "swapped the page out"
        name = "swap-out (try_to_unmap_one)"
    elif kind == "migrate":
        func, file = "try_to_migrate_one", "mm/rmap.c"
        clear_code = "pteval = ptep_clear_flush(vma, address, pvmw.pte): clear the PTE"
        restore_code = "set_pte_at(mm, address, pvmw.pte, pteval): restore, migration fails"
        new, new_code = (
            MIGRATION_W,
            "set_pte_at(mm, address, pvmw.pte, swp_pte): a writable migration entry",
        )
        done = "installed a migration entry"
        name = "migration (try_to_migrate_one)"
    elif kind == "ksm":
        func, file = "write_protect_page", "mm/ksm.c"
        clear_code = "entry = ptep_clear_flush(vma, pvmw.address, pvmw.pte): clear the PTE"
        restore_code = "set_pte_at(mm, pvmw.address, pvmw.pte, entry): restore, skip the page"
        new, new_code = (
            PTE_RO,
            "set_pte_at(mm, pvmw.address, pvmw.pte, entry): the write-protected, clean PTE"
            + (" (the same value as before: ABA)" if not orig.writable else ""),
        )
        done = "write-protected the page for merging"
        name = "KSM (write_protect_page)"
    else:
        raise ValueError(kind)

    if check_first:
        a2_next, a1_next = "A1", "A3"
    else:
        a2_next, a1_next = "A3", "AK" if kind == "ksm" else "A2"
    steps = [
        Step("A1", func, file, clear_code, Store("pte", PTE_NONE), next=a1_next),
        Step(
            "A2",
            SHARE,
            RMAP_H,
            ("smp_mb(); " if share_mb else "(no smp_mb) ")
            + "if (folio_maybe_dma_pinned(folio)) return -EBUSY",
            Load("refcount"),
            before=(MB,) if share_mb else (),
            backoff=lambda r: r["A2"].pins > 0,
            bail="A2x" if not check_first else END,
            bail_outcome=None if not check_first else "backed off (page pinned)",
            next=a2_next,
        ),
        Step("A2x", func, file, restore_code, Store("pte", orig), outcome=BACKED_OFF),
        Step(
            "A3",
            SHARE,
            RMAP_H,
            "ClearPageAnonExclusive(page)"
            + ("; smp_mb__after_atomic()" if share_wmb else " (no barrier after it)"),
            Atomic("flag", _clear, "clear_bit"),
            after=(MB_AFTER_ATOMIC,) if share_wmb else (),
            next="A4",
        ),
        Step("A4", func, file, new_code, Store("pte", new), outcome=done),
    ]
    if kind == "ksm":
        steps[1:1] = [
            Step(
                "AK",
                func,
                file,
                "folio_mapcount(folio) + 1 + swapped != folio_ref_count(folio) "
                "(extra references, e.g. O_DIRECT or a pin) -> restore and skip",
                Load("refcount"),
                backoff=lambda r: r["AK"].pins > 0,
                bail="AKx",
                next="A2",
            ),
            Step("AKx", func, file, restore_code, Store("pte", orig), outcome=BACKED_OFF),
        ]
    first = "A2" if check_first else "A1"
    return Program("A", name, first, {s.id: s for s in steps})


# ---------------------------------------------------------------------------- A: fork

MEMORY_C = "mm/memory.c"


def fork(*, seqcount: bool = True, seq_wmb: bool = True, lock_and_get: bool = True) -> Program:
    """fork() copying one present PTE: copy_page_range -> copy_pte_range -> copy_present_ptes."""
    tail = "F7" if lock_and_get else ("F8" if seqcount else END)
    steps = [
        Step(
            "F1",
            "copy_page_range",
            MEMORY_C,
            "raw_write_seqcount_begin(&src_mm->write_protect_seq): the sequence becomes odd"
            + ("; smp_wmb" if seq_wmb else " (no smp_wmb)"),
            Store("seq", 1),
            after=(WMB,) if seq_wmb else (),
            next="F2" if lock_and_get else "F4",
        ),
        Step(
            "F2",
            "copy_pte_range",
            MEMORY_C,
            "spin_lock_nested(src_ptl, SINGLE_DEPTH_NESTING): take the page table lock",
            before=(LOCK,),
            next="F3",
        ),
        Step(
            "F3",
            "copy_present_ptes",
            MEMORY_C,
            "folio_get(folio): the child's reference, before the dup",
            Atomic("refcount", _get, "refs += 1"),
            next="F4",
        ),
        Step(
            "F4",
            "__folio_try_dup_anon_rmap",
            RMAP_H,
            "maybe_pinned = folio_needs_cow_for_dma(src_vma, folio); "
            "maybe_pinned && PageAnonExclusive(page) -> return -EBUSY",
            Load("refcount"),
            backoff=lambda r: r["F4"].pins > 0,
            bail="F4x",
            next="F5",
        ),
        Step(
            "F4x",
            "copy_present_ptes",
            MEMORY_C,
            "folio_put(folio); copy_present_page(): the child gets a copy, the parent's "
            "PTE is left alone"
            if lock_and_get
            else "copy_present_page(): the child gets a copy, the parent's PTE is left alone",
            Atomic("refcount", _put, "refs -= 1") if lock_and_get else None,
            next=tail,
            outcome="copied the page for the child",
        ),
        Step(
            "F5",
            "__folio_try_dup_anon_rmap",
            RMAP_H,
            "ClearPageAnonExclusive(page): the page may be shared now",
            Atomic("flag", _clear, "clear_bit"),
            next="F6",
        ),
        Step(
            "F6",
            "__copy_present_ptes",
            MEMORY_C,
            "wrprotect_ptes(src_mm, addr, src_pte, nr): write-protect the parent's PTE",
            Store("pte", PTE_RO),
            next=tail,
            outcome="shared the page with the child",
        ),
        Step(
            "F7",
            "copy_pte_range",
            MEMORY_C,
            "pte_unmap_unlock(orig_src_pte, src_ptl): release the page table lock",
            before=(UNLOCK,),
            next="F8" if seqcount else END,
        ),
        Step(
            "F8",
            "copy_page_range",
            MEMORY_C,
            "raw_write_seqcount_end(&src_mm->write_protect_seq): smp_wmb; the sequence "
            "is even again",
            Store("seq", 2),
            before=(WMB,),
        ),
    ]
    keep = {s.id: s for s in steps}
    if not seqcount:  # before 5.11 nothing marked the copy
        del keep["F1"], keep["F8"]
    if not lock_and_get:  # the hypothetical fork takes no lock and no reference
        del keep["F2"], keep["F3"], keep["F7"]
    first = "F1" if seqcount else ("F2" if lock_and_get else "F4")
    return Program("A", "fork (copy_page_range)", first, keep)


# ---------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A race: the two programs, the initial memory, what to expect under each memory model."""

    name: str
    summary: str  # one line
    a: Callable[[], Program] = field(repr=False)
    b: Callable[[], Program] = field(repr=False)
    pte: Pte = PTE_RW
    expected: Mapping[str, str] = field(default_factory=dict)  # model -> "safe"/"unsafe"
    kernel: bool = False  # the kernel's own ordering
    notes: str = ""

    def programs(self) -> tuple[Program, Program]:
        return (self.a(), self.b())

    def memory(self) -> dict[str, Any]:
        return {"pte": self.pte, "refcount": Ref(1, 0), "flag": True, "seq": 0}

    def expect(self, model: str) -> str:
        return self.expected[model]

    @property
    def expected_line(self) -> str:
        return " ".join(f"{m}={self.expected[m]}" for m in MEMORY_MODELS)

    def describe(self, cpus: str = "AB") -> str:
        """The programs of ``cpus``, step by step: where, the line, where each step leads."""
        lines = [f"{self.name}: {self.summary}", f"  the PTE starts {self.pte.text()}"]
        for prog in self.programs():
            if prog.cpu not in cpus:
                continue
            lines.append(f"CPU {prog.cpu}: {prog.name}")
            for step in prog.steps.values():
                lines.append(f"  {step.id:<4} {step.where}")
                lines.append(f"       {step.code}")
                flow = []
                if step.when is not None:
                    flow.append("only if the PTE read at B1 is read-only")
                if step.next != END:
                    flow.append(f"then {step.next}")
                if step.backoff is not None:
                    flow.append(f"backs off to {step.bail}" if step.bail != END else "may stop")
                if flow:
                    lines.append("       (" + "; ".join(flow) + ")")
        return "\n".join(lines)


def _all(verdict: str) -> dict[str, str]:
    return dict.fromkeys(MEMORY_MODELS, verdict)


def _unsafe_from(model: str) -> dict[str, str]:
    i = MEMORY_MODELS.index(model)
    return {m: ("unsafe" if j >= i else "safe") for j, m in enumerate(MEMORY_MODELS)}


def _variants() -> dict[str, Variant]:
    w = lambda: gup_fast(write=True)  # noqa: E731 - a short factory
    ro = lambda: gup_fast(write=False)  # noqa: E731
    vs = [
        Variant(
            "swapout",
            "swap-out (try_to_unmap_one) vs GUP-fast FOLL_PIN|FOLL_WRITE: the kernel's order",
            lambda: clearer("swapout", orig=PTE_RW),
            w,
            expected=_all("safe"),
            kernel=True,
        ),
        Variant(
            "migrate",
            "migration (try_to_migrate_one) vs GUP-fast FOLL_PIN|FOLL_WRITE: the kernel's order",
            lambda: clearer("migrate", orig=PTE_RW),
            w,
            expected=_all("safe"),
            kernel=True,
        ),
        Variant(
            "ksm",
            "KSM (write_protect_page) on a writable PTE vs GUP-fast FOLL_PIN|FOLL_WRITE",
            lambda: clearer("ksm", orig=PTE_RW),
            w,
            expected=_all("safe"),
            kernel=True,
        ),
        Variant(
            "ksm-aba",
            "KSM reinstalls the same read-only PTE (ABA) vs a read-only GUP-fast pin",
            lambda: clearer("ksm", orig=PTE_RO),
            ro,
            pte=PTE_RO,
            expected=_all("safe"),
            kernel=True,
        ),
        Variant(
            "fork",
            "fork (copy_page_range, write_protect_seq odd) vs GUP-fast FOLL_PIN|FOLL_WRITE",
            lambda: fork(),
            w,
            expected=_all("safe"),
            kernel=True,
        ),
        Variant(
            "swapout-no-share-mb",
            "swap-out without the smp_mb between clearing the PTE and the pin check",
            lambda: clearer("swapout", orig=PTE_RW, share_mb=False),
            w,
            expected=_unsafe_from("tso"),
        ),
        Variant(
            "swapout-no-grab-mb",
            "GUP-fast without smp_mb__after_atomic after taking the pin (swap-out side intact)",
            lambda: clearer("swapout", orig=PTE_RW),
            lambda: gup_fast(write=True, grab_mb=False),
            expected=_unsafe_from("weak"),
        ),
        Variant(
            "ksm-aba-no-share-wmb",
            "ABA case without smp_mb__after_atomic after ClearPageAnonExclusive",
            lambda: clearer("ksm", orig=PTE_RO, share_wmb=False),
            ro,
            pte=PTE_RO,
            expected=_unsafe_from("weak"),
        ),
        Variant(
            "ksm-aba-no-unshare-rmb",
            "ABA case without the smp_rmb in gup_must_unshare",
            lambda: clearer("ksm", orig=PTE_RO),
            lambda: gup_fast(write=False, unshare_rmb=False),
            pte=PTE_RO,
            expected=_unsafe_from("weak"),
        ),
        Variant(
            "ksm-aba-no-b5",
            "ABA case with a GUP-fast that never reads PG_anon_exclusive (no B5, as before 5.19)",
            lambda: clearer("ksm", orig=PTE_RO),
            lambda: gup_fast(write=False, unshare_check=False),
            pte=PTE_RO,
            expected=_all("unsafe"),
        ),
        Variant(
            "swapout-check-first",
            "swap-out checking for pins before clearing the PTE (A2 before A1, as before 5.19)",
            lambda: clearer("swapout", orig=PTE_RW, check_first=True),
            w,
            expected=_all("unsafe"),
        ),
        Variant(
            "fork-no-seqcount",
            "fork vs GUP-fast without write_protect_seq (before 5.11, 57efa1fe5957)",
            lambda: fork(seqcount=False),
            lambda: gup_fast(write=True, seqcount=False),
            expected=_all("unsafe"),
        ),
        Variant(
            "fork-no-seq-wmb",
            "fork without the smp_wmb in raw_write_seqcount_begin",
            lambda: fork(seq_wmb=False),
            w,
            expected=_unsafe_from("weak"),
        ),
        Variant(
            "fork-wmb-only",
            "hypothetical fork: only smp_wmb between write_protect_seq and the pin check",
            lambda: fork(lock_and_get=False),
            w,
            expected=_unsafe_from("tso"),
            notes="No spin_lock and no folio_get between F1 and F4: the store of the "
            "sequence may pass the load of the refcount (store buffering).",
        ),
    ]
    return {v.name: v for v in vs}


VARIANTS: dict[str, Variant] = _variants()


def variant(name: str) -> Variant:
    """The variant called ``name`` (ValueError listing the names if unknown)."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown race variant {name!r}; variants: {', '.join(VARIANTS)}"
        ) from None
