"""Check the model against the real kernel: ``python -m anonlib kernel-check``.

:mod:`.plan` runs a scenario on the model and compiles it into commands for
a small C program (``tools/kernelcheck/anoncheck.c``) that carries them out as
``/init`` of Debian's Linux 6.12 under QEMU (:mod:`.vm`); :mod:`.compare`
sets the two side by side, :mod:`.known` excuses the listed known
differences, :mod:`.report` prints the agreement table.
"""

from .check import kernel_check, library_files
from .compare import AGREED, DISAGREED, KNOWN, NOT_CHECKED, FileResult, StatementResult
from .known import KnownDifference, load_known, parse_known
from .report import Report, markdown, text_table

__all__ = [
    "AGREED",
    "DISAGREED",
    "KNOWN",
    "NOT_CHECKED",
    "FileResult",
    "KnownDifference",
    "Report",
    "StatementResult",
    "kernel_check",
    "library_files",
    "load_known",
    "markdown",
    "parse_known",
    "text_table",
]
