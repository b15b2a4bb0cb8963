"""Run scenario files on the model and on the real kernel (one VM boot), and compare."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..scenario.library import is_size_variant
from ..scenario.parser import parse
from ..scenario.syntax import ScenarioError
from . import selftests, vm
from .compare import FileResult, VMOutput, compare_plan, parse_output
from .known import KnownDifference, apply_known, known_file_for, load_known
from .plan import RO_PIN_SLOTS, Plan, plan
from .report import Report

SCENARIOS = vm.REPO / "scenarios"


def display_name(path: Path) -> str:
    """The file's name in the table: relative to scenarios/ when it is in there."""
    p = path.resolve()
    for base in (SCENARIOS.resolve(), Path.cwd().resolve()):
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


#: The library files ``--all`` leaves out: cow.c's runs on the mTHP sizes above 16 kB
#: (:func:`anonlib.scenario.library.is_size_variant`). The real cow.c runs them
#: (``selftests-check``), and statement by statement they would cost more than the rest of
#: the library together: a 1 MB case plans in about 9 s and 300 MB and gives the VM
#: 68,000 commands, each observing its 256 pages.


def library_files() -> list[Path]:
    """Every scenario file of the library (``scenarios/**/*.scn``), in order, but the
    mTHP size variants of cow.c, which ``selftests-check`` runs."""
    return sorted(p for p in SCENARIOS.rglob("*.scn") if not is_size_variant(p))


def plan_files(paths: Sequence[Path], *, deep: bool = True,
               series: vm.Series = vm.SERIES[vm.DEFAULT_SERIES]
               ) -> list[tuple[str, Plan | str]]:
    """(display name, plan or the reason the file cannot be checked) for each file, run on
    the model under the scheme that stands for ``series``."""
    out: list[tuple[str, Plan | str]] = []
    for p in paths:
        name = display_name(p)
        try:
            text = p.read_text()
        except OSError as e:
            out.append((name, f"cannot read: {e.strerror}"))
            continue
        sc = parse(text, name)
        if isinstance(sc, ScenarioError):
            out.append((name, f"not a valid scenario: {sc}"))
            continue
        out.append((name, plan(sc, deep=deep, series=series)))
    return out


def make_job(plans: Sequence[tuple[str, Plan | str]], *, large_swapin: bool = False) -> str:
    """The VM job for every plan, after the machine-wide set-up line.

    ``zswap once`` (the default) turns zswap on and off before anything is
    swapped, so 6.12 swaps mTHPs back in from zram one small folio per page
    as the model does; ``large_swapin`` leaves zswap never enabled, where
    zram's SWP_SYNCHRONOUS_IO path may swap a whole mTHP back in as one
    large folio (``alloc_swap_folio``), which the model does not do.
    """
    head = "zswap never\n" if large_swapin else "zswap once\n"
    return head + "".join(pl.job(f"s{i}") for i, (_n, pl) in enumerate(plans)
                          if isinstance(pl, Plan))


def compare_all(plans: Sequence[tuple[str, Plan | str]], output: VMOutput,
                known: list[KnownDifference]) -> tuple[list[FileResult], set[int]]:
    results, used = [], set()
    for i, (name, pl) in enumerate(plans):
        if not isinstance(pl, Plan):
            results.append(FileResult(name, error=pl))
            continue
        run = output.runs.get(f"s{i}")
        fr = compare_plan(pl, run)
        fr.name = name
        if run is None or not run.complete:
            fr.error = "" if run is not None else "the VM did not run this scenario"
        used |= apply_known(fr, name, known)
        results.append(fr)
    return results, used


def kernel_check(
    paths: Sequence[Path],
    *,
    known_file: Path | None = None,
    timeout: float = vm.DEFAULT_TIMEOUT,
    deep: bool = True,
    install: bool | None = None,
    large_swapin: bool = False,
    gup_test: bool = True,
    series: vm.Series = vm.SERIES[vm.DEFAULT_SERIES],
    log: Callable[[str], None] = lambda s: None,
) -> Report:
    """Plan every file, run them all in one boot of a kernel of ``series``, compare; raises
    vm.Unavailable / vm.VMError. The known differences default to the series' own file.

    ``gup_test=False`` boots without gup_test.ko, as on a kernel it cannot be
    built for (``Series.gup_test``): a R/O long-term pin is then an O_DIRECT
    write to a ramdisk where that pins alike (:func:`plan.odirect_pins_alike`),
    after which the scenario stops, and not expressible elsewhere.
    """
    known = load_known(known_file if known_file is not None else known_file_for(series))
    plans = plan_files(paths, deep=deep, series=series)
    gup_test = gup_test and series.gup_test
    vm.ensure_tools(install)
    kernel = vm.ensure_kernel(install, series)
    program = vm.build_program()
    modules = selftests.build_gup_test(kernel, install, log, copies=RO_PIN_SLOTS) \
        if gup_test else ()
    if gup_test and not modules:
        log(f"note: no linux-headers-{kernel.release} to build gup_test.ko, so R/O long-term "
            "pins are not expressible (see docs/real-kernel.md)")
    job = make_job(plans, large_swapin=large_swapin)
    log(f"booting Linux {kernel.release} under QEMU (TCG) for {len(plans)} scenario file(s)")
    boot = vm.boot(kernel, vm.make_initramfs(program, kernel, job, modules), timeout=timeout)
    output = parse_output(boot.results)
    zswap = output.header.get("zswap", "")
    if not large_swapin and "on=0" not in zswap:
        log(f"note: zswap could not be turned on once in the VM ({zswap or 'no report'}), so "
            "zram may swap mTHPs back in as large folios (see docs/real-kernel.md)")
    files, used = compare_all(plans, output, known)
    release = output.header.get("kernel", kernel.release)
    return Report(files, release, boot.seconds, known, used, scheme=series.scheme)
