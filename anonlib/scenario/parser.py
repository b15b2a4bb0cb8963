"""Scenario text to :class:`~anonlib.scenario.syntax.Scenario`, or a precise error.

The grammar is the contract in ``docs/scenario-language.md``. Besides syntax,
the parser checks what can be known without running the model: names against
keywords, unknown processes, mappings and handles (it follows ``spawn``,
``fork``, ``mmap`` and ``as H``; a fork child inherits its parent's mapping
names), pages out of range (mapping sizes are known from ``mmap`` and
``config``), ``H write`` on a read-only reference, ``unpin`` of a ``get``
reference and ``put`` of a pin, the header's place and values, and that a process name is
not used again after its ``exit``. Anything else that depends on the state (an
operation of a process that has exited, a GUP that failed) is left to the model.

A line ends at ``\n`` or ``\r\n`` only; words are separated by spaces and
tabs, and any other control, separator or invisible character outside a
comment is an error naming its code point. Numbers are ASCII digits. The
limits (name length, sizes, how much of a word a message quotes) are listed
in ``docs/limits.md``.

Errors are values: :func:`parse` returns a :class:`ScenarioError` naming the
line and column; it raises nothing for bad input.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NoReturn

from ..ops import MAX_PAGES, MTHP_SIZES, STATEMENTS, MapKind, Op, PageRef, Subject, Word
from ..schemes import SCHEMES, Scheme
from ..state import Config
from .source import BOM, clip
from .syntax import (
    KIND_WORDS,
    PAIRED_WORDS,
    STATE_WORDS,
    Check,
    ExpectInvariants,
    ExpectState,
    InputError,
    Scenario,
    ScenarioError,
    Show,
    Statement,
    StateWord,
)

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VALUE_RE = re.compile(r"[A-Za-z0-9_.:-]+")
PAGE_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[([0-9]+)\]")

#: Longest name of a process, mapping or handle.
MAX_NAME = 64
MAX_SWAP_SLOTS = 4096

#: Verbs of the statements that start with a process, with a handle, with ``kernel``,
#: and the statements' first words, read from the registry of operations.
PROCESS_VERBS: tuple[str, ...] = tuple(STATEMENTS.verbs(Subject.PROCESS))
HANDLE_VERBS: tuple[str, ...] = tuple(STATEMENTS.verbs(Subject.HANDLE))
KERNEL_ACTIONS: tuple[str, ...] = tuple(STATEMENTS.verbs(Subject.KERNEL))
#: Words that start a statement other than an operation: the header and the checks.
HEADER_WORDS: tuple[str, ...] = ("scheme", "config", "show", "expect", "for")
CONFIG_KEYS: tuple[str, ...] = ("thp_pages", "hugetlb_pages", "swap_slots", "mthp_pages")


def starters() -> tuple[str, ...]:
    """The words a statement can start with (besides a process or handle name), in order."""
    kernel = ("kernel",) if STATEMENTS.verbs(Subject.KERNEL) else ()
    return (*HEADER_WORDS, *STATEMENTS.verbs(Subject.STARTER), *kernel)


def keywords() -> frozenset[str]:
    """Words of the language; none of them may name a process, mapping or handle."""
    words = (*starters(), *STATEMENTS.keywords(), *STATE_WORDS, "invariants")
    return frozenset(w for w in words if NAME_RE.fullmatch(w))


STARTERS: tuple[str, ...] = starters()
KEYWORDS: frozenset[str] = keywords()


@dataclass(frozen=True)
class Token:
    """One word of a line: ``text`` is its value (no quotes, no escapes), ``raw`` as written."""

    text: str
    column: int
    raw: str
    quoted: bool = False

    @property
    def end(self) -> int:
        """The column just after the token."""
        return self.column + len(self.raw)


class _Invalid(Exception):
    """Internal: a statement is not valid. Never escapes :func:`parse`."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


