"""What a parsed scenario is made of: statements, checks, and errors as data.

The parser (:mod:`anonlib.scenario.parser`) turns text into a
:class:`Scenario`, or into a :class:`ScenarioError` that says where and why;
the runner (:mod:`anonlib.scenario.runner`) walks the statements. Operations
are the model's own :mod:`anonlib.ops` values; the few statements that only
look at the world (``show``, ``expect ...``) are defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ops import Op, PageRef
from ..state import Config

#: Kinds of entry a state word can name (``pmd`` is a present PMD mapping).
KIND_WORDS: tuple[str, ...] = (
    "none",
    "present",
    "pmd",
    "swap",
    "migration",
    "device-private",
    "device-exclusive",
    "hwpoison",
)
#: State words that come in opposite pairs.
PAIRED_WORDS: dict[str, str] = {
    "writable": "readonly",
    "readonly": "writable",
    "exclusive": "shared",
    "shared": "exclusive",
    "pinned": "unpinned",
    "unpinned": "pinned",
}
#: Every state word ``expect P A[i] WORD...`` accepts (``same-page`` takes a page after it).
STATE_WORDS: tuple[str, ...] = KIND_WORDS + tuple(PAIRED_WORDS) + ("same-page",)


@dataclass(frozen=True)
class StateWord:
    """One word of ``expect P A[i] WORD...``; ``other`` is the page after ``same-page``."""

    word: str
    column: int
    other: PageRef | None = None

    def __str__(self) -> str:
        return f"same-page {self.other}" if self.other is not None else self.word


@dataclass(frozen=True)
class ExpectState:
    """``expect P A[i] WORD...``: the entry mapping ``page`` and the page behind it."""

    page: PageRef
    words: tuple[StateWord, ...]


@dataclass(frozen=True)
class ExpectInvariants:
    """``expect invariants``: every invariant of the model holds now."""


@dataclass(frozen=True)
class Show:
    """``show`` (page None: the whole world) or ``show P A[i]``."""

    page: PageRef | None = None


Check = ExpectState | ExpectInvariants | Show


@dataclass(frozen=True)
class Statement:
    """One line of a scenario.

    ``action`` is an :mod:`anonlib.ops` operation or a :data:`Check`;
    ``expect`` is the ``expect OUTCOME`` suffix (``None`` when absent).
    ``text`` is the statement as written, without its comment.
    """

    line: int
    column: int
    text: str
    action: Op | Check
    expect: str | None = None
    expect_column: int = 0

    @property
    def is_op(self) -> bool:
        return not isinstance(self.action, (ExpectState, ExpectInvariants, Show))

    @property
    def op(self) -> Op | None:
        """``action`` if it is an operation, None for a check (typed, unlike ``is_op``)."""
        a = self.action
        return None if isinstance(a, (ExpectState, ExpectInvariants, Show)) else a


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: its header and its statements, in order."""

    name: str
    scheme: str | None = None
    scheme_line: int = 0
    config: Config = field(default_factory=Config)
    statements: tuple[Statement, ...] = ()
    #: the text began with a UTF-8 byte-order mark (U+FEFF), which the parser dropped
    bom: bool = False


@dataclass(frozen=True)
class ScenarioError:
    """Why a scenario is not valid, and where (line and column count from 1; 0: no place)."""

    name: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.name}: {self.message}"
        where = f"line {self.line}" + (f", column {self.column}" if self.column > 0 else "")
        return f"{self.name}: {where}: {self.message}"


class InputError(ValueError):
    """An argument the API cannot use (a bad scheme name, a statement that is not one).

    It is a ValueError with a message that says what and where; IPython shows
    that message alone, without a traceback (``_render_traceback_``).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]
