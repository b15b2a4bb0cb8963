"""Operations: one frozen dataclass per statement of the scenario language.

These are the only way to change a :class:`~anonlib.state.World`. Each class
is the one home of its statement:

* its **syntax**: the words that select it (:attr:`Operation.subject` and
  :attr:`Operation.verbs`), the words it reserves, how its arguments are read
  (:meth:`Operation.read`, through the parser's :class:`Reader`) and how it is
  written back (:meth:`Operation.text`);
* its **family** for the explorer's ``--ops`` and the coverage rows
  (:meth:`Operation.family`, :meth:`Operation.label`);
* what it **touches** (:meth:`Operation.scope`) and the names it creates
  (:meth:`Operation.new_names`), for the coverage columns and the widgets;
* its **flag effect** (:meth:`Operation.effect`): whether it may clear
  PG_anon_exclusive and how it may set it, which the invariants INV-7 to INV-9
  read.

Defining a subclass registers it in :data:`STATEMENTS`, in the order of
definition; the parser, :func:`anonlib.model.apply` (a table of transitions,
one per class), the explorer's alphabet, the widgets and the kernel check's
plan read the registry. ``docs/architecture.md`` has the recipe for adding a
statement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, NoReturn, Protocol

#: Largest mapping the parser accepts, in pages (the real PMD THP has 512 subpages).
MAX_PAGES = 512
#: mTHP sizes: orders 2 to 8 of a 512-page PMD (there is no anonymous order-1 folio).
MTHP_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)


class MapKind(Enum):
    """What backs an anonymous mapping (``P mmap A N|thp|hugetlb|mthp``, ``P mmap A N mthp``)."""

    BASE = "base"
    THP = "thp"
    HUGETLB = "hugetlb"
    MTHP = "mthp"  # faults allocate mTHP folios of the enabled sizes, mapped by PTEs


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


# ---------------------------------------------------------------- what an operation touches


@dataclass(frozen=True)
class Scope:
    """The virtual pages an operation acts on, as the world before it names them.

    ``pages``: the pages it names; ``mapping``: every page of one mapping
    (process, mapping); ``process``: every page of a process; ``handle``: the
    page a GUP reference was taken at. An operation fills one of them.
    """

    pages: tuple[PageRef, ...] = ()
    mapping: tuple[str, str] | None = None
    process: str | None = None
    handle: str | None = None


class Clears(Enum):
    """May the operation clear PG_anon_exclusive on a page (INV-7)?"""

    NEVER = "never"
    MAY = "may"  # fork, faults (which may finish a migration), the unmap side of the kernel
    SWAPCACHE = "swapcache"  # only on a folio in the swap cache (memory failure)


class Sets(Enum):
    """How the operation may set PG_anon_exclusive on an existing page (INV-8, INV-9)."""

    NEVER = "never"  # never, not even after the other sharer is gone (INV-9)
    CARRIED = "carried"  # only from an entry that carried exclusivity (swap bit, migration)
    FAULT = "fault"  # also on the page it faults on, once exclusivity is proven


@dataclass(frozen=True)
class Effect:
    """An operation's effect on the flag, as the invariants check it."""

    clears: Clears
    sets: Sets


NO_EFFECT = Effect(Clears.NEVER, Sets.NEVER)
FAULT = Effect(Clears.MAY, Sets.FAULT)


# ---------------------------------------------------------------- how the parser reads one


class Word(Protocol):
    """One word of a scenario line, as the parser's tokenizer gives it."""

    @property
    def text(self) -> str: ...  # its value: no quotes, no escapes

    @property
    def column(self) -> int: ...

    @property
    def raw(self) -> str: ...  # as written

    @property
    def quoted(self) -> bool: ...

    @property
    def end(self) -> int: ...  # the column just after it