#: Characters that separate words; every other whitespace or control character is an error.
BLANKS = " \t"
#: Characters a statement may not contain outside a comment: controls (other than tab),
#: line and paragraph separators, and invisible format characters that would make two
#: names look alike.
ODD_RE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u00a0\u00ad\u1680\u180e\u2000-\u200f"
    "\u2028-\u202f\u205f-\u2064\u3000\ufeff\ufff9-\ufffb]"
)
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\x0b": "vertical tab",
    "\x0c": "form feed",
    "\x0d": "carriage return",
    "\x1c": "file separator",
    "\x1d": "group separator",
    "\x1e": "record separator",
    "\x1f": "unit separator",
    "\x7f": "delete",
    "\x85": "next line",
}
_WORD_RE = re.compile(r'[^ \t#"]+')
#: A quoted value, "unrolled" so that a long one costs no backtracking state per character
_QUOTED_RE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"?')
_ESCAPE_RE = re.compile(r'\\(.?)')
#: An ASCII number (``str.isdigit`` also accepts superscripts and other scripts' digits).
NUMBER_RE = re.compile(r"[0-9]+")
#: Most digits a number may have; anything longer is out of every range the language has.
MAX_DIGITS = 9
#: Most words on one line (the longest statement, 'expect' with every state word, has 22).
MAX_WORDS = 64
#: Most statements a scenario may have once its ``for`` lines are repeated: a 4 MiB file of
#: ``for`` lines would otherwise ask for a hundred million.
MAX_STATEMENTS = 100_000
#: ``for i in 0..N:``: the range (both ends included, at most MAX_PAGES values).
FOR_RANGE_RE = re.compile(r"([0-9]{1,9})\.\.([0-9]{1,9}):")


def describe_char(c: str) -> str:
    """``U+000C (form feed)``: a character named so that an invisible one can be found."""
    name = _CONTROL_NAMES.get(c) or unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" ({name.lower()})" if name else "")


def small_number(text: str) -> int | None:
    """``text`` as a number if it is ASCII digits only and at most :data:`MAX_DIGITS` long."""
    if len(text) <= MAX_DIGITS and NUMBER_RE.fullmatch(text):
        return int(text)
    return None


def q(text: str) -> str:
    """A word quoted for a message, cut to a bounded length (see :func:`source.clip`)."""
    return f"'{clip(text)}'"


def split_lines(text: str) -> list[str]:
    """The lines of ``text``: a line ends at ``\\n`` or ``\\r\\n`` only.

    ``str.splitlines`` would also break at form feeds, vertical tabs, U+0085
    and U+2028/2029, shifting line numbers and ending comments early.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def split_statements(text: str) -> list[str]:
    """Statements written on one line separated by ``;`` (as ``explore --after`` takes them).

    A ``;`` inside a quoted value (``P write A[0] "a;b"``) does not separate;
    a newline does. Blank statements are dropped.
    """
    out: list[str] = []
    for line in split_lines(text):
        current: list[str] = []
        quoted = escaped = False
        for c in line:
            if quoted:
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c == ";":
                out.append("".join(current))
                current = []
                continue
            current.append(c)
        out.append("".join(current))
    return [x.strip(BLANKS) for x in out if x.strip(BLANKS)]


def _odd(line: str, start: int, end: int, where: str) -> None:
    m = ODD_RE.search(line, start, end)
    if m is not None:
        raise _Invalid(
            m.start() + 1,
            f"unexpected character {describe_char(m.group())}{where}: a line ends at a "
            "newline, and words are separated by spaces or tabs",
        )


def tokenize(line: str) -> list[Token]:
    """Split one line into tokens; ``#`` outside quotes ends it. Raises ``_Invalid``."""
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in BLANKS:
            i += 1
        elif c == "#":
            break
        elif len(tokens) == MAX_WORDS:
            raise _Invalid(
                i + 1,
                f"more than {MAX_WORDS} words on one line: no statement has that many (one "
                "statement per line)",
            )
        elif c == '"':
            start = i
            m = _QUOTED_RE.match(line, i)
            assert m is not None  # the pattern matches at any '"'
            if not m.group().endswith('"') or m.end() - start < 2:
                raise _Invalid(start + 1, 'unterminated quoted value: a closing " is missing')
            body = m.group(1)
            _odd(line, start + 1, m.end() - 1, " in a quoted value")
            chars = []
            pos = 0
            for e in _ESCAPE_RE.finditer(body):
                if e.group(1) not in ('"', "\\"):
                    raise _Invalid(
                        start + 2 + e.start(),
                        f"unknown escape {q(e.group())} in a quoted value; only \\\" and \\\\ "
                        "are allowed",
                    )
                chars.append(body[pos:e.start()])
                chars.append(e.group(1))
                pos = e.end()
            chars.append(body[pos:])
            i = m.end()
            if i < n and line[i] not in BLANKS and line[i] != "#":
                raise _Invalid(i + 1, "put a space after a quoted value")
            tokens.append(Token("".join(chars), start + 1, line[start:i], quoted=True))
        else:
            start = i
            m = _WORD_RE.match(line, i)
            assert m is not None  # c is none of the characters the pattern excludes
            i = m.end()
            _odd(line, start, i, "")
            if i < n and line[i] == '"':
                raise _Invalid(i + 1, 'unexpected \'"\': quote a whole value, as in "a b"')
            word = m.group()
            tokens.append(Token(word, start + 1, word))
    return tokens


