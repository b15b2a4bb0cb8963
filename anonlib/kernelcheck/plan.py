"""Turn a scenario into what the real kernel can run, and run it on the model alongside.

:func:`plan` walks a parsed scenario once. For every statement it

* applies it to the model (scheme ``mainline`` for Linux 6.12, ``lts-6.1`` for
  Linux 6.1) and records the outcome and the state of the pages to compare
  afterwards;
* compiles it into one command of the VM job (``tools/kernelcheck/anoncheck.c``
  carries the commands out), or finds that user space cannot express it.

The first statement that changes state but cannot be expressed ends the
kernel's part of the scenario: everything after it is "not checked", because
the real state would no longer follow the model's.

Layout of memory in the VM
--------------------------
Each ``mmap`` gets its own 4 MiB slot at ``0x200000000 + 4 MiB * k`` (the
mapping at the start, a 2 MiB gap after it, so no two mappings merge into
one VMA); a fork child inherits the addresses. A base mapping of N pages is
N real pages (MADV_NOHUGEPAGE). A THP or hugetlb mapping is one real 2 MiB
huge page of 512 subpages, while the model's has ``thp_pages`` (default 4) or
``hugetlb_pages``: model page ``i`` stands for the *block* of
``512 / thp_pages`` real subpages starting at subpage ``i * 512 / thp_pages``
(so the model's four pages spread over the whole huge page, and the
fractions of a THP that MADV_DONTFORK, MADV_DONTNEED or a COW leave behind
are the same as in the model). Writes, reads and GUP references cover the
whole block (each subpage carries the value; a read reports when they
differ; ``H read`` reads the first subpage); a kernel action on one page
and every observation use the block's first subpage.

An ``mthp`` mapping is *not* scaled: model page ``i`` is real page ``i``
(block 1), because its folios are small enough to be real (``mthp_pages``
sizes of 16 kB to 1 MiB). It starts 1 MiB into its slot
(:data:`MTHP_OFFSET`): aligned to every mTHP size, and no 2 MiB-aligned
range lies inside it (it is at most 512 pages), so not even a 512-page
``mthp`` mapping can get a PMD THP, which the model never gives one. It is
``MADV_HUGEPAGE`` (the sizes are set to ``madvise``, see :meth:`Plan.job`).
``kernel split-folio P A[i]`` there splits only the folio at ``A[i]``
(debugfs ``split_huge_pages`` on that one page), as the model does.

References: ``get ro`` is vmsplice (FOLL_GET), ``pin rw longterm`` an io_uring
fixed buffer, ``pin ro longterm`` gup_test's PIN_LONGTERM_TEST_START on one of
:data:`RO_PIN_SLOTS` module instances (``rpin``; where gup_test is missing the
guest takes the pin with an O_DIRECT write instead if
:func:`odirect_pins_alike`, then stops the scenario). A ``write`` carries the
model's answer to "does its first store fault?" (:func:`write_probe`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import model
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
from ..results import ModelError
from ..scenario.syntax import ExpectInvariants, ExpectState, Scenario, Show, Statement
from ..schemes import MAINLINE, Scheme, get_scheme
from ..state import ZERO_FOLIO, World
from .vm import DEFAULT_SERIES, SERIES, Series

PAGE = 4096
HUGE_PAGES = 512  # subpages of a real 2 MiB THP or hugetlb page
BASE_ADDR = 0x2_0000_0000
SLOT = 4 << 20
#: An mthp mapping starts here in its slot: aligned to the largest mTHP size (1 MiB) but
#: not to the PMD size, so no PMD fits in it.
MTHP_OFFSET = 1 << 20
VALUE_BYTES = 63  # longest value the VM stores (the page's first 64 bytes, NUL padded)
#: R/O long-term pins held at once: gup_test.ko keeps one pinned range per module, so
#: the VM loads this many instances of it (anonlib/kernelcheck/selftests.py:build_gup_test).
RO_PIN_SLOTS = 4

#: Why statements are not expressible from user space (the "not checked" reasons).
NOT_EXPRESSIBLE = {
    "ro-pins": f"more than {RO_PIN_SLOTS} R/O long-term pins held at once (the VM loads "
               f"{RO_PIN_SLOTS} gup_test instances, one pinned range each)",
    "pin-short": "a short-term FOLL_PIN held across statements has no user-space form "
                 "(O_DIRECT pins only while the I/O runs)",
    "get-rw": "a held R/W FOLL_GET reference has no user-space form in 6.12 (O_DIRECT and "
              "vmsplice no longer take one)",
    "swapcache-drop": "user space cannot drop one folio from the swap cache",
    "migrate-half": "user space cannot stop a migration half way (move_pages does both "
                    "halves)",
    "device": "device-private and device-exclusive entries exist only with "
              "CONFIG_DEVICE_PRIVATE (their swap types in include/linux/swap.h, "
              "make_device_exclusive_range in mm/rmap.c), which Debian's kernel does not set",
    "value": f"values longer than {VALUE_BYTES} bytes",
    "statement": "the guest program has no command for this statement",
    "size": f"a huge page of more than {HUGE_PAGES} pages, or a size that does not divide "
            f"{HUGE_PAGES}",
    "mthp": "this kernel has no multi-size THP (6.8, 19eaf44954df, with the sysfs "
            "hugepages-<size>kB files), so an mthp mapping has no real counterpart",
}


@dataclass(frozen=True)
class Layout:
    """Where a mapping lives in the VM."""

    addr: int
    kind: MapKind
    npages: int  # the model's pages
    block: int  # real pages per model page

    @property
    def length(self) -> int:
        return self.npages * self.block * PAGE

    def page_addr(self, index: int) -> int:
        return self.addr + index * self.block * PAGE


@dataclass(frozen=True)
class Observation:
    """One page whose state is compared after a statement: ``id`` names it in the job."""

    id: str
    ref: PageRef
    kind: MapKind
    addr: int
    model: model.PageState | ModelError
    #: pages of the model's folio behind the page (None: no folio, or not asked)
    folio_pages: int | None = None


@dataclass
class Step:
    """One statement: what the model did, the job command, what is observed after it."""

    index: int
    statement: Statement
    command: str | None = None  # the VM job line (without the sequence number)
    model_outcome: str | None = None  # the outcome word (ops only)
    model_detail: str = ""
    model_error: str | None = None  # the model refused the statement
    not_expressible: str | None = None  # why the kernel cannot run it
    observations: list[Observation] = field(default_factory=list)
    same_pages: list[tuple[PageRef, PageRef]] = field(default_factory=list)
    deep: bool = False  # observations cover every page (after an op, or ``show``)
    #: a ``write``: the page, and whether the model has it mapped writable just before
    #: (so the store takes no page fault); None: not a write, or the model cannot say
    write_probe: tuple[PageRef, bool] | None = None


@dataclass
class Plan:
    """A scenario ready to run: the steps, the job text, and where the kernel stops."""

    name: str
    scenario: Scenario
    steps: list[Step]
    cutoff: int | None = None  # index of the first statement the kernel does not run
    cutoff_reason: str = ""
    #: the kernel series the job is for (without mTHP, the job sets no mTHP sizes)
    series: Series = SERIES[DEFAULT_SERIES]

    def job(self, tag: str) -> str:
        """The VM job for this scenario (``tag`` names it in the output).

        The second line sets the mTHP sizes: ``mthp`` and the sizes in kB of
        ``config mthp_pages`` when the scenario maps an ``mthp`` mapping (each
        ``hugepages-<size>kB/enabled`` then says ``madvise``), ``mthp -``
        otherwise (every size below the PMD size ``never``, so ``thp``
        mappings fault as they did before mTHP).
        """
        sizes = mthp_sizes_kb(self.scenario) if self.series.mthp else "-"
        lines = [f"scenario {tag}", f"mthp {sizes}"]
        for st in self.steps:
            if self.cutoff is not None and st.index >= self.cutoff:
                break
            if st.command is not None:
                lines.append(f"{st.index} {st.command}")
            for ob in st.observations:
                lines.append(f"{st.index} observe {ob.ref.proc} {ob.id} {ob.addr:x}")
        lines.append("end")
        return "\n".join(lines) + "\n"


def encode_value(v: str) -> str | None:
    """A value as the job writes it: hex bytes, ``-`` for ``0`` (a zero page); None: too long."""
    if v == "0":
        return "-"
    b = v.encode()
    if len(b) > VALUE_BYTES or b"\x00" in b:
        return None
    return b.hex()


def decode_value(h: str) -> str:
    return "0" if h == "-" else bytes.fromhex(h).decode(errors="replace")


def uses_mthp(scenario: Scenario) -> bool:
    """Whether the scenario maps an ``mthp`` mapping."""
    return any(isinstance(st.action, Mmap) and st.action.kind is MapKind.MTHP
               for st in scenario.statements)


def mthp_sizes_kb(scenario: Scenario) -> str:
    """The job's mTHP sizes: ``16,32`` (kB, from ``config mthp_pages``), or ``-`` for none."""
    if not uses_mthp(scenario):
        return "-"
    return ",".join(str(n * PAGE // 1024) for n in scenario.config.mthp_pages)


def _block(kind: MapKind, pages: int) -> int | None:
    if kind in (MapKind.BASE, MapKind.MTHP):
        return 1
    if pages > HUGE_PAGES or HUGE_PAGES % pages:
        return None
    return HUGE_PAGES // pages


#: (job command, None), or (None, why the real kernel cannot run the statement).
Compiled = tuple[str | None, str | None]
#: The job command for each operation class; a statement without one is not expressible.
_COMMANDS: dict[type[Operation], Callable[[_Compiler, Any], Compiled]] = {}
OpT = TypeVar("OpT", bound=Operation)


def _command(cls: type[OpT]) -> Callable[[Callable[[_Compiler, OpT], Compiled]],
                                         Callable[[_Compiler, OpT], Compiled]]:
    """Register the method that writes the guest program's command for ``cls``."""

    def register(fn: Callable[[_Compiler, OpT], Compiled]) -> Callable[[_Compiler, OpT], Compiled]:
        _COMMANDS[cls] = fn
        return fn

    return register


class _Compiler:
    def __init__(self, scenario: Scenario, scheme: Scheme = MAINLINE, mthp: bool = True,
                 odirect_pins: bool = True) -> None:
        self.sc = scenario
        self.scheme = scheme
        self.mthp = mthp
        self.odirect_pins = odirect_pins  # the kernel's O_DIRECT takes a R/O FOLL_PIN
        self.layout: dict[tuple[str, str], Layout] = {}
        self.next_slot = 0
        self.obs_count = 0
        self.handles: set[str] = set()
        self.ro_pins: set[str] = set()  # R/O long-term pins held (each on a gup_test instance)
        self.world: World | None = None  # the model's world before the statement compiled

    def lay(self, ref: PageRef) -> Layout:
        return self.layout[(ref.proc, ref.mapping)]

    def compile(self, op: Op) -> tuple[str | None, str | None]:
        """(job command, None) or (None, reason it cannot be expressed)."""
        fn = _COMMANDS.get(type(op))
        if fn is None:
            return None, NOT_EXPRESSIBLE["statement"]
        return fn(self, op)

    @_command(Spawn)
    def _spawn(self, op: Spawn) -> Compiled:
        return f"spawn {op.proc}", None

    @_command(Mmap)
    def _mmap(self, op: Mmap) -> Compiled:
        pages = self.sc.config.pages_for(op.kind, op.npages)
        block = _block(op.kind, pages)
        if block is None:
            return None, NOT_EXPRESSIBLE["size"]
        if op.kind is MapKind.MTHP and not self.mthp:
            return None, NOT_EXPRESSIBLE["mthp"]
        start = BASE_ADDR + SLOT * self.next_slot
        if op.kind is MapKind.MTHP:
            start += MTHP_OFFSET
        lay = Layout(start, op.kind, pages, block)
        self.next_slot += 1
        self.layout[(op.proc, op.mapping)] = lay
        return f"mmap {op.proc} {lay.addr:x} {lay.length:x} {op.kind.value}", None

    @_command(Fork)
    def _fork(self, op: Fork) -> Compiled:
        for (p, name), lay in list(self.layout.items()):
            if p == op.parent:
                self.layout[(op.child, name)] = lay
        return f"fork {op.parent} {op.child}", None

    @_command(Write)
    def _write(self, op: Write) -> Compiled:
        hx = encode_value(op.value)
        if hx is None:
            return None, NOT_EXPRESSIBLE["value"]
        lay = self.lay(op.page)
        return f"write {op.page.proc} {lay.page_addr(op.page.index):x} {lay.block} {hx}", None

    @_command(Read)
    def _read(self, op: Read) -> Compiled:
        lay = self.lay(op.page)
        return f"read {op.page.proc} {lay.page_addr(op.page.index):x} {lay.block}", None

    @_command(Gup)
    def _gup(self, op: Gup) -> Compiled:
        lay = self.lay(op.page)
        addr = lay.page_addr(op.page.index)
        if not op.pin and not op.write:
            self.handles.add(op.handle)
            return f"get {op.page.proc} {op.handle} {addr:x} {lay.block}", None
        if op.pin and op.write and op.longterm:
            self.handles.add(op.handle)
            return f"pin {op.page.proc} {op.handle} {addr:x} {lay.block}", None
        if op.pin and op.longterm:
            if len(self.ro_pins) == RO_PIN_SLOTS:
                return None, NOT_EXPRESSIBLE["ro-pins"]
            self.ro_pins.add(op.handle)
            self.handles.add(op.handle)
            mode = "fast" if op.fast else "slow"
            odirect = "odirect" if self.odirect_pins and self.world is not None and \
                odirect_pins_alike(self.world, op.page) else "-"
            return (f"rpin {op.page.proc} {op.handle} {addr:x} {lay.block} {mode} {odirect}",
                    None)
        if not op.pin:
            return None, NOT_EXPRESSIBLE["get-rw"]
        return None, NOT_EXPRESSIBLE["pin-short"]

    @_command(HandleWrite)
    def _handle_write(self, op: HandleWrite) -> Compiled:
        hx = encode_value(op.value)
        if hx is None:
            return None, NOT_EXPRESSIBLE["value"]
        return f"hwrite {op.handle} {hx}", None

    @_command(HandleRead)
    def _handle_read(self, op: HandleRead) -> Compiled:
        return f"hread {op.handle}", None

    @_command(Release)
    def _release(self, op: Release) -> Compiled:
        self.ro_pins.discard(op.handle)
        return f"{'unpin' if op.pin else 'put'} {op.handle}", None

    @_command(Mprotect)
    def _mprotect(self, op: Mprotect) -> Compiled:
        lay = self.layout[(op.proc, op.mapping)]
        prot = "rw" if op.write else "ro"
        return f"mprotect {op.proc} {lay.addr:x} {lay.length:x} {prot}", None

    @_command(Madvise)
    def _madvise(self, op: Madvise) -> Compiled:
        lay = self.layout[(op.proc, op.mapping)]
        if op.index is None or op.advice is Advice.COLLAPSE:
            start, length = lay.addr, lay.length
        else:
            start, length = lay.page_addr(op.index), lay.block * PAGE
        return f"madvise {op.proc} {start:x} {length:x} {op.advice.value}", None

    @_command(ClearSoftDirty)
    def _clear_softdirty(self, op: ClearSoftDirty) -> Compiled:
        return f"clearrefs {op.proc}", None

    @_command(Munmap)
    def _munmap(self, op: Munmap) -> Compiled:
        lay = self.layout[(op.proc, op.mapping)]
        return f"munmap {op.proc} {lay.addr:x} {lay.length:x}", None

    @_command(Mremap)
    def _mremap(self, op: Mremap) -> Compiled:
        lay = self.layout[(op.proc, op.mapping)]
        start = BASE_ADDR + SLOT * self.next_slot
        self.next_slot += 1
        moved = Layout(start, MapKind.BASE, lay.npages - op.index, lay.block)
        old = lay.page_addr(op.index)
        self.layout[(op.proc, op.mapping)] = Layout(lay.addr, lay.kind, op.index, lay.block)
        self.layout[(op.proc, op.new)] = moved
        return f"mremap {op.proc} {old:x} {moved.length:x} {start:x}", None

    @_command(Exit)
    def _exit(self, op: Exit) -> Compiled:
        return f"exit {op.proc}", None

    @_command(Ksm)
    def _ksm(self, op: Ksm) -> Compiled:
        a = self.lay(op.first).page_addr(op.first.index)
        b = self.lay(op.second).page_addr(op.second.index)
        return f"ksm {op.first.proc} {a:x} {op.second.proc} {b:x}", None

    @_command(Kernel)
    def _kernel(self, op: Kernel) -> tuple[str | None, str | None]:
        ref, act = op.page, op.action
        lay = self.lay(ref)
        addr = lay.page_addr(ref.index)
        if act is KernelAction.SWAPOUT:
            return f"swapout {ref.proc} {addr:x} {lay.addr:x} {lay.length:x}", None
        if act is KernelAction.MIGRATE:
            return f"migrate {ref.proc} {addr:x}", None
        if act is KernelAction.SPLIT_PMD:
            return f"splitpmd {ref.proc} {lay.addr:x}", None
        if act is KernelAction.SPLIT_FOLIO:
            if lay.kind is MapKind.MTHP:  # only the folio at A[i], as the model
                return f"splitfolio {ref.proc} {addr:x} {PAGE:x}", None
            return f"splitfolio {ref.proc} {lay.addr:x} {lay.length:x}", None
        if act is KernelAction.POISON:
            return f"poison {ref.proc} {addr:x}", None
        if act is KernelAction.SWAPCACHE_DROP:
            return None, NOT_EXPRESSIBLE["swapcache-drop"]
        if act in (KernelAction.MIGRATE_BEGIN, KernelAction.MIGRATE_END):
            return None, NOT_EXPRESSIBLE["migrate-half"]
        return None, NOT_EXPRESSIBLE["device"]

    def observe(self, world: World, ref: PageRef) -> Observation | None:
        lay = self.layout.get((ref.proc, ref.mapping))
        if lay is None or not 0 <= ref.index < lay.npages:
            return None
        self.obs_count += 1
        ps = model.page_state(world, self.scheme, ref)
        folio_pages = None
        if isinstance(ps, model.PageState) and ps.page is not None:
            folio = world.folio(ps.page[0])
            folio_pages = None if folio is None else len(folio.pages)
        return Observation(f"o{self.obs_count}", ref, lay.kind, lay.page_addr(ref.index), ps,
                           folio_pages)


def write_probe(world: World, ref: PageRef) -> tuple[PageRef, bool] | None:
    """Whether the model has ``ref`` mapped writable before a write (so it takes no fault).

    The guest counts the page faults of the write's first store (``getrusage``
    minor plus major faults): none means the entry was present and writable.
    Any other entry (none, swap, migration, read-only, the zero page) faults.
    None when the model cannot say (an error for the page).
    """
    ps = model.page_state(world, MAINLINE, ref)
    if not isinstance(ps, model.PageState):
        return None
    return ref, ps.kind == "present" and bool(ps.writable)


def odirect_pins_alike(world: World, ref: PageRef) -> bool:
    """Whether an O_DIRECT write from ``ref`` does to it what a R/O long-term pin does.

    Without gup_test the guest can still take a R/O FOLL_PIN: an O_DIRECT
    write from the page to a ramdisk (``brd``) pins it read-only
    (``iov_iter_extract_pages``, ``block/bio.c`` and ``lib/iov_iter.c``, 6.12:
    no FOLL_WRITE for a write to the device) for as long as the I/O runs, and
    6.12's ``gup_must_unshare`` (``mm/internal.h``) unshares an anonymous page
    for any R/O FOLL_PIN, short-term or long-term. It does not for the zero
    page (only a long-term pin breaks COW there), and a none entry faults in
    the zero page first, so the stand-in holds where the model has an
    anonymous page: present (not the zero page) or swapped out.
    """
    ps = model.page_state(world, MAINLINE, ref)
    if not isinstance(ps, model.PageState):
        return False
    if ps.kind == "swap":
        return True
    return ps.kind == "present" and ps.page is not None and ps.page[0] != ZERO_FOLIO


def all_pages(world: World) -> list[PageRef]:
    """Every page of every mapping of every process in the model's world, in order."""
    refs = []
    for p in sorted(world.procs, key=lambda p: p.name):
        for v in sorted(p.vmas, key=lambda v: v.name):
            refs += [PageRef(p.name, v.name, i) for i in range(v.npages) if i not in v.holes]
    return refs


def plan(scenario: Scenario, *, deep: bool = True,
         series: Series = SERIES[DEFAULT_SERIES]) -> Plan:
    """Run ``scenario`` on the model and compile it for a VM of the kernel ``series``.

    The model runs under the scheme that stands for the series (``mainline`` for
    6.12, ``lts-6.1`` for 6.1); on a kernel without multi-size THP an ``mthp``
    mapping is not expressible. ``deep``: after every operation, observe every
    page the model knows about (not only the pages ``expect`` and ``show`` name).
    """
    scheme = get_scheme(series.scheme)
    comp = _Compiler(scenario, scheme, series.mthp, series.odirect_pins)
    world = model.initial_world(scenario.config)
    steps: list[Step] = []
    result = Plan(scenario.name, scenario, steps, series=series)
    model_stopped: str | None = None
    for i, st in enumerate(scenario.statements):
        step = Step(i, st)
        steps.append(step)
        action = st.action
        if model_stopped is not None:
            step.model_error = model_stopped
            if result.cutoff is None:
                result.cutoff, result.cutoff_reason = i, model_stopped
            continue
        refs: list[PageRef] = []
        if isinstance(action, ExpectInvariants):
            continue
        if isinstance(action, ExpectState):
            refs.append(action.page)
            for w in action.words:
                if w.other is not None:
                    refs.append(w.other)
                    step.same_pages.append((action.page, w.other))
        elif isinstance(action, Show):
            if action.page is None:
                refs = all_pages(world)
                step.deep = True
            else:
                refs = [action.page]
        else:
            command, why = (None, None)
            if result.cutoff is None:
                comp.world = world
                command, why = comp.compile(action)
            if isinstance(action, Write) and command is not None:
                step.write_probe = write_probe(world, action.page)
            applied = model.apply(world, action, scheme)
            if isinstance(applied, ModelError):
                step.model_error = f"the model refused it: {applied.message}"
                model_stopped = f"the model stopped at line {st.line}"
                if result.cutoff is None:
                    result.cutoff, result.cutoff_reason = i, step.model_error
                continue
            world = applied.world
            step.model_outcome = applied.outcome.word
            step.model_detail = applied.outcome.detail
            if why is not None:
                step.not_expressible = why
                if result.cutoff is None:
                    result.cutoff = i
                    result.cutoff_reason = f"line {st.line} is not expressible: {why}"
            step.command = command
            if deep:
                refs = all_pages(world)
                step.deep = True
        seen: set[PageRef] = set()
        for ref in refs:
            if ref in seen:
                continue
            seen.add(ref)
            ob = comp.observe(world, ref)
            if ob is not None:
                step.observations.append(ob)
    return result