class Reader(Protocol):
    """What :meth:`Operation.read` may ask of the parser.

    The parser follows the names a scenario creates; these methods check a
    word against them (raising the parser's error, with the word's column, when
    it is wrong) and record what a statement creates or ends.
    """

    def fail(self, column: int, message: str) -> NoReturn:
        """Reject the statement: ``message`` at ``column``."""
        ...

    def quote(self, text: str) -> str:
        """A word quoted for a message, cut to a bounded length."""
        ...

    def suggest(self, word: str, known: Sequence[str]) -> str:
        """`` did you mean 'x'?`` for the nearest of ``known``, or nothing."""
        ...

    def args(self, tokens: list[Word], count: int, missing: str, start: int = 1) -> list[Word]:
        """Exactly ``count`` words after ``tokens[:start]`` (else: missing / unexpected)."""
        ...

    def is_page(self, tok: Word) -> bool:
        """Is the word written as a page, ``A[i]``?"""
        ...

    def number(self, tok: Word) -> int | None:
        """The word as a small number (unquoted ASCII digits), or None."""
        ...

    def value(self, tok: Word) -> str:
        """The word as a value a process or device writes."""
        ...

    def proc(self, tok: Word) -> str:
        """An existing process."""
        ...

    def new_proc(self, tok: Word, parent: str | None = None) -> str:
        """A new process (a fork child, with ``parent``'s mappings); recorded."""
        ...

    def exit(self, proc: str) -> None:
        """Record that ``proc`` exits: its name is never used again."""
        ...

    def mapping(self, tok: Word, proc: str) -> str:
        """A mapping ``proc`` has."""
        ...

    def new_mapping_name(self, tok: Word, proc: str) -> str:
        """A name for a new mapping of ``proc`` (not one it has)."""
        ...

    def map(self, proc: str, name: str, kind: MapKind, npages: int) -> None:
        """Record a new mapping of ``npages`` pages."""
        ...

    def unmap(self, proc: str, name: str) -> None:
        """Record that ``proc`` unmaps ``name``."""
        ...

    def mapping_pages(self, proc: str, name: str) -> int:
        """How many pages mapping ``name`` of ``proc`` has now."""
        ...

    def resize(self, proc: str, name: str, npages: int) -> None:
        """Record that mapping ``name`` of ``proc`` now has ``npages`` pages."""
        ...

    def pages_for(self, kind: MapKind) -> int:
        """Pages of a THP or hugetlb mapping, as the scenario's config sets them."""
        ...

    def page(self, tok: Word, proc: str) -> PageRef:
        """A page ``A[i]`` of a mapping ``proc`` has, in range."""
        ...

    def handle(self, tok: Word) -> str:
        """A live GUP reference."""
        ...

    def new_handle(self, tok: Word, owner: str, pin: bool, write: bool) -> str:
        """A name for a new reference taken by ``owner``; recorded."""
        ...

    def handle_taken(self, name: str) -> tuple[bool, bool, int]:
        """How a live reference was taken: (pin, write, line)."""
        ...

    def release(self, name: str) -> None:
        """Record that the reference is released."""
        ...


class Subject(Enum):
    """What a statement starts with; with the verb, it selects the operation."""

    STARTER = "starter"  # the verb itself: 'spawn P', 'unpin H'
    PROCESS = "process"  # a process, then the verb: 'P write A[0] x'
    HANDLE = "handle"  # a reference, then the verb: 'H read'
    KERNEL = "kernel"  # 'kernel', then the verb: 'kernel swapout P A[0]'


# ---------------------------------------------------------------- the registry


class Statements:
    """Every operation class, in the order of definition, and the tables read from them."""

    def __init__(self) -> None:
        self._classes: list[type[Operation]] = []

    def add(self, cls: type[Operation]) -> None:
        """Register ``cls`` (a subclass of :class:`Operation` does so when it is defined)."""
        for other in self._classes:
            if other.subject is cls.subject and set(other.verbs) & set(cls.verbs):
                raise ValueError(f"{cls.__name__} and {other.__name__} share a verb "
                                 f"{sorted(set(other.verbs) & set(cls.verbs))}")
        self._classes.append(cls)

    def remove(self, cls: type[Operation]) -> None:
        """Take ``cls`` out again (a test that defines a statement of its own does)."""
        self._classes.remove(cls)

    def classes(self) -> tuple[type[Operation], ...]:
        return tuple(self._classes)

    def verbs(self, subject: Subject) -> dict[str, type[Operation]]:
        """Verb -> class for the statements that start with ``subject``, in order."""
        return {v: c for c in self._classes if c.subject is subject for v in c.verbs}

    def families(self, group: str | None = None) -> tuple[str, ...]:
        """The explorer's operation families, in order: of one ``--ops`` group, or all."""
        if group is None:
            return tuple(f for g in GROUPS for f in self.families(g))
        return tuple(f for c in self._classes if c.explored and c.group == group
                     for f in c.families)

    def keywords(self) -> frozenset[str]:
        """Every verb and reserved word of every statement."""
        return frozenset(w for c in self._classes for w in (*c.verbs, *c.keywords))