#: Longest word a "did you mean" is looked for (difflib's cost grows with the length).
MAX_SUGGEST = 64
#: Most names a message lists (the processes of a scenario with thousands of them).
MAX_LISTED = 20


def _suggest(word: str, known: list[str] | tuple[str, ...]) -> str:
    """`` did you mean 'x'?`` for the nearest known word, or nothing."""
    if len(word) > MAX_SUGGEST:
        return ""
    lower = word.lower()
    for k in known:
        if k.lower() == lower:
            return f" did you mean '{k}'?"
    # get_close_matches drops a candidate whose length alone keeps it under the cutoff
    # (real_quick_ratio), but only after indexing every character of the word: skip a
    # word no candidate can match, so a huge token costs no more than reading it.
    if not any(2.0 * min(len(word), len(k)) / (len(word) + len(k)) >= 0.6 for k in known):
        return ""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" did you mean '{close[0]}'?" if close else ""


def listing(names: list[str] | tuple[str, ...]) -> str:
    """``a, b, c``; past :data:`MAX_LISTED` names, the first ones and how many more."""
    if len(names) <= MAX_LISTED:
        return ", ".join(clip(n) for n in names)
    shown = ", ".join(clip(n) for n in names[:MAX_LISTED])
    return f"{shown} and {len(names) - MAX_LISTED:,} more"


#: `` did you mean 'x'?`` (for the command line and the API's names too)
suggest = _suggest


def unknown_scheme(name: object) -> str:
    """The message for a scheme name that is not one (with the nearest one, if any)."""
    if not isinstance(name, str):
        return (f"a scheme is a name (str) or a Scheme, not {type(name).__name__}; "
                f"schemes: {', '.join(SCHEMES)}")
    hint = suggest(name, list(SCHEMES))
    return f"unknown scheme {q(name)};{hint} schemes: {', '.join(SCHEMES)}"


def scheme_named(name: object) -> Scheme:
    """The Scheme ``name`` names (a Scheme stands for itself): where a name becomes a Scheme.

    The scenario's ``scheme`` line, ``run --scheme``, ``schemes NAME``,
    :func:`~anonlib.scenario.run_scenario`, ``compare``, ``%%scenario --scheme``
    and the widgets all resolve names here. Raises :class:`InputError` saying
    which name is wrong, with the nearest scheme name and the list of them.
    """
    if isinstance(name, Scheme):
        return name
    if isinstance(name, str) and name in SCHEMES:
        return SCHEMES[name]
    raise InputError(unknown_scheme(name))


def _unknown(what: str, word: str, known: list[str], listed: str, empty: str) -> str:
    """A message for an unknown name: the nearest known one, then the known ones."""
    if not known:
        return f"unknown {what} {q(word)}; {empty}"
    hint = _suggest(word, known)
    return f"unknown {what} {q(word)};{hint} {listed}: {listing(known)}"


@dataclass
class _Mapping:
    kind: MapKind
    npages: int
    line: int
    unmapped: bool = False


@dataclass
class _Proc:
    line: int
    mappings: dict[str, _Mapping] = field(default_factory=dict)
    exited: int = 0  # the line of its 'exit' (0: alive as far as the parser knows)


@dataclass
class _Handle:
    owner: str
    pin: bool
    write: bool
    line: int


