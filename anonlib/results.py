"""What an operation gives back: an outcome, or an error that leaves the world unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Outcome:
    """The outcome of one operation, as the scenario transcript prints it.

    ``word`` is what ``expect OUTCOME`` compares: ``ok``, a value read,
    ``SIGSEGV``, ``SIGBUS``, ``EFAULT``, ``EHWPOISON``, ``EBUSY`` (6.12's
    make_device_exclusive_range did not convert the page; what it did stays), ``skipped`` (the
    kernel backed off; nothing changed) or ``restored`` (``migrate-end``
    failed and mapped the old folio back from the migration entries).
    ``detail`` says why (the reason for ``skipped`` or ``restored``, or which
    path a GUP took); it is printed but never compared.
    """

    word: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.word} ({self.detail})" if self.detail else self.word


class ErrorKind(Enum):
    """Why an operation could not be carried out at all."""

    #: the statement is not valid here: unknown name, page out of range, an
    #: operation the scheme's kernel lacks. A scenario with one exits 2.
    INVALID = "invalid"
    #: the statement is well formed but the state does not allow it: a handle
    #: whose GUP failed, a process that has exited. A scenario with one exits 1.
    FAILED = "failed"


@dataclass(frozen=True)
class ModelError:
    """An operation that was refused. The world it was applied to is unchanged."""

    kind: ErrorKind
    message: str

    def __str__(self) -> str:
        return self.message


class OpFailed(Exception):
    """Raised inside transitions; :func:`anonlib.model.apply` turns it into a ModelError."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.FAILED) -> None:
        super().__init__(message)
        self.kind = kind


class BackOff(Exception):
    """Raised where the kernel backs off (reclaim or KSM meeting a pinned page, ...).

    :func:`anonlib.model.apply` turns it into the outcome ``skipped`` with the
    reason, and keeps the world as it was before the operation: the kernel
    restores whatever it had begun to change.
    """