STATEMENTS = Statements()
#: The groups of families, in the order ``--ops`` lists them.
GROUPS = ("process", "handle", "kernel")


class Operation:
    """A statement of the scenario language, carried out by :func:`anonlib.model.apply`."""

    #: What the statement starts with, and the verbs that select this class.
    subject: ClassVar[Subject]
    verbs: ClassVar[tuple[str, ...]]
    #: Further words the statement reserves (no process, mapping or handle may be named so).
    keywords: ClassVar[tuple[str, ...]] = ()
    #: The explorer's families for this statement; ``explored``: does the explorer try it?
    families: ClassVar[tuple[str, ...]] = ()
    explored: ClassVar[bool] = True
    #: The ``--ops`` group of its families: "process", "handle" or "kernel".
    group: ClassVar[str] = "process"

    def __init_subclass__(cls, register: bool = True, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            STATEMENTS.add(cls)

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Operation:
        """Read the statement: ``tokens`` is the whole line (without an ``expect`` suffix),
        ``subject`` the process or handle it starts with ('' for the other subjects)."""
        raise NotImplementedError(cls.__name__)

    def text(self) -> str:
        """The statement, as the parser reads it back."""
        raise NotImplementedError(type(self).__name__)

    def family(self) -> str:
        """The explorer family this operation belongs to."""
        return self.families[0]

    def label(self) -> str:
        """The coverage table's row: the statement without names and values."""
        return self.family()

    def scope(self) -> Scope:
        """The pages it acts on."""
        raise NotImplementedError(type(self).__name__)

    def effect(self) -> Effect:
        """What it may do to PG_anon_exclusive."""
        return NO_EFFECT

    def new_names(self) -> tuple[str, ...]:
        """The names it creates: processes, references, and mappings as ``'P A'``."""
        return ()


def _value(v: str) -> str:
    """A value as the scenario language writes it: bare when it can be, else quoted."""
    if re.fullmatch(r"[A-Za-z0-9_.:-]+", v):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mode(r: Reader, tok: Word, usage: str = "") -> bool:
    """``ro`` (False) or ``rw`` (True)."""
    if tok.quoted or tok.text not in ("ro", "rw"):
        r.fail(tok.column, f"expected ro or rw, not {r.quote(tok.raw)}{usage}")
    return tok.text == "rw"


def _whole(r: Reader, tok: Word, message: str) -> None:
    """Refuse a page where the statement takes a whole mapping."""
    if r.is_page(tok):
        r.fail(tok.column, message)


# ---------------------------------------------------------------- the statements


@dataclass(frozen=True)
class Spawn(Operation):
    """``spawn P``."""

    subject = Subject.STARTER
    verbs = ("spawn",)
    families = ("spawn",)
    explored = False

    proc: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Spawn:
        (name,) = r.args(tokens, 1, "the new process's name: 'spawn P'")
        return cls(r.new_proc(name))

    def text(self) -> str:
        return f"spawn {self.proc}"

    def scope(self) -> Scope:
        return Scope(process=self.proc)

    def new_names(self) -> tuple[str, ...]:
        return (self.proc,)


@dataclass(frozen=True)
class Mmap(Operation):
    """``P mmap A N`` / ``P mmap A thp`` / ``P mmap A hugetlb`` / ``P mmap A [N] mthp``."""

    subject = Subject.PROCESS
    verbs = ("mmap",)
    keywords = ("thp", "hugetlb", "mthp")
    families = ("mmap",)
    explored = False

    proc: str
    mapping: str
    kind: MapKind
    #: for BASE, and for MTHP when given; THP, hugetlb and a bare ``mthp`` take their
    #: size from the world's config
    npages: int = 0

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Mmap:
        sizes = "'P mmap A 4', 'thp', 'hugetlb', 'mthp' or '4 mthp'"
        last = tokens[-1] if len(tokens) == 5 else None
        if last is not None and not last.quoted and last.text == "mthp":
            name_tok, size = tokens[2], tokens[3]
        else:
            name_tok, size = r.args(tokens, 2, f"the mapping name and its size: {sizes}",
                                    start=2)
        name = r.new_mapping_name(name_tok, subject)
        if size.text in ("thp", "hugetlb", "mthp") and not size.quoted and last is None:
            kind = MapKind(size.text)
            r.map(subject, name, kind, r.pages_for(kind))
            return cls(subject, name, kind)
        npages = r.number(size)
        if npages is None or not 1 <= npages <= MAX_PAGES:
            r.fail(size.column, f"the size must be a number of pages from 1 to {MAX_PAGES}, "
                                f"'thp', 'hugetlb' or 'mthp', not {r.quote(size.raw)}")
        kind = MapKind.MTHP if last is not None else MapKind.BASE
        r.map(subject, name, kind, npages)
        return cls(subject, name, kind, npages)

    def text(self) -> str:
        if self.kind is MapKind.BASE:
            size = str(self.npages)
        elif self.kind is MapKind.MTHP and self.npages:
            size = f"{self.npages} mthp"
        else:
            size = self.kind.value
        return f"{self.proc} mmap {self.mapping} {size}"

    def scope(self) -> Scope:
        return Scope(mapping=(self.proc, self.mapping))

    def new_names(self) -> tuple[str, ...]:
        return (f"{self.proc} {self.mapping}",)


@dataclass(frozen=True)
class Write(Operation):
    """``P write A[i] v``: a CPU store by the process."""

    subject = Subject.PROCESS
    verbs = ("write",)
    families = ("write",)

    page: PageRef
    value: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Write:
        if len(tokens) == 3:
            r.fail(tokens[2].end + 1, "missing the value to write: 'P write A[0] v'")
        page, value = r.args(tokens, 2, "the page and the value: 'P write A[0] v'", start=2)
        return cls(r.page(page, subject), r.value(value))

    def text(self) -> str:
        p = self.page
        return f"{p.proc} write {p.mapping}[{p.index}] {_value(self.value)}"

    def scope(self) -> Scope:
        return Scope(pages=(self.page,))

    def effect(self) -> Effect:
        return FAULT


@dataclass(frozen=True)
class Read(Operation):
    """``P read A[i]``: a CPU load by the process."""

    subject = Subject.PROCESS
    verbs = ("read",)
    families = ("read",)

    page: PageRef

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Read:
        (page,) = r.args(tokens, 1, "the page: 'P read A[0]'", start=2)
        return cls(r.page(page, subject))

    def text(self) -> str:
        return f"{self.page.proc} read {self.page.mapping}[{self.page.index}]"

    def scope(self) -> Scope:
        return Scope(pages=(self.page,))

    def effect(self) -> Effect:
        return FAULT


@dataclass(frozen=True)
class Fork(Operation):
    """``P fork Q``."""

    subject = Subject.PROCESS
    verbs = ("fork",)
    families = ("fork",)

    parent: str
    child: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Fork:
        (child,) = r.args(tokens, 1, "the child's name: 'P fork Q'", start=2)
        return cls(subject, r.new_proc(child, parent=subject))

    def text(self) -> str:
        return f"{self.parent} fork {self.child}"

    def scope(self) -> Scope:
        return Scope(process=self.parent)

    def effect(self) -> Effect:
        return Effect(Clears.MAY, Sets.NEVER)

    def new_names(self) -> tuple[str, ...]:
        return (self.child,)


@dataclass(frozen=True)
class Gup(Operation):
    """``P pin|get A[i] ro|rw [longterm] [fast] as H``: get_user_pages()."""

    subject = Subject.PROCESS
    verbs = ("pin", "get")
    keywords = ("ro", "rw", "longterm", "fast", "as")
    families = ("pin-ro", "pin-rw", "get-ro", "get-rw")

    page: PageRef
    handle: str
    pin: bool  # FOLL_PIN (True) or FOLL_GET (False)
    write: bool  # FOLL_WRITE
    longterm: bool = False  # FOLL_LONGTERM
    fast: bool = False  # try GUP-fast first

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Gup:
        verb = tokens[1].text
        pin = verb == "pin"
        usage = f"'P {verb} A[i] ro|rw {'[longterm] ' if pin else ''}[fast] as H'"
        if len(tokens) < 3:
            r.fail(tokens[-1].end + 1, f"missing the page: {usage}")
        page = r.page(tokens[2], subject)
        if len(tokens) < 4:
            r.fail(tokens[-1].end + 1, f"missing ro or rw after the page: {usage}")
        write = _mode(r, tokens[3], f": {usage}")
        flags: dict[str, bool] = {"longterm": False, "fast": False}
        i = 4
        while i < len(tokens) and not tokens[i].quoted and tokens[i].text in flags:
            t = tokens[i]
            if t.text == "longterm" and not pin:
                r.fail(t.column, "'longterm' applies to 'pin' (FOLL_LONGTERM needs FOLL_PIN)")
            if flags[t.text]:
                r.fail(t.column, f"{r.quote(t.text)} is repeated")
            flags[t.text] = True
            i += 1
        if i >= len(tokens):
            r.fail(tokens[-1].end + 1, f"missing 'as H' to name the reference: {usage}")
        if tokens[i].text != "as" or tokens[i].quoted:
            r.fail(tokens[i].column, f"expected 'as H', not {r.quote(tokens[i].raw)}: {usage}")
        if i + 1 >= len(tokens):
            r.fail(tokens[i].end + 1, f"missing the handle's name after 'as': {usage}")
        if i + 2 < len(tokens):
            r.fail(tokens[i + 2].column,
                   f"unexpected {r.quote(tokens[i + 2].raw)} after the handle's name")
        handle = r.new_handle(tokens[i + 1], subject, pin, write)
        return cls(page, handle, pin, write, flags["longterm"], flags["fast"])

    def _flags(self) -> list[str]:
        return ["longterm"] * self.longterm + ["fast"] * self.fast

    def text(self) -> str:
        words = [self.page.proc, "pin" if self.pin else "get",
                 f"{self.page.mapping}[{self.page.index}]", "rw" if self.write else "ro"]
        return " ".join(words + self._flags() + ["as", self.handle])

    def family(self) -> str:
        return ("pin-" if self.pin else "get-") + ("rw" if self.write else "ro")

    def label(self) -> str:
        return " ".join(["pin" if self.pin else "get", "rw" if self.write else "ro",
                         *self._flags()])

    def scope(self) -> Scope:
        return Scope(pages=(self.page,))

    def effect(self) -> Effect:
        return FAULT

    def new_names(self) -> tuple[str, ...]:
        return (self.handle,)


@dataclass(frozen=True)
class HandleRead(Operation):
    """``H read``: read the page the reference holds."""

    group = "handle"
    subject = Subject.HANDLE
    verbs = ("read",)
    families = ("handle-read",)

    handle: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> HandleRead:
        r.args(tokens, 0, "", start=2)
        return cls(subject)

    def text(self) -> str:
        return f"{self.handle} read"

    def label(self) -> str:
        return "H read"

    def scope(self) -> Scope:
        return Scope(handle=self.handle)


@dataclass(frozen=True)
class HandleWrite(Operation):
    """``H write v``: a device (or pipe) writes through a R/W reference."""

    group = "handle"
    subject = Subject.HANDLE
    verbs = ("write",)
    families = ("handle-write",)

    handle: str
    value: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> HandleWrite:
        (value,) = r.args(tokens, 1, "the value: 'H write v'", start=2)
        _pin, write, line = r.handle_taken(subject)
        if not write:
            r.fail(tokens[1].column,
                   f"handle '{subject}' is read-only (taken 'ro' at line {line}); only a 'rw' "
                   "reference can write")
        return cls(subject, r.value(value))

    def text(self) -> str:
        return f"{self.handle} write {_value(self.value)}"

    def label(self) -> str:
        return "H write"

    def scope(self) -> Scope:
        return Scope(handle=self.handle)


@dataclass(frozen=True)
class Release(Operation):
    """``unpin H`` (pin=True) or ``put H`` (pin=False)."""

    group = "handle"
    subject = Subject.STARTER
    verbs = ("unpin", "put")
    families = ("unpin", "put")

    handle: str
    pin: bool

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Release:
        head = tokens[0]
        (name,) = r.args(tokens, 1, f"the handle: '{head.text} H'")
        handle = r.handle(name)
        took_pin, _write, line = r.handle_taken(handle)
        pin = head.text == "unpin"
        if pin != took_pin:
            took, use = ("pin", "unpin") if took_pin else ("get", "put")
            r.fail(head.column,
                   f"{r.quote(head.text)} cannot release '{handle}': it was taken with "
                   f"'{took}' at line {line}; use '{use} {handle}'")
        r.release(handle)
        return cls(handle, pin)

    def text(self) -> str:
        return f"{'unpin' if self.pin else 'put'} {self.handle}"

    def family(self) -> str:
        return "unpin" if self.pin else "put"

    def scope(self) -> Scope:
        return Scope(handle=self.handle)


@dataclass(frozen=True)
class Mprotect(Operation):
    """``P mprotect A ro|rw``."""

    subject = Subject.PROCESS
    verbs = ("mprotect",)
    keywords = ("ro", "rw")
    families = ("mprotect",)

    proc: str
    mapping: str
    write: bool

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Mprotect:
        mapping, mode = r.args(tokens, 2, "the mapping and ro or rw: 'P mprotect A ro'", start=2)
        _whole(r, mapping, "mprotect takes a whole mapping: 'P mprotect A ro|rw'")
        name = r.mapping(mapping, subject)
        return cls(subject, name, _mode(r, mode))

    def text(self) -> str:
        return f"{self.proc} mprotect {self.mapping} {'rw' if self.write else 'ro'}"

    def label(self) -> str:
        return f"mprotect {'rw' if self.write else 'ro'}"

    def scope(self) -> Scope:
        return Scope(mapping=(self.proc, self.mapping))


@dataclass(frozen=True)
class Madvise(Operation):
    """``P madvise A[i] ADVICE`` (index None: the whole mapping)."""

    subject = Subject.PROCESS
    verbs = ("madvise",)
    keywords = tuple(a.value for a in Advice)
    families = ("madvise",)

    proc: str
    mapping: str
    index: int | None
    advice: Advice

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Madvise:
        target, word = r.args(
            tokens, 2, "the page (or mapping) and the advice: 'P madvise A[0] dontneed'", start=2
        )
        known = [a.value for a in Advice]
        if word.quoted or word.text not in known:
            hint = r.suggest(word.text, known)
            r.fail(word.column,
                   f"unknown advice {r.quote(word.raw)};{hint} advice: {', '.join(known)}")
        advice = Advice(word.text)
        if r.is_page(target) and not target.quoted:
            if advice is Advice.COLLAPSE:
                r.fail(target.column, "collapse applies to a whole mapping: 'P madvise A collapse'")
            page = r.page(target, subject)
            return cls(subject, page.mapping, page.index, advice)
        return cls(subject, r.mapping(target, subject), None, advice)

    def text(self) -> str:
        where = self.mapping if self.index is None else f"{self.mapping}[{self.index}]"
        return f"{self.proc} madvise {where} {self.advice.value}"

    def label(self) -> str:
        whole = self.index is None and self.advice is not Advice.COLLAPSE
        return f"madvise {self.advice.value}" + (" (whole)" if whole else "")

    def scope(self) -> Scope:
        if self.index is None:
            return Scope(mapping=(self.proc, self.mapping))
        return Scope(pages=(PageRef(self.proc, self.mapping, self.index),))


@dataclass(frozen=True)
class ClearSoftDirty(Operation):
    """``P clear-softdirty``: ``echo 4 > /proc/P/clear_refs``."""

    subject = Subject.PROCESS
    verbs = ("clear-softdirty",)
    families = ("clear-softdirty",)

    proc: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> ClearSoftDirty:
        r.args(tokens, 0, "", start=2)
        return cls(subject)

    def text(self) -> str:
        return f"{self.proc} clear-softdirty"

    def scope(self) -> Scope:
        return Scope(process=self.proc)


@dataclass(frozen=True)
class Munmap(Operation):
    """``P munmap A``."""

    subject = Subject.PROCESS
    verbs = ("munmap",)
    families = ("munmap",)

    proc: str
    mapping: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Munmap:
        (mapping,) = r.args(tokens, 1, "the mapping: 'P munmap A'", start=2)
        _whole(r, mapping, "munmap takes a whole mapping: 'P munmap A'")
        name = r.mapping(mapping, subject)
        r.unmap(subject, name)
        return cls(subject, name)

    def text(self) -> str:
        return f"{self.proc} munmap {self.mapping}"

    def scope(self) -> Scope:
        return Scope(mapping=(self.proc, self.mapping))


@dataclass(frozen=True)
class Mremap(Operation):
    """``P mremap A[i] B``: move pages ``i`` to the end of mapping ``A`` to a new mapping ``B``.

    mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of the tail of a mapping to an address
    nothing else uses, as ``cow.c``'s "partially mremap()'ed THP" does. The
    explorer does not try it (no alphabet rule): on the flag its effect is a PMD
    split and entries moving with their bits, both of which the explorer covers.
    """

    subject = Subject.PROCESS
    verbs = ("mremap",)
    families = ("mremap",)
    explored = False

    proc: str
    mapping: str
    index: int
    new: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Mremap:
        page_tok, new_tok = r.args(tokens, 2, "the first page to move and the new mapping's "
                                              "name: 'P mremap A[2] B'", start=2)
        page = r.page(page_tok, subject)
        if page.index == 0:
            r.fail(page_tok.column, "mremap moves the tail of a mapping: name its first page "
                                    "to move, from A[1] on ('P munmap' and 'P mmap' move all)")
        new = r.new_mapping_name(new_tok, subject)
        size = r.mapping_pages(subject, page.mapping)
        r.resize(subject, page.mapping, page.index)
        r.map(subject, new, MapKind.BASE, size - page.index)
        return cls(subject, page.mapping, page.index, new)

    def text(self) -> str:
        return f"{self.proc} mremap {self.mapping}[{self.index}] {self.new}"

    def scope(self) -> Scope:
        return Scope(mapping=(self.proc, self.mapping))

    def effect(self) -> Effect:
        # the PMD split carries the head's flag to every subpage; nothing is cleared
        return Effect(Clears.NEVER, Sets.CARRIED)

    def new_names(self) -> tuple[str, ...]:
        return (f"{self.proc} {self.new}",)


@dataclass(frozen=True)
class Exit(Operation):
    """``P exit``."""

    subject = Subject.PROCESS
    verbs = ("exit",)
    families = ("exit",)

    proc: str

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Exit:
        r.args(tokens, 0, "", start=2)
        r.exit(subject)
        return cls(subject)

    def text(self) -> str:
        return f"{self.proc} exit"

    def scope(self) -> Scope:
        return Scope(process=self.proc)


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

    @property
    def whole_mapping(self) -> bool:
        """Does the action name a whole mapping (``kernel split-pmd P A``) instead of a page?"""
        return self in (KernelAction.SPLIT_PMD, KernelAction.SPLIT_FOLIO)

    @property
    def effect(self) -> Effect:
        """What the action may do to the flag (see :class:`Effect`)."""
        return _ACTION_EFFECT[self]


_ACTION_EFFECT: dict[KernelAction, Effect] = {
    # the unmap side: swap-out and migration share the page, device-private migration
    # moves the flag into the entry, a folio split carries it through migration entries
    KernelAction.SWAPOUT: Effect(Clears.MAY, Sets.CARRIED),
    KernelAction.MIGRATE_BEGIN: Effect(Clears.MAY, Sets.CARRIED),
    KernelAction.DEVICE_PRIVATE: Effect(Clears.MAY, Sets.CARRIED),
    KernelAction.SPLIT_FOLIO: Effect(Clears.MAY, Sets.CARRIED),
    # a whole migration unmaps and maps back: a fault-like restore on the page
    KernelAction.MIGRATE: Effect(Clears.MAY, Sets.FAULT),
    # the restore side, and a device-exclusive grab (a fault by the device)
    KernelAction.MIGRATE_END: Effect(Clears.NEVER, Sets.FAULT),
    KernelAction.DEVICE_EXCLUSIVE: Effect(Clears.NEVER, Sets.FAULT),
    KernelAction.SWAPCACHE_DROP: Effect(Clears.NEVER, Sets.CARRIED),
    KernelAction.SPLIT_PMD: Effect(Clears.NEVER, Sets.CARRIED),
    KernelAction.DEVICE_PRIVATE_END: Effect(Clears.NEVER, Sets.CARRIED),
    # memory failure leaves the flag stale, but unmaps a swap-cache folio as swap-out does
    KernelAction.POISON: Effect(Clears.SWAPCACHE, Sets.CARRIED),
}


@dataclass(frozen=True)
class Kernel(Operation):
    """``kernel ACTION P A[i]`` (``split-pmd`` / ``split-folio`` name a whole mapping: index 0)."""

    group = "kernel"
    subject = Subject.KERNEL
    verbs = tuple(a.value for a in KernelAction if not a.whole_mapping) + tuple(
        a.value for a in KernelAction if a.whole_mapping)
    families = tuple(a.value for a in KernelAction)

    action: KernelAction
    page: PageRef

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Kernel:
        action = KernelAction(tokens[1].text)
        if action.whole_mapping:
            p, a = r.args(tokens, 2, f"the mapping: 'kernel {action.value} P A'", start=2)
            proc = r.proc(p)
            if r.is_page(a) and not a.quoted:
                return cls(action, r.page(a, proc))
            return cls(action, PageRef(proc, r.mapping(a, proc), 0))
        p, a = r.args(tokens, 2, f"the page: 'kernel {action.value} P A[i]'", start=2)
        return cls(action, r.page(a, r.proc(p)))

    def text(self) -> str:
        ref = self.page
        if self.action.whole_mapping:
            return f"kernel {self.action.value} {ref.proc} {ref.mapping}"
        return f"kernel {self.action.value} {ref.proc} {ref.mapping}[{ref.index}]"

    def family(self) -> str:
        return self.action.value

    def label(self) -> str:
        return f"kernel {self.action.value}"

    def scope(self) -> Scope:
        if self.action.whole_mapping:
            return Scope(mapping=(self.page.proc, self.page.mapping))
        return Scope(pages=(self.page,))

    def effect(self) -> Effect:
        return self.action.effect


@dataclass(frozen=True)
class Ksm(Operation):
    """``kernel ksm P A[i] Q B[j]``."""

    group = "kernel"
    subject = Subject.KERNEL
    verbs = ("ksm",)
    families = ("ksm",)

    first: PageRef
    second: PageRef

    @classmethod
    def read(cls, r: Reader, subject: str, tokens: list[Word]) -> Ksm:
        p, a, q, b = r.args(tokens, 4, "two pages: 'kernel ksm P A[i] Q B[j]'", start=2)
        return cls(r.page(a, r.proc(p)), r.page(b, r.proc(q)))

    def text(self) -> str:
        a, b = self.first, self.second
        return f"kernel ksm {a.proc} {a.mapping}[{a.index}] {b.proc} {b.mapping}[{b.index}]"

    def label(self) -> str:
        return "kernel ksm"

    def scope(self) -> Scope:
        return Scope(pages=(self.first, self.second))

    def effect(self) -> Effect:
        return Effect(Clears.MAY, Sets.NEVER)


#: Any operation (every registered statement is a subclass).
Op = Operation


def to_text(op: Operation) -> str:
    """The scenario-language statement for ``op`` (the inverse of the parser)."""
    return op.text()