class Parser:
    """Parses one scenario, following the names it creates. Use :func:`parse`."""

    def __init__(self, name: str = "<scenario>") -> None:
        self.name = name
        self.scheme: str | None = None
        self.scheme_line = 0
        self.config = Config()
        self.config_lines: dict[str, int] = {}
        self.first_statement = 0  # line of the first statement that is not header
        self.procs: dict[str, _Proc] = {}
        self.handles: dict[str, _Handle] = {}
        self.released: dict[str, int] = {}
        self.statements: list[Statement] = []
        self.line = 0
        # the registry as it is now (a test may add a statement of its own)
        self.starter_verbs = STATEMENTS.verbs(Subject.STARTER)
        self.process_verbs = STATEMENTS.verbs(Subject.PROCESS)
        self.handle_verbs = STATEMENTS.verbs(Subject.HANDLE)
        self.kernel_verbs = STATEMENTS.verbs(Subject.KERNEL)
        self.starters = starters()
        self.keywords = keywords()

    # ---------------------------------------------------------------- entry point

    def parse(self, text: str) -> Scenario | ScenarioError:
        bom = text.startswith(BOM)
        if bom:
            text = text[1:]
        for lineno, line in enumerate(split_lines(text), start=1):
            self.line = lineno
            try:
                tokens = tokenize(line)
                if tokens:
                    self._line(tokens)
            except _Invalid as e:
                # a 'missing ...' error points where the missing word would go, one space
                # past the line's last character: never further
                column = max(1, min(e.column, len(line) + 2))
                return ScenarioError(self.name, lineno, column, e.message)
        return Scenario(
            name=self.name,
            scheme=self.scheme,
            scheme_line=self.scheme_line,
            config=self.config,
            statements=tuple(self.statements),
            bom=bom,
        )

    # ---------------------------------------------------------------- one line

    def _line(self, tokens: list[Token]) -> None:
        head = tokens[0]
        if head.text == "for" and not head.quoted:
            self._for(tokens)
            return
        if len(self.statements) >= MAX_STATEMENTS:
            raise _Invalid(head.column, f"more than {MAX_STATEMENTS:,} statements: the limit "
                           "for a scenario")
        text = " ".join(t.raw for t in tokens)
        if head.text in ("scheme", "config") and not head.quoted:
            self._no_suffix(tokens, f"{q(head.text)} has no outcome to expect")
            if head.text == "scheme":
                self._scheme(tokens)
            else:
                self._config(tokens)
            return
        if not self.first_statement:
            self.first_statement = self.line
        expect, expect_column = None, 0
        if head.text in ("expect", "show") and not head.quoted:
            what = "a check" if head.text == "expect" else "'show'"
            self._no_suffix(tokens, f"{what} has no outcome to expect")
            action: Op | Check = (
                self._expect(tokens) if head.text == "expect" else self._show(tokens)
            )
        else:
            tokens, expect, expect_column = self._split_suffix(tokens)
            action = self._op(tokens)
        self.statements.append(
            Statement(self.line, head.column, text, action, expect, expect_column)
        )

    def _for(self, tokens: list[Token]) -> None:
        """``for i in A..B: STATEMENT``: the statement once for each ``i`` from ``A`` to ``B``.

        Every ``{i}`` in the statement's words becomes the number, as written in
        decimal; the statements keep the line, and a word's column is the one it
        has on the line. An error in one of the repetitions says which.
        """
        head = tokens[0]
        form = "'for i in 0..3: STATEMENT'"
        if len(tokens) < 5:
            where = tokens[-1].end + 1
            raise _Invalid(where, f"a 'for' line is {form}: the statement is missing")
        var, word_in, rng = tokens[1], tokens[2], tokens[3]
        if var.quoted or not re.fullmatch(r"[a-z]", var.text):
            raise _Invalid(var.column, f"a 'for' names one lower-case letter, as in {form}; "
                           f"found {q(var.raw)}")
        if word_in.quoted or word_in.text != "in":
            raise _Invalid(word_in.column, f"expected 'in' after 'for {var.text}', as in {form}")
        m = None if rng.quoted else FOR_RANGE_RE.fullmatch(rng.text)
        if m is None:
            raise _Invalid(rng.column, f"expected a range and a colon, as in {form}; found "
                           f"{q(rng.raw)}")
        first, last = int(m.group(1)), int(m.group(2))
        if last < first or last - first + 1 > MAX_PAGES:
            raise _Invalid(rng.column, f"the range {q(rng.raw[:-1])} must go up, and have at "
                           f"most {MAX_PAGES} numbers")
        body = tokens[4:]
        if body[0].text == "for" and not body[0].quoted:
            raise _Invalid(body[0].column, "a 'for' repeats one statement, not another 'for'")
        if body[0].text in ("scheme", "config") and not body[0].quoted:
            raise _Invalid(body[0].column, f"{q(body[0].text)} cannot be repeated")
        mark = "{" + var.text + "}"
        if not any(mark in t.raw for t in body):
            raise _Invalid(body[0].column, f"the statement does not use {mark}: each "
                           "repetition would be the same")
        if len(self.statements) + last - first + 1 > MAX_STATEMENTS:
            raise _Invalid(head.column, f"this 'for' makes the scenario longer than "
                           f"{MAX_STATEMENTS:,} statements, the limit for a scenario")
        for k in range(first, last + 1):
            n = str(k)
            copy = [replace(t, text=t.text.replace(mark, n), raw=t.raw.replace(mark, n))
                    for t in body]
            try:
                self._line(copy)
            except _Invalid as e:
                raise _Invalid(e.column, f"with {var.text}={k}: {e.message}") from None

    def _no_suffix(self, tokens: list[Token], message: str) -> None:
        for t in tokens[1:]:
            if t.text == "expect" and not t.quoted:
                raise _Invalid(t.column, message)

    def _split_suffix(self, tokens: list[Token]) -> tuple[list[Token], str | None, int]:
        for k, t in enumerate(tokens):
            if k and t.text == "expect" and not t.quoted:
                rest = tokens[k + 1 :]
                if not rest:
                    raise _Invalid(
                        t.end + 1, "missing the outcome after 'expect' (e.g. 'expect ok')"
                    )
                if len(rest) > 1:
                    raise _Invalid(
                        rest[1].column,
                        f"unexpected {q(rest[1].raw)}: 'expect' takes one outcome "
                        "(quote a value with spaces)",
                    )
                return tokens[:k], self.value(rest[0]), t.column
        return tokens, None, 0

    # ---------------------------------------------------------------- header

    def _scheme(self, tokens: list[Token]) -> None:
        head = tokens[0]
        if self.first_statement:
            raise _Invalid(
                head.column,
                f"'scheme' must come before any other statement (line {self.first_statement} "
                "has one)",
            )
        if self.scheme is not None:
            raise _Invalid(head.column, f"the scheme is already set at line {self.scheme_line}")
        if self.config_lines:
            first = min(self.config_lines.values())
            raise _Invalid(head.column, f"'scheme' must come before 'config' (line {first})")
        args = self.args(tokens, 1, "the scheme name, e.g. 'scheme mainline'")
        word = args[0]
        try:
            scheme_named(word.text)
        except InputError as e:
            raise _Invalid(word.column, str(e)) from None
        self.scheme, self.scheme_line = word.text, self.line

    def _config(self, tokens: list[Token]) -> None:
        head = tokens[0]
        if self.first_statement:
            raise _Invalid(
                head.column,
                f"'config' must come before any other statement (line {self.first_statement} "
                "has one)",
            )
        if len(tokens) == 1:
            raise _Invalid(head.end + 1, "missing KEY=VALUE after 'config' (e.g. thp_pages=8)")
        for t in tokens[1:]:
            key, eq, value = t.text.partition("=")
            if not eq or t.quoted:
                raise _Invalid(t.column, f"expected KEY=VALUE, not {q(t.raw)} (e.g. thp_pages=8)")
            if key not in CONFIG_KEYS:
                hint = _suggest(key, CONFIG_KEYS)
                raise _Invalid(
                    t.column, f"unknown config key {q(key)};{hint} keys: {', '.join(CONFIG_KEYS)}"
                )
            if key in self.config_lines:
                raise _Invalid(t.column, f"{key} is already set at line {self.config_lines[key]}")
            vcol = t.column + len(key) + 1
            if key == "mthp_pages":
                self.config = replace(self.config, mthp_pages=self._mthp_sizes(value, vcol))
                self.config_lines[key] = self.line
                continue
            number = small_number(value)
            if number is None:
                if NUMBER_RE.fullmatch(value):
                    top = MAX_SWAP_SLOTS if key == "swap_slots" else MAX_PAGES
                    raise _Invalid(vcol, f"{key} must be at most {top}, not {q(value)}")
                else:
                    raise _Invalid(
                        vcol, f"{key} must be a whole number, not {q(value)}"
                    )
            if key == "thp_pages":
                if number < 2 or number & (number - 1) or number > MAX_PAGES:
                    raise _Invalid(
                        vcol,
                        f"thp_pages must be a power of two from 2 to {MAX_PAGES}, not {number}",
                    )
                self.config = replace(self.config, thp_pages=number)
            elif key == "hugetlb_pages":
                if not 1 <= number <= MAX_PAGES:
                    raise _Invalid(
                        vcol, f"hugetlb_pages must be from 1 to {MAX_PAGES}, not {number}"
                    )
                self.config = replace(self.config, hugetlb_pages=number)
            else:
                if number > MAX_SWAP_SLOTS:
                    raise _Invalid(
                        vcol, f"swap_slots must be at most {MAX_SWAP_SLOTS}, not {number}"
                    )
                self.config = replace(self.config, swap_slots=number)
            self.config_lines[key] = self.line

    @staticmethod
    def _mthp_sizes(value: str, column: int) -> tuple[int, ...]:
        """``mthp_pages=8:4``: the enabled mTHP sizes, largest first."""
        sizes: list[int] = []
        for part in value.split(":"):
            number = small_number(part)
            if number is None or number not in MTHP_SIZES:
                listed = ", ".join(str(n) for n in MTHP_SIZES)
                raise _Invalid(column, f"mthp_pages takes sizes from {listed} separated by ':' "
                                       f"(an mTHP has 4 to 256 pages), not {q(part or value)}")
            if number in sizes:
                raise _Invalid(column, f"mthp_pages names {number} twice")
            sizes.append(number)
            column += len(part) + 1
        return tuple(sorted(sizes, reverse=True))

    # ---------------------------------------------------------------- checks and show

    def _show(self, tokens: list[Token]) -> Show:
        if len(tokens) == 1:
            return Show()
        if len(tokens) == 2:
            raise _Invalid(tokens[1].end + 1, "missing the page after the process: 'show P A[i]'")
        if len(tokens) > 3:
            raise _Invalid(
                tokens[3].column, f"unexpected {q(tokens[3].raw)}: 'show' takes at most 'P A[i]'"
            )
        return Show(self.page(tokens[2], self.proc(tokens[1])))

    def _expect(self, tokens: list[Token]) -> ExpectInvariants | ExpectState:
        if len(tokens) == 1:
            raise _Invalid(
                tokens[0].end + 1,
                "missing what to expect: 'expect invariants' or 'expect P A[i] WORD...'",
            )
        if tokens[1].text == "invariants" and not tokens[1].quoted:
            if len(tokens) > 2:
                raise _Invalid(
                    tokens[2].column, f"unexpected {q(tokens[2].raw)} after 'expect invariants'"
                )
            return ExpectInvariants()
        proc = self.proc(tokens[1])
        if len(tokens) == 2:
            raise _Invalid(tokens[1].end + 1, f"missing the page after 'expect {proc}'")
        page = self.page(tokens[2], proc)
        if len(tokens) == 3:
            raise _Invalid(
                tokens[2].end + 1,
                f"missing state words after 'expect {page}' (e.g. present writable exclusive)",
            )
        words: list[StateWord] = []
        seen: dict[str, int] = {}
        i = 3
        while i < len(tokens):
            t = tokens[i]
            if t.quoted or t.text not in STATE_WORDS:
                hint = _suggest(t.text, STATE_WORDS)
                raise _Invalid(
                    t.column,
                    f"unknown state word {q(t.raw)};{hint} state words: {', '.join(STATE_WORDS)}",
                )
            if t.text in seen:
                raise _Invalid(t.column, f"{q(t.text)} is repeated")
            other = None
            if t.text == "same-page":
                if i + 2 >= len(tokens):
                    raise _Invalid(tokens[-1].end + 1, "missing the other page: 'same-page Q B[j]'")
                other = self.page(tokens[i + 2], self.proc(tokens[i + 1]))
                i += 2
            self._compatible(t, seen)
            seen[t.text] = t.column
            words.append(StateWord(t.text, t.column, other))
            i += 1
        return ExpectState(page, tuple(words))

    @staticmethod
    def _compatible(t: Token, seen: dict[str, int]) -> None:
        word = t.text
        opposite = PAIRED_WORDS.get(word)
        if opposite in seen:
            raise _Invalid(t.column, f"'{word}' contradicts '{opposite}'")
        kinds = [w for w in seen if w in KIND_WORDS]
        if word in KIND_WORDS:
            for k in kinds:
                # 'pmd' goes with any kind a PMD entry can have (present, migration, ...)
                if "pmd" not in (k, word) or {k, word} & {"none", "swap"}:
                    raise _Invalid(t.column, f"'{word}' contradicts '{k}': an entry has one kind")
            kinds.append(word)
        undefined = {
            "writable": ("swap", "hwpoison", "none"),
            "readonly": ("swap", "hwpoison", "none"),
            "exclusive": ("hwpoison", "none"),
            "shared": ("hwpoison", "none"),
        }
        for w in [word, *seen]:
            for k in kinds:
                if k in undefined.get(w, ()):
                    col = t.column
                    raise _Invalid(col, f"'{w}' is undefined for a {k} entry")

    # ---------------------------------------------------------------- operations

    def _op(self, tokens: list[Token]) -> Op:
        """An operation: the registry (:data:`anonlib.ops.STATEMENTS`) picks its class by the
        subject and the verb, and the class reads its arguments through this parser."""
        head = tokens[0]
        if not head.quoted:
            if head.text in self.starter_verbs:
                return self.starter_verbs[head.text].read(self, "", list(tokens))
            if head.text == "kernel":
                return self._kernel(tokens)
        if len(tokens) < 2:
            if head.text in self.procs or head.text in self.handles:
                raise _Invalid(head.end + 1, f"missing the operation after {q(head.raw)}")
            return self._unknown_statement(head)
        verb = tokens[1]
        process_verbs = list(self.process_verbs)
        handle_verbs = list(self.handle_verbs)
        can = ", ".join(handle_verbs)
        if head.text in self.handles and verb.text not in self.handle_verbs:
            raise _Invalid(verb.column, f"{q(head.text)} is a handle; a handle can: {can}")
        if verb.quoted or (verb.text not in self.process_verbs):
            if head.text in self.procs:
                hint = _suggest(verb.text, process_verbs)
                raise _Invalid(
                    verb.column,
                    f"unknown operation {q(verb.raw)};{hint} a process can: "
                    + ", ".join(process_verbs),
                )
            if head.text in self.handles:
                hint = _suggest(verb.text, handle_verbs)
                raise _Invalid(
                    verb.column, f"unknown operation {q(verb.raw)};{hint} a handle can: {can}"
                )
            return self._unknown_statement(head)
        if verb.text in self.handle_verbs and head.text not in self.procs:
            if head.text in self.handles or head.text in self.released:
                handle = self.handle(head)
                return self.handle_verbs[verb.text].read(self, handle, list(tokens))
            names = sorted(self.procs) + sorted(self.handles)
            raise _Invalid(
                head.column,
                _unknown(
                    "process or handle",
                    head.raw,
                    names,
                    "processes and handles",
                    "no process exists yet (create one with 'spawn P')",
                ),
            )
        proc = self.proc(head)
        return self.process_verbs[verb.text].read(self, proc, list(tokens))

    def _unknown_statement(self, head: Token) -> Op:
        starters = [*self.starters]
        lower = head.text.lower()
        if lower in self.keywords or not NAME_RE.fullmatch(head.text):
            hint = _suggest(head.text, starters)
            raise _Invalid(
                head.column,
                f"unknown statement {q(head.raw)};{hint} a statement starts with "
                f"{', '.join(starters)}, or a process or handle name",
            )
        hint = _suggest(head.text, [*starters, *self.procs, *self.handles])
        known = ", ".join(sorted(self.procs)) or "none yet"
        raise _Invalid(
            head.column,
            f"unknown statement {q(head.raw)};{hint} a statement starts with "
            f"{', '.join(starters)}, or a process (processes: {known}) or handle name",
        )

    def _kernel(self, tokens: list[Token]) -> Op:
        actions = list(self.kernel_verbs)
        if len(tokens) < 2:
            raise _Invalid(
                tokens[0].end + 1,
                f"missing what the kernel does: one of {', '.join(actions)}",
            )
        action = tokens[1]
        if action.quoted or action.text not in self.kernel_verbs:
            hint = _suggest(action.text, actions)
            raise _Invalid(
                action.column,
                f"unknown kernel action {q(action.raw)};{hint} actions: " + ", ".join(actions),
            )
        return self.kernel_verbs[action.text].read(self, "", list(tokens))

    # ---------------------------------------------------------------- the Reader

    def fail(self, column: int, message: str) -> NoReturn:
        raise _Invalid(column, message)

    def quote(self, text: str) -> str:
        return q(text)

    def suggest(self, word: str, known: Sequence[str]) -> str:
        return _suggest(word, tuple(known))

    def args(self, tokens: Sequence[Word], count: int, missing: str, start: int = 1
             ) -> list[Word]:
        """Exactly ``count`` tokens after ``tokens[:start]``."""
        args = list(tokens[start:])
        if len(args) < count:
            raise _Invalid(tokens[-1].end + 1, f"missing {missing}")
        if len(args) > count:
            extra = args[count]
            before = " ".join(t.raw for t in tokens[: start + count])
            raise _Invalid(extra.column, f"unexpected {q(extra.raw)} after {q(before)}")
        return args

    def is_page(self, tok: Word) -> bool:
        return PAGE_RE.fullmatch(tok.text) is not None

    def number(self, tok: Word) -> int | None:
        return None if tok.quoted else small_number(tok.text)

    def pages_for(self, kind: MapKind) -> int:
        return self.config.pages_for(kind)

    def new_mapping_name(self, tok: Word, proc: str) -> str:
        name = self._name(tok, "a mapping")
        existing = self.procs[proc].mappings.get(name)
        if existing is not None and not existing.unmapped:
            raise _Invalid(
                tok.column, f"mapping '{name}' already exists in {proc} (line {existing.line})"
            )
        return name

    def map(self, proc: str, name: str, kind: MapKind, npages: int) -> None:
        self.procs[proc].mappings[name] = _Mapping(kind, npages, self.line)

    def unmap(self, proc: str, name: str) -> None:
        self.procs[proc].mappings[name].unmapped = True

    def mapping_pages(self, proc: str, name: str) -> int:
        return self.procs[proc].mappings[name].npages

    def resize(self, proc: str, name: str, npages: int) -> None:
        self.procs[proc].mappings[name].npages = npages

    def exit(self, proc: str) -> None:
        self.procs[proc].exited = self.procs[proc].exited or self.line

    def new_handle(self, tok: Word, owner: str, pin: bool, write: bool) -> str:
        handle = self._name(tok, "a handle")
        if handle in self.procs:
            raise _Invalid(tok.column, f"'{handle}' is already a process")
        if handle in self.handles:
            raise _Invalid(
                tok.column,
                f"handle '{handle}' already exists (line {self.handles[handle].line}); release it "
                "first or pick another name",
            )
        self.handles[handle] = _Handle(owner, pin, write, self.line)
        self.released.pop(handle, None)
        return handle

    def handle_taken(self, name: str) -> tuple[bool, bool, int]:
        info = self.handles[name]
        return info.pin, info.write, info.line

    def release(self, name: str) -> None:
        del self.handles[name]
        self.released[name] = self.line

    # ---------------------------------------------------------------- names and values

    def _name(self, tok: Word, what: str) -> str:
        if tok.quoted or not NAME_RE.fullmatch(tok.text):
            raise _Invalid(
                tok.column,
                f"{q(tok.raw)} cannot name {what}: a name is a letter or _ followed by letters, "
                "digits and _",
            )
        if len(tok.text) > MAX_NAME:
            raise _Invalid(
                tok.column,
                f"{q(tok.raw)} is too long to name {what}: a name has at most {MAX_NAME} "
                "characters",
            )
        if tok.text in self.keywords:
            raise _Invalid(tok.column, f"{q(tok.text)} is a keyword and cannot name {what}")
        return tok.text

    def new_proc(self, tok: Word, parent: str | None = None) -> str:
        name = self._name(tok, "a process")
        if name in self.procs:
            proc = self.procs[name]
            if proc.exited:
                raise _Invalid(
                    tok.column,
                    f"process '{name}' exited at line {proc.exited}; a process name is never "
                    "reused: pick another name",
                )
            raise _Invalid(tok.column, f"process '{name}' already exists (line {proc.line})")
        if name in self.handles or name in self.released:
            raise _Invalid(tok.column, f"'{name}' is already a handle")
        mappings: dict[str, _Mapping] = {}
        if parent is not None:
            mappings = {k: replace(m) for k, m in self.procs[parent].mappings.items()
                        if not m.unmapped}
        self.procs[name] = _Proc(self.line, mappings)
        return name

    def proc(self, tok: Word) -> str:
        if not tok.quoted and tok.text in self.procs:
            return tok.text
        raise _Invalid(
            tok.column,
            _unknown(
                "process",
                tok.raw,
                sorted(self.procs),
                "processes",
                f"no process exists yet (create one with 'spawn {tok.raw}')",
            ),
        )

    def mapping(self, tok: Word, proc: str) -> str:
        mappings = self.procs[proc].mappings
        if not tok.quoted and tok.text in mappings:
            return tok.text
        return self._unknown_mapping(tok, tok.raw, proc)

    def _unknown_mapping(self, tok: Word, name: str, proc: str) -> str:
        known = sorted(self.procs[proc].mappings)
        raise _Invalid(
            tok.column,
            _unknown(
                "mapping",
                name,
                known,
                f"mappings of {proc}",
                f"{proc} has no mappings (create one with '{proc} mmap {name} 1')",
            ),
        )

    def page(self, tok: Word, proc: str) -> PageRef:
        m = None if tok.quoted else PAGE_RE.fullmatch(tok.text)
        if m is None:
            raise _Invalid(
                tok.column, f"expected a page such as A[0], not {q(tok.raw)}: write A[i], i from 0"
            )
        name, digits = m.group(1), m.group(2)
        index = small_number(digits)
        mapping = self.procs[proc].mappings.get(name)
        if mapping is None:
            self._unknown_mapping(tok, name, proc)
            raise AssertionError  # not reached
        if index is None or index >= mapping.npages:
            last = mapping.npages - 1
            pages = f"{mapping.npages} page" + ("s" if mapping.npages != 1 else "")
            span = f"{name}[0]" if last == 0 else f"{name}[0] to {name}[{last}]"
            raise _Invalid(
                tok.column + len(name) + 1,
                f"page {clip(digits)} is out of range: mapping {name} of {proc} has {pages} "
                f"({span})",
            )
        return PageRef(proc, name, index)

    def handle(self, tok: Word) -> str:
        if not tok.quoted and tok.text in self.handles:
            return tok.text
        if tok.text in self.released:
            raise _Invalid(
                tok.column, f"handle {q(tok.text)} was released at line {self.released[tok.text]}"
            )
        raise _Invalid(
            tok.column,
            _unknown(
                "handle",
                tok.raw,
                sorted(self.handles),
                "handles",
                "no handle exists (take one with 'P pin A[0] rw as H')",
            ),
        )

    @staticmethod
    def value(tok: Word) -> str:
        if tok.quoted or VALUE_RE.fullmatch(tok.text):
            return tok.text
        raise _Invalid(
            tok.column,
            f"{q(tok.raw)} is not a value: use letters, digits and _ . : - or quote it (\"a b\")",
        )


def parse(text: str, name: str = "<scenario>") -> Scenario | ScenarioError:
    """Parse scenario ``text``; ``name`` (a file name) prefixes error messages."""
    return Parser(name).parse(text)
