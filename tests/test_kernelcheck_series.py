"""kernel-check on two kernel series (6.12 and 6.1): choosing the package and the cached
kernel of a series, the scheme the model runs under, what 6.1 cannot express, how its
output is decoded, and the appendix that shows both recorded runs. No VM is booted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anonlib.kernelcheck import vm
from anonlib.kernelcheck.appendix import RUNS, main, write_appendix
from anonlib.kernelcheck.check import compare_all, make_job, plan_files
from anonlib.kernelcheck.compare import decode_page, parse_output
from anonlib.kernelcheck.known import DEFAULT_FILE, known_file_for, load_known
from anonlib.kernelcheck.plan import NOT_EXPRESSIBLE, Plan, plan
from anonlib.kernelcheck.report import Report, dumps, from_json, text_table, to_json
from anonlib.ops import MapKind
from anonlib.scenario.parser import parse
from anonlib.scenario.runner import run_scenario
from anonlib.schemes import SCHEMES

REPO = Path(__file__).resolve().parents[1]
PROBES = REPO / "tools" / "kernelcheck" / "probes"
V612, V61 = vm.SERIES["6.12"], vm.SERIES["6.1"]

APT_SEARCH = """\
linux-image-6.1.0-9-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-57-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-57-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-57-rt-amd64-unsigned - Linux 6.1 for 64-bit PCs, PREEMPT_RT
linux-image-6.12.9+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.118+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.118+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
"""


# ------------------------------------------------------------------ the series


def test_each_series_picks_its_own_newest_package() -> None:
    assert vm.pick_package(APT_SEARCH, V612) == "linux-image-6.12.118+deb12-amd64-unsigned"
    assert vm.pick_package(APT_SEARCH, V61) == "linux-image-6.1.0-57-amd64-unsigned"
    assert vm.pick_package("linux-image-6.12.1+deb12-amd64-unsigned - x\n", V61) is None


def test_a_release_belongs_to_one_series() -> None:
    assert V612.has_release("6.12.118+deb12-amd64") and not V61.has_release("6.12.118+deb12-amd64")
    assert V61.has_release("6.1.0-57-amd64") and not V612.has_release("6.1.0-57-amd64")
    assert not V61.has_release("6.10.3-amd64")


def _fake_kernel(base: Path, release: str) -> None:
    d = base / release
    (d / "modules").mkdir(parents=True)
    (d / "vmlinuz").write_bytes(b"kernel")
    for m in vm.MODULES:  # a cache without one of them is unpacked again
        (d / "modules" / f"{m}.ko").write_bytes(b"module")
    (d / "modules.txt").write_text("".join(f"{m}.ko\n" for m in vm.MODULES))


def test_the_cache_holds_both_series_and_each_finds_its_newest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANONLIB_KERNEL_CACHE", str(tmp_path))
    assert vm.cached_kernel(V612) is None and vm.cached_kernel(V61) is None
    for release in ("6.1.0-9-amd64", "6.12.9+deb12-amd64", "6.1.0-57-amd64",
                    "6.12.118+deb12-amd64"):
        _fake_kernel(tmp_path, release)
    (tmp_path / "bin").mkdir()
    k612, k61 = vm.cached_kernel(V612), vm.cached_kernel(V61)
    assert k612 is not None and k612.release == "6.12.118+deb12-amd64"
    assert k61 is not None and k61.release == "6.1.0-57-amd64"
    assert vm.cached_kernel().release == k612.release  # type: ignore[union-attr]
    assert vm.ensure_kernel(False, V61) == k61  # found in the cache: nothing to download


def test_a_missing_series_says_which(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANONLIB_KERNEL_CACHE", str(tmp_path))
    _fake_kernel(tmp_path, "6.12.118+deb12-amd64")
    with pytest.raises(vm.Unavailable, match="no Linux 6.1 kernel"):
        vm.ensure_kernel(False, V61)
    with pytest.raises(ValueError, match="known: 6.12, 6.1"):
        vm.series_named("5.10")


def test_each_series_names_a_scheme_and_its_own_known_differences() -> None:
    assert {s.scheme for s in vm.SERIES.values()} <= set(SCHEMES)
    assert (V612.scheme, V61.scheme) == ("mainline", "lts-6.1")
    assert known_file_for(V612) == DEFAULT_FILE
    assert known_file_for(V61).name == "known-differences-6.1.toml"
    for k in load_known(known_file_for(V61)):
        assert k.why and k.matters


def test_cli_takes_the_kernel_series() -> None:
    from anonlib.cli import build_parser

    assert build_parser().parse_args(["kernel-check", "--all"]).kernel == "6.12"
    assert build_parser().parse_args(["kernel-check", "--kernel", "6.1", "--all"]).kernel == "6.1"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["kernel-check", "--kernel", "5.10", "--all"])


# ------------------------------------------------------------------ planning for 6.1


def planned(text: str, series: vm.Series) -> Plan:
    sc = parse(text, "t.scn")
    assert not hasattr(sc, "message"), sc
    return plan(sc, series=series)


MTHP = "spawn P\nP mmap A mthp\nP write A[0] 1\n"


def test_an_mthp_mapping_is_not_expressible_on_6_1() -> None:
    p61, p612 = planned(MTHP, V61), planned(MTHP, V612)
    assert p612.cutoff is None and "\nmthp 16\n" in p612.job("s0")
    assert p61.cutoff == 1 and p61.steps[1].not_expressible == NOT_EXPRESSIBLE["mthp"]
    assert "\nmthp -\n" in p61.job("s0") and "mmap" not in p61.job("s0")
    assert p61.steps[2].model_outcome == "ok"  # the model still runs the scenario


def test_the_model_runs_under_the_scheme_of_the_series() -> None:
    """A THP split with never-written subpages: 6.12 maps them to the zero page
    (split_zero_remap), lts-6.1 keeps them exclusive, and the plan records each."""
    text = "spawn P\nP mmap T thp\nP write T[0] 1\nkernel split-folio P T\n"

    def page1(p: Plan) -> bool | None:
        ob = next(o for o in p.steps[3].observations if str(o.ref) == "P T[1]")
        assert not isinstance(ob.model, Exception)
        return ob.model.exclusive  # type: ignore[union-attr]

    assert page1(planned(text, V612)) is False and page1(planned(text, V61)) is True


# ------------------------------------------------------------------ decoding 6.1's output


def _obs(pfn: int, kf: int, head: int) -> str:
    return f"pm={(1 << 63) | pfn:x} kf={kf:x} head={head:x} hkf=0 kc=1 ahp=0"


def test_6_1_has_one_more_special_swap_type() -> None:
    def swap(t: int) -> str:
        return f"pm={(1 << 62) | (0x99 << 5) | t:x} kf=0 head=0 hkf=0 kc=0 ahp=0"

    assert decode_page(swap(27), MapKind.BASE).kind == "hwpoison"
    assert decode_page(swap(27), MapKind.BASE, V61).kind == "migration"
    assert decode_page(swap(26), MapKind.BASE, V61).kind == "hwpoison"
    assert decode_page(swap(26), MapKind.BASE).kind == "swap"
    assert decode_page(swap(30), MapKind.BASE, V61).kind == "swap-type-30"


def test_6_1_shows_the_flag_of_every_page_of_a_large_folio() -> None:
    anon, excl, thp = 1 << 12, 1 << 34, 1 << 22
    tail = _obs(0x205, anon | thp | excl, head=0x200)
    assert decode_page(tail, MapKind.THP).exclusive is None
    assert decode_page(tail, MapKind.THP, V61).exclusive is True
    assert decode_page(_obs(0x205, anon | thp, 0x200), MapKind.THP, V61).exclusive is False


def test_a_6_1_run_is_compared_and_reported_under_lts_6_1() -> None:
    plans = plan_files([PROBES / "thp-split-zero.scn"], series=V61)
    pl = plans[0][1]
    assert isinstance(pl, Plan) and pl.series is V61
    assert make_job(plans).startswith("zswap once\nscenario s0\nmthp -\n")
    files, _ = compare_all(plans, parse_output("@kernel 6.1.0-57-amd64\n@done\n"), [])
    rep = Report(files, "6.1.0-57-amd64", 1.0, scheme="lts-6.1")
    assert "(scheme lts-6.1) against Linux 6.1.0-57-amd64" in text_table(rep)
    again = from_json(json.loads(dumps(rep)))
    assert again.scheme == "lts-6.1" and to_json(again)["scheme"] == "lts-6.1"
    assert from_json({"files": []}).scheme == "mainline"  # a record from before the field


# ------------------------------------------------------------------ probes telling 6.1 from 6.12


@pytest.mark.parametrize("probe", ["thp-last-pte-reuse.scn", "thp-partial-migrate.scn",
                                   "thp-split-zero.scn"])
def test_the_probes_that_tell_the_kernels_apart_differ_between_the_schemes(probe: str) -> None:
    """Each ends differently under mainline and lts-6.1, as on the two real kernels (the
    appendix says so)."""
    text = (PROBES / probe).read_text()
    runs = {s: str(run_scenario(text + "show\n", s, name=probe, keep_steps=False))
            for s in ("mainline", "lts-6.1")}
    assert runs["mainline"] != runs["lts-6.1"]


# ------------------------------------------------------------------ the appendix


def test_the_appendix_shows_both_recorded_runs(tmp_path: Path) -> None:
    records = [json.loads(r.read_text()) for r in RUNS]
    assert [r["scheme"] for r in records] == ["mainline", "lts-6.1"]
    assert records[0]["kernel"].startswith("6.12.") and records[1]["kernel"].startswith("6.1.0-")
    text = write_appendix(RUNS, tmp_path / "a.md").read_text()
    for rec in records:
        t = rec["totals"]
        assert (f"| Linux {rec['kernel']} | `{rec['scheme']}` | {t['files']} | {t['agreed']} | "
                f"{t['disagreed']} | {t['known difference']} | {t['not checked']} |") in text
        assert f"## Linux {rec['kernel']} (scheme `{rec['scheme']}`)" in text
        for k in rec["known_differences"]:
            assert k["scenario"] in text
        assert t["disagreed"] == 0, "a recorded run has disagreements beyond the known ones"
    assert text.count("| file | agreed | disagreed | known | not checked | status |") == 2
    assert "seconds" not in text  # no timings in the book
    assert main([str(RUNS[1]), str(tmp_path / "one.md")]) == 0
    assert "scheme `lts-6.1`" in (tmp_path / "one.md").read_text()
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "x.md")]) == 2
    assert main([str(tmp_path / "x.md"), str(tmp_path / "y.md")]) == 2
