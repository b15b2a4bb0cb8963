"""Operations: one frozen dataclass per statement of the scenario language.

These are the only way to change a :class:`~anonlib.state.World`. The
scenario parser produces them, the explorer enumerates them, the widgets
offer them, and :func:`anonlib.model.apply` carries them out. Each class
names the scenario statement it stands for; the kernel function it reaches
is named by the transition function that ``apply`` dispatches to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class MapKind(Enum):
    """What backs an anonymous mapping (``P mmap A N|thp|hugetlb``)."""

    BASE = "base"
    THP = "thp"
    HUGETLB = "hugetlb"


class Advice(Enum):
    """The madvise() advice values the model knows."""

    DONTNEED = "dontneed"
    DONTFORK = "dontfork"
    DOFORK = "dofork"
    COLLAPSE = "collapse"


@dataclass(frozen=True)
class PageRef:
    """``A[i]`` in process ``proc``: page ``index`` of mapping ``mapping``."""

    proc: str
    mapping: str
    index: int

    def __str__(self) -> str:
        return f"{self.proc} {self.mapping}[{self.index}]"


@dataclass(frozen=True)
class Spawn:
    """``spawn P``."""

    proc: str


@dataclass(frozen=True)
class Mmap:
    """``P mmap A N`` / ``P mmap A thp`` / ``P mmap A hugetlb``."""

    proc: str
    mapping: str
    kind: MapKind
    npages: int = 0  # for BASE; THP and hugetlb sizes come from the world's config


@dataclass(frozen=True)
class Write:
    """``P write A[i] v``: a CPU store by the process."""

    page: PageRef
    value: str


@dataclass(frozen=True)
class Read:
    """``P read A[i]``: a CPU load by the process."""

    page: PageRef


@dataclass(frozen=True)
class Fork:
    """``P fork Q``."""

    parent: str
    child: str


@dataclass(frozen=True)
class Gup:
    """``P pin|get A[i] ro|rw [longterm] [fast] as H``: get_user_pages()."""

    page: PageRef
    handle: str
    pin: bool  # FOLL_PIN (True) or FOLL_GET (False)
    write: bool  # FOLL_WRITE
    longterm: bool = False  # FOLL_LONGTERM
    fast: bool = False  # try GUP-fast first


@dataclass(frozen=True)
class HandleWrite:
    """``H write v``: a device (or pipe) writes through a R/W reference."""

    handle: str
    value: str


@dataclass(frozen=True)
class HandleRead:
    """``H read``: read the page the reference holds."""

    handle: str


@dataclass(frozen=True)
class Release:
    """``unpin H`` (pin=True) or ``put H`` (pin=False)."""

    handle: str
    pin: bool


@dataclass(frozen=True)
class Mprotect:
    """``P mprotect A ro|rw``."""

    proc: str
    mapping: str
    write: bool


@dataclass(frozen=True)
class Madvise:
    """``P madvise A[i] ADVICE`` (index None: the whole mapping)."""

    proc: str
    mapping: str
    index: int | None
    advice: Advice


@dataclass(frozen=True)
class ClearSoftDirty:
    """``P clear-softdirty``: ``echo 4 > /proc/P/clear_refs``."""

    proc: str


@dataclass(frozen=True)
class Munmap:
    """``P munmap A``."""

    proc: str
    mapping: str


@dataclass(frozen=True)
class Exit:
    """``P exit``."""

    proc: str


class KernelAction(Enum):
    """The ``kernel ...`` statements: work the kernel does behind the processes' backs."""

    SWAPOUT = "swapout"
    SWAPCACHE_DROP = "swapcache-drop"
    MIGRATE = "migrate"
    MIGRATE_BEGIN = "migrate-begin"
    MIGRATE_END = "migrate-end"
    SPLIT_PMD = "split-pmd"
    SPLIT_FOLIO = "split-folio"
    DEVICE_PRIVATE = "device-private"
    DEVICE_PRIVATE_END = "device-private-end"
    DEVICE_EXCLUSIVE = "device-exclusive"
    POISON = "poison"


@dataclass(frozen=True)
class Kernel:
    """``kernel ACTION P A[i]`` (``split-pmd`` / ``split-folio`` name a whole mapping: index 0)."""

    action: KernelAction
    page: PageRef


@dataclass(frozen=True)
class Ksm:
    """``kernel ksm P A[i] Q B[j]``."""

    first: PageRef
    second: PageRef


Op = (
    Spawn
    | Mmap
    | Write
    | Read
    | Fork
    | Gup
    | HandleWrite
    | HandleRead
    | Release
    | Mprotect
    | Madvise
    | ClearSoftDirty
    | Munmap
    | Exit
    | Kernel
    | Ksm
)


def _value(v: str) -> str:
    """A value as the scenario language writes it: bare when it can be, else quoted."""
    import re

    if re.fullmatch(r"[A-Za-z0-9_.:-]+", v):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_text(op: Op) -> str:
    """The scenario-language statement for ``op`` (the inverse of the parser)."""
    if isinstance(op, Spawn):
        return f"spawn {op.proc}"
    if isinstance(op, Mmap):
        size = str(op.npages) if op.kind is MapKind.BASE else op.kind.value
        return f"{op.proc} mmap {op.mapping} {size}"
    if isinstance(op, Write):
        return f"{op.page.proc} write {op.page.mapping}[{op.page.index}] {_value(op.value)}"
    if isinstance(op, Read):
        return f"{op.page.proc} read {op.page.mapping}[{op.page.index}]"
    if isinstance(op, Fork):
        return f"{op.parent} fork {op.child}"
    if isinstance(op, Gup):
        words = [op.page.proc, "pin" if op.pin else "get",
                 f"{op.page.mapping}[{op.page.index}]", "rw" if op.write else "ro"]
        if op.longterm:
            words.append("longterm")
        if op.fast:
            words.append("fast")
        return " ".join(words + ["as", op.handle])
    if isinstance(op, HandleWrite):
        return f"{op.handle} write {_value(op.value)}"
    if isinstance(op, HandleRead):
        return f"{op.handle} read"
    if isinstance(op, Release):
        return f"{'unpin' if op.pin else 'put'} {op.handle}"
    if isinstance(op, Mprotect):
        return f"{op.proc} mprotect {op.mapping} {'rw' if op.write else 'ro'}"
    if isinstance(op, Madvise):
        where = op.mapping if op.index is None else f"{op.mapping}[{op.index}]"
        return f"{op.proc} madvise {where} {op.advice.value}"
    if isinstance(op, ClearSoftDirty):
        return f"{op.proc} clear-softdirty"
    if isinstance(op, Munmap):
        return f"{op.proc} munmap {op.mapping}"
    if isinstance(op, Exit):
        return f"{op.proc} exit"
    if isinstance(op, Kernel):
        ref = op.page
        if op.action in (KernelAction.SPLIT_PMD, KernelAction.SPLIT_FOLIO):
            return f"kernel {op.action.value} {ref.proc} {ref.mapping}"
        return f"kernel {op.action.value} {ref.proc} {ref.mapping}[{ref.index}]"
    if isinstance(op, Ksm):
        a, b = op.first, op.second
        return f"kernel ksm {a.proc} {a.mapping}[{a.index}] {b.proc} {b.mapping}[{b.index}]"
    raise TypeError(f"not an operation: {op!r}")  # pragma: no cover
