"""kernel-check: planning, comparison, the table, known differences, and one real boot.

Everything but the last test runs without a VM: the kernel's side is given as
the text the test program prints (``@r``/``@o`` lines). The test marked
``kernel`` boots Debian's Linux 6.12 under QEMU on a tiny scenario; it skips,
saying why, unless QEMU and the kernel are there (or may be installed: root
with apt-get), except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from anonlib.kernelcheck import vm
from anonlib.kernelcheck.check import compare_all, make_job, plan_files
from anonlib.kernelcheck.compare import (
    AGREED,
    DISAGREED,
    INVARIANTS,
    KNOWN,
    NOT_CHECKED,
    OWN_FLAG,
    WRITE_CHECK,
    compare_plan,
    decode_page,
    kernel_outcome,
    parse_output,
)
from anonlib.kernelcheck.known import (
    KnownDifferencesError,
    apply_known,
    glob_match,
    load_known,
    parse_known,
)
from anonlib.kernelcheck.plan import RO_PIN_SLOTS, Plan, decode_value, encode_value, plan
from anonlib.kernelcheck.report import (
    Report,
    dumps,
    from_json,
    markdown,
    not_checked_reasons,
    text_table,
    to_json,
)
from anonlib.ops import MapKind
from anonlib.scenario.parser import parse

REPO = Path(__file__).resolve().parents[1]

# pagemap / kpageflags words for fake observations
PRESENT = 1 << 63
SWAP = 1 << 62
ANON = 1 << 12
EXCL = 1 << 34
THP = 1 << 22
ZERO = 1 << 24


def obs(pfn: int, kf: int, *, head: int | None = None, hkf: int | None = None,
        ahp: int = 0, present: bool = True) -> str:
    pm = (PRESENT | pfn) if present else 0
    head = pfn if head is None else head
    hkf = kf if hkf is None else hkf
    return f"pm={pm:x} kf={kf:x} head={head:x} hkf={hkf:x} kc=1 ahp={ahp}"


def swap_obs(swp_type: int = 0, offset: int = 7) -> str:
    return f"pm={SWAP | (offset << 5) | swp_type:x} kf=0 head=0 hkf=0 kc=0 ahp=0"


def planned(text: str, *, deep: bool = True) -> Plan:
    sc = parse(text, "t.scn")
    assert not hasattr(sc, "message"), sc
    return plan(sc, deep=deep)


Pages = dict[str, str] | Callable[[int], dict[str, str]]


def fake_run(p: Plan, replies: dict[int, str], pages: Pages | None = None,
             stopped_at: int | None = None) -> str:
    """The VM's output for plan ``p``: ``replies`` by statement index, ``pages`` by page text.

    ``pages`` maps ``"P A[0]"`` to an observation (or is a function of the
    statement's index that does); pages not named are 'gone'.
    """
    given = pages or {}
    lines = ["@kernel 6.12.test", "@begin s0"]
    for st in p.steps:
        if p.cutoff is not None and st.index >= p.cutoff:
            break
        if stopped_at is not None and st.index > stopped_at:
            break
        if st.command is not None:
            lines.append(f"@r {st.index} {replies.get(st.index, 'ok')}")
        now = given(st.index) if callable(given) else given
        for ob in st.observations:
            lines.append(f"@o {st.index} {ob.id} {now.get(str(ob.ref), 'gone')}")
        if stopped_at == st.index:
            lines.append(f"@stopped s0 at {st.index}")
    lines += ["@end s0", "@done"]
    return "\n".join(lines) + "\n"


BASIC = """\
spawn P
P mmap A 1
P write A[0] 1
P fork Q
Q read A[0] expect 1
expect P A[0] present shared same-page Q A[0]
"""


def basic_pages(index: int) -> dict[str, str]:
    """What the kernel shows for BASIC: exclusive until the fork, then shared by both."""
    if index < 2:
        return {"P A[0]": "pm=0 kf=0 head=0 hkf=0 kc=0 ahp=0"}
    if index < 3:
        return {"P A[0]": obs(0x100, ANON | EXCL)}
    return {"P A[0]": obs(0x100, ANON), "Q A[0]": obs(0x100, ANON)}


# ------------------------------------------------------------------ planning


def test_values_round_trip_and_zero_is_all_zero_bytes() -> None:
    assert encode_value("0") == "-"
    assert decode_value("-") == "0"
    assert decode_value(encode_value("a b") or "") == "a b"
    assert encode_value("x" * 64) is None


def test_plan_compiles_statements_and_spreads_thp_pages_over_blocks() -> None:
    p = planned("spawn P\nP mmap T thp\nP write T[1] v\nP get T[3] ro as H\n")
    cmds = [s.command for s in p.steps]
    assert cmds[0] == "spawn P"
    assert cmds[1] == "mmap P 200000000 200000 thp"
    # model page 1 of 4 is the block of 128 real subpages starting at subpage 128
    assert cmds[2] == f"write P {0x200000000 + 128 * 4096:x} 128 76"
    assert cmds[3] == f"get P H {0x200000000 + 3 * 128 * 4096:x} 128"
    assert p.cutoff is None
    job = p.job("s0")
    assert job.startswith("scenario s0\nmthp -\n0 spawn P\n") and job.endswith("end\n")
    assert "observe P o" in job


def test_mthp_mapping_is_one_real_page_per_model_page_and_sets_the_sizes() -> None:
    p = planned("config mthp_pages=8:4\nspawn P\nP mmap A 12 mthp\nP mmap B mthp\n"
                "P write A[5] v\nP madvise A[2] dontneed\nkernel split-folio P A[4]\n"
                "kernel swapout P A[8]\n")
    cmds = [s.command for s in p.steps]
    base = 0x200000000 + (1 << 20)  # 1 MiB into the slot: no PMD fits in the mapping
    assert cmds[1] == f"mmap P {base:x} {12 * 4096:x} mthp"
    # P mmap B mthp: the largest enabled size, in its own 4 MiB slot
    assert cmds[2] == f"mmap P {base + (4 << 20):x} {8 * 4096:x} mthp"
    assert cmds[3] == f"write P {base + 5 * 4096:x} 1 76"
    assert cmds[4] == f"madvise P {base + 2 * 4096:x} 1000 dontneed"
    # split only the folio at A[4], not every folio of the mapping
    assert cmds[5] == f"splitfolio P {base + 4 * 4096:x} 1000"
    assert cmds[6] == f"swapout P {base + 8 * 4096:x} {base:x} {12 * 4096:x}"
    assert p.cutoff is None
    assert p.job("s0").startswith("scenario s0\nmthp 32,16\n")
    # the model's folio sizes ride along with the observations: A[5] is in an 8-page mTHP
    ob = next(o for o in p.steps[3].observations if str(o.ref) == "P A[5]")
    assert ob.kind is MapKind.MTHP and ob.folio_pages == 8 and ob.addr == base + 5 * 4096


def test_job_starts_with_the_zswap_setting() -> None:
    plans = plan_files([REPO / "tools/kernelcheck/probes/mthp-cow.scn"])
    assert make_job(plans).startswith("zswap once\nscenario s0\nmthp 16\n")
    assert make_job(plans, large_swapin=True).startswith("zswap never\n")


def test_fork_child_inherits_addresses_and_new_mappings_get_new_slots() -> None:
    p = planned("spawn P\nP mmap A 2\nP fork Q\nQ mmap B 1\nQ write A[1] x\n")
    assert p.steps[3].command == "mmap Q 200400000 1000 base"
    assert p.steps[4].command == "write Q 200001000 1 78"


def test_unexpressible_statement_cuts_the_kernel_run() -> None:
    p = planned("spawn P\nP mmap A 1\nP write A[0] 1\nP pin A[0] ro as H\n"
                "P write A[0] 2\nH read\n")
    assert p.cutoff == 3
    assert "short-term" in (p.steps[3].not_expressible or "")
    assert "pin P" not in p.job("s0")
    # the model still ran every statement
    assert p.steps[5].model_outcome == "2"


@pytest.mark.parametrize("stmt", [
    "kernel swapcache-drop P A[0]", "kernel migrate-begin P A[0]",
    "kernel device-private P A[0]", "kernel device-exclusive P A[0]",
    "P get A[0] rw as H", "P pin A[0] rw as H", "P pin A[0] ro fast as H",
])
def test_statements_user_space_cannot_express(stmt: str) -> None:
    p = planned(f"spawn P\nP mmap A 1\nP write A[0] 1\n{stmt}\n")
    assert p.cutoff == 3 and p.steps[3].not_expressible


def test_deep_observes_every_page_and_shallow_only_named_ones() -> None:
    deep = planned(BASIC)
    assert [str(o.ref) for o in deep.steps[3].observations] == ["P A[0]", "Q A[0]"]
    shallow = planned(BASIC, deep=False)
    assert shallow.steps[3].observations == []
    assert [str(o.ref) for o in shallow.steps[5].observations] == ["P A[0]", "Q A[0]"]


# ------------------------------------------------------------------ decoding


def test_decode_present_exclusive_swap_hwpoison_none() -> None:
    kp = decode_page(obs(0x100, ANON | EXCL), MapKind.BASE)
    assert (kp.kind, kp.exclusive, kp.phys) == ("present", True, 0x100)
    assert decode_page(obs(0x100, ANON), MapKind.BASE).exclusive is False
    sw = decode_page(swap_obs(), MapKind.BASE)
    assert sw.kind == "swap" and sw.exclusive is None and "not visible" in sw.exclusive_why
    hp = decode_page(swap_obs(27, 0x1234), MapKind.BASE)
    assert (hp.kind, hp.phys) == ("hwpoison", 0x1234)
    assert decode_page(swap_obs(29), MapKind.BASE).kind == "migration"
    assert decode_page("pm=0 kf=0 head=0 hkf=0 kc=0 ahp=0", MapKind.BASE).kind == "none"
    assert decode_page("gone", MapKind.BASE).kind == "gone"


def test_decode_thp_uses_head_flag_when_pmd_mapped_and_hides_tail_flags() -> None:
    pmd = decode_page(obs(0x205, ANON | THP, head=0x200, hkf=ANON | THP | EXCL, ahp=2048),
                      MapKind.THP)
    assert pmd.pmd and pmd.exclusive is True
    tail = decode_page(obs(0x205, ANON | THP, head=0x200, hkf=ANON | THP | EXCL),
                       MapKind.THP)
    assert not tail.pmd and tail.exclusive is None and "head page" in tail.exclusive_why
    head = decode_page(obs(0x200, ANON | THP | EXCL), MapKind.THP)
    assert head.exclusive is True
    huge_zero = decode_page(obs(0x400, ZERO | THP), MapKind.THP)
    assert huge_zero.pmd and huge_zero.exclusive is False


def test_kernel_outcomes() -> None:
    assert kernel_outcome("val 6161") == ("aa", "")
    assert kernel_outcome("val -")[0] == "0"
    assert "different" in kernel_outcome("val 61 mixed")[1]
    assert kernel_outcome("skipped r=1 status=-16")[0] == "skipped"
    assert kernel_outcome("EFAULT")[0] == "EFAULT"


# ------------------------------------------------------------------ comparing


def _result(text: str, replies: dict[int, str], pages: Pages, **kw: object):
    p = planned(text)
    out = parse_output(fake_run(p, replies, pages, **kw))  # type: ignore[arg-type]
    return compare_plan(p, out.runs["s0"])


def test_agreement_when_everything_matches() -> None:
    r = _result(BASIC, {4: "val 31"}, basic_pages)
    verdicts = [s.verdict for s in r.statements]
    assert verdicts == [AGREED] * 6
    assert r.disagreed == 0 and r.status == "agrees"


def test_a_different_value_disagrees_and_stops_comparing() -> None:
    r = _result(BASIC, {4: "val 32"}, basic_pages)
    assert r.statements[4].verdict == DISAGREED
    assert r.statements[4].disagreements[0].name == "outcome"
    assert r.statements[5].verdict == NOT_CHECKED
    assert "no longer follows" in r.statements[5].reason


def test_a_different_flag_or_frame_disagrees() -> None:
    r = _result(BASIC, {4: "val 31"}, {"P A[0]": obs(0x100, ANON | EXCL),
                                       "Q A[0]": obs(0x101, ANON)})
    bad = {c.name for c in r.statements[5].disagreements}
    assert "P A[0]: exclusive" in bad and "same-page P A[0] Q A[0]" in bad


MTHP_TEXT = "spawn P\nP mmap A mthp\nP write A[1] 1\nexpect P A[2] present exclusive\n"


def mthp_pages(np: int, flags: int = ANON | THP | EXCL) -> Callable[[int], dict[str, str]]:
    """After the write: a folio of ``np`` frames from 0x200, page i at frame 0x200 + i."""
    def pages(index: int) -> dict[str, str]:
        if index < 2:
            return {f"P A[{i}]": "pm=0 kf=0 head=0 hkf=0 kc=0 ahp=0" for i in range(4)}
        return {f"P A[{i}]": obs(0x200 + i, flags, head=0x200 + (i // np) * np)
                + f" np={np}" for i in range(4)}
    return pages


def test_decode_mthp_folio_and_tail_flags() -> None:
    head = decode_page(obs(0x200, ANON | THP | EXCL) + " np=4", MapKind.MTHP)
    assert head.folio == (4, 0) and head.exclusive is True and not head.pmd
    tail = decode_page(obs(0x203, ANON | THP | EXCL, head=0x200) + " np=4", MapKind.MTHP)
    assert tail.folio == (4, 3) and tail.exclusive is None
    assert "head page" in tail.exclusive_why
    assert decode_page(obs(0x200, ANON), MapKind.MTHP).folio is None  # an older guest


def test_mthp_folio_size_and_place_are_compared() -> None:
    r = _result(MTHP_TEXT, {}, mthp_pages(4))
    assert [s.verdict for s in r.statements] == [AGREED] * 4
    names = {c.name: c for c in r.statements[2].checks}
    assert names["P A[3]: folio"].model == "page 3 of a 4-page folio"
    assert names["P A[3]: folio"].agreed
    # the tail pages' flags are not visible: not checked, never agreed
    assert names["P A[3]: exclusive"].agreed is None
    assert names["P A[0]: exclusive"].agreed is True
    # the fault gave small folios where the model made an mTHP: a disagreement
    r = _result(MTHP_TEXT, {}, mthp_pages(1, ANON | EXCL))
    assert r.statements[2].verdict == DISAGREED
    bad = {c.name: c for c in r.statements[2].disagreements}
    assert bad["P A[1]: folio"].kernel == "small folio"


def test_an_mthp_in_a_thp_mapping_is_a_known_difference() -> None:
    text = ("spawn P\nP mmap T thp\nP mmap A mthp\nP write T[0] 1\nP madvise T[1] dontneed\n"
            "P write T[1] 2\n")

    def pages(index: int) -> dict[str, str]:
        if index < 3:
            return {}
        thp = {f"P T[{i}]": obs(0x400 + 128 * i, ANON | THP | EXCL, head=0x400,
                                ahp=2048) + " np=512" for i in range(4)}
        if index >= 4:
            thp = {k: v.replace("ahp=2048", "ahp=0") for k, v in thp.items()}
            thp["P T[1]"] = "pm=0 kf=0 head=0 hkf=0 kc=0 ahp=0"
        if index >= 5:  # the PTE fault got a 4-page mTHP
            thp["P T[1]"] = obs(0x900, ANON | THP | EXCL) + " np=4"
        return {**thp, **{f"P A[{i}]": "pm=0 kf=0 head=0 hkf=0 kc=0 ahp=0" for i in range(4)}}

    r = _result(text, {}, pages)
    st = r.statements[5]
    assert st.verdict == DISAGREED
    assert [c.name for c in st.disagreements] == ["P T[1]: folio (mTHP in a thp mapping)"]
    assert r.statements[3].verdict == AGREED  # the PMD THP: model page 1 is real page 128
    apply_known(r, "probes/x.scn", load_known())
    assert st.verdict == KNOWN


def test_unobservable_words_are_never_agreed() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nkernel swapout P A[0]\nexpect P A[0] swap\n" \
           "expect P A[0] exclusive\nexpect P A[0] writable\nexpect invariants\n"
    # the model's swap entry is exclusive; the kernel does not show the bit
    r = _result(text, {}, {"P A[0]": swap_obs()})
    assert r.statements[4].verdict == AGREED  # the kind
    excl = [c for c in r.statements[5].checks if c.name.endswith("exclusive")]
    assert excl and excl[0].agreed is None
    assert r.statements[5].verdict == AGREED  # kind agreed, exclusive not checked
    assert r.statements[7].verdict == NOT_CHECKED  # expect invariants: the model's own


def test_unexpressible_statements_are_not_checked_never_agreed() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nP fork Q\nP pin A[0] ro as H\n" \
           "P write A[0] 2\nH read expect 2\n"
    shared = obs(0x100, ANON)
    r = _result(text, {}, {"P A[0]": shared, "Q A[0]": shared})
    assert [s.verdict for s in r.statements[4:]] == [NOT_CHECKED] * 3
    assert "short-term" in r.statements[4].reason
    assert "line 5" in r.statements[6].reason


def test_runtime_inexpressible_swapout_stops_the_scenario() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nP fork Q\nkernel swapout P A[0]\n" \
           "P read A[0]\n"
    shared = obs(0x100, ANON)
    r = _result(text, {4: "inexpressible MADV_PAGEOUT skips a folio mapped by more than one "
                          "process (map count 2)"},
                {"P A[0]": shared, "Q A[0]": shared}, stopped_at=4)
    assert r.statements[4].verdict == NOT_CHECKED and "MADV_PAGEOUT" in r.statements[4].reason
    assert r.statements[5].verdict == NOT_CHECKED and "stopped" in r.statements[5].reason


def test_model_refusal_ends_the_comparison() -> None:
    r = _result("spawn P\nP mmap A 1\nP exit\nP read A[0]\n", {}, {})
    assert r.statements[3].verdict == NOT_CHECKED
    assert "model" in r.statements[3].reason


# ------------------------------------------------------------------ R/O pins, writes, tail flags


def test_ro_longterm_pins_go_to_gup_test_and_at_most_four_are_held() -> None:
    p = planned("spawn P\nP mmap T thp\nP write T[0] 1\nP pin T[1] ro longterm fast as H\n"
                "P pin T[0] ro longterm as G\nH read\nunpin H\n")
    # the write faulted in the whole THP: an O_DIRECT write would pin T[1] alike
    assert p.steps[3].command == f"rpin P H {0x200000000 + 128 * 4096:x} 128 fast odirect"
    assert p.steps[4].command == f"rpin P G {0x200000000:x} 128 slow odirect"
    assert p.steps[5].command == "hread H" and p.steps[6].command == "unpin H"
    assert p.cutoff is None
    pins = "".join(f"P pin A[{i}] ro longterm as H{i}\n" for i in range(RO_PIN_SLOTS))
    text = f"spawn P\nP mmap A 8\n{pins}"
    assert planned(text).cutoff is None
    # one more than there are gup_test instances: not expressible, unless one was unpinned
    full = planned(text + "P pin A[5] ro longterm as X\n")
    assert full.cutoff == 2 + RO_PIN_SLOTS
    assert "gup_test instances" in (full.steps[-1].not_expressible or "")
    assert planned(text + "unpin H0\nP pin A[5] ro longterm as X\n").cutoff is None


@pytest.mark.parametrize("before, alike", [
    ("P write A[0] 1\n", True),  # an anonymous page
    ("P write A[0] 1\nkernel swapout P A[0]\n", True),  # swapped out: swapped in first
    ("", False),  # none: a R/O fault maps the zero page, which only FOLL_LONGTERM unshares
    ("P read A[0]\n", False),  # the zero page
])
def test_an_odirect_write_stands_for_a_ro_pin_only_on_anonymous_pages(
        before: str, alike: bool) -> None:
    p = planned(f"spawn P\nP mmap A 1\n{before}P pin A[0] ro longterm as H\n")
    assert (p.steps[-1].command or "").endswith(" odirect" if alike else " -")


def test_the_vm_stops_after_an_odirect_pin_and_says_why() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nP pin A[0] ro longterm as H\nH read\n"
    p = planned(text)
    out = fake_run(p, {}, {"P A[0]": obs(0x100, ANON | EXCL)}, stopped_at=3)
    out = out.replace("@stopped s0 at 3", "@stopped s0 at 3 (no gup_test module: an O_DIRECT "
                      "write)")
    r = compare_plan(p, parse_output(out).runs["s0"])
    assert r.statements[3].verdict == AGREED
    assert r.statements[4].verdict == NOT_CHECKED
    assert r.statements[4].reason.endswith("(no gup_test module: an O_DIRECT write)")


def test_runtime_missing_gup_test_stops_the_scenario() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nP pin A[0] ro longterm as H\nH read\n"
    r = _result(text, {3: "inexpressible no gup_test module in this kernel"},
                {"P A[0]": obs(0x100, ANON | EXCL)}, stopped_at=3)
    assert r.statements[3].verdict == NOT_CHECKED and "gup_test" in r.statements[3].reason
    assert r.statements[4].verdict == NOT_CHECKED and "stopped" in r.statements[4].reason


WRITES = "spawn P\nP mmap A 1\nP write A[0] 1\nP write A[0] 2\nP fork Q\nP write A[0] 3\n"


def test_the_model_says_whether_each_write_faults() -> None:
    p = planned(WRITES)
    probes = [st.write_probe for st in p.steps]
    ref = p.steps[2].observations[0].ref
    # not present, then present and writable, then write-protected by the fork
    assert probes[2] == (ref, False) and probes[3] == (ref, True) and probes[5] == (ref, False)
    assert probes[0] is None and probes[4] is None


def _write_pages(index: int) -> dict[str, str]:
    if index < 2:
        return {"P A[0]": "pm=0 kf=0 head=0 hkf=0 kc=0 ahp=0"}
    if index < 4:
        return {"P A[0]": obs(0x100, ANON | EXCL)}
    if index < 5:
        return {"P A[0]": obs(0x100, ANON), "Q A[0]": obs(0x100, ANON)}
    return {"P A[0]": obs(0x200, ANON | EXCL), "Q A[0]": obs(0x100, ANON)}


def test_a_writes_page_faults_are_compared_with_the_model() -> None:
    r = _result(WRITES, {2: "ok faults=1", 3: "ok faults=0", 5: "ok faults=1"}, _write_pages)
    assert [s.verdict for s in r.statements] == [AGREED] * 6
    check = next(c for c in r.statements[3].checks if c.name.endswith(WRITE_CHECK))
    assert (check.name, check.model, check.kernel, check.agreed) == (
        f"P A[0]: {WRITE_CHECK}", "writable (no fault)", "0 faults", True)
    assert next(c for c in r.statements[3].checks if c.name == "outcome").note == ""
    # a store that faulted on a PTE the model has writable, and one that did not fault
    # on a PTE the model write-protected at fork: both disagree
    for replies, index in (({3: "ok faults=1"}, 3), ({5: "ok faults=0"}, 5)):
        r = _result(WRITES, replies, _write_pages)
        assert [c.name for c in r.statements[index].disagreements] == [f"P A[0]: {WRITE_CHECK}"]
    # an older guest that does not count faults: no write check
    r = _result(WRITES, {}, _write_pages)
    assert not any(c.name.endswith(WRITE_CHECK) for st in r.statements for c in st.checks)


def own(pf: int, pfh: int | None) -> str:
    """The guest's reading of the frame's own struct page: flags, and a tail's head frame."""
    return f" pf={pf:x} pfh={'-' if pfh is None else f'{pfh:x}'}"


PG_EXCL = 1 << 11
PG_HEAD_BIT = 1 << 6


def test_decode_a_tail_pages_own_flag_from_its_struct_page() -> None:
    # kpageflags shows the head's flag (shared) on the tail; its struct page says exclusive
    text = obs(0x203, ANON | THP, head=0x200, hkf=ANON | THP) + " np=4"
    tail = decode_page(text + own(PG_EXCL, 0x200), MapKind.MTHP)
    assert tail.exclusive is True and tail.own_flag and not tail.kcore_mismatch
    assert decode_page(text + own(0, 0x200), MapKind.MTHP).exclusive is False
    # a struct page that points at another head is not trusted, and says so
    wrong = decode_page(text + own(PG_EXCL, 0x180), MapKind.MTHP)
    assert wrong.exclusive is None and wrong.kcore_mismatch == wrong.exclusive_why
    # a head page's struct page must show what kpageflags shows of it
    head = obs(0x200, ANON | THP | EXCL | 1 << 15) + " np=4"
    assert not decode_page(head + own(PG_EXCL | PG_HEAD_BIT, None), MapKind.MTHP).kcore_mismatch
    assert decode_page(head + own(PG_HEAD_BIT, None), MapKind.MTHP).kcore_mismatch
    # a PMD-mapped THP keeps the flag in the head page only: the tail's word is not read
    pmd = decode_page(obs(0x205, ANON | THP, head=0x200, hkf=ANON | THP | EXCL, ahp=2048)
                      + own(0, 0x200), MapKind.THP)
    assert pmd.exclusive is True and not pmd.own_flag


def test_tail_flags_are_compared_under_their_own_name() -> None:
    head_kf = ANON | THP | EXCL | 1 << 15  # KPF_COMPOUND_HEAD

    def pages(index: int) -> dict[str, str]:
        if index < 2:
            return mthp_pages(4)(index)
        out = {"P A[0]": obs(0x200, head_kf) + " np=4" + own(PG_EXCL | PG_HEAD_BIT, None)}
        for i in range(1, 4):  # kpageflags shows the head's flags on the tails
            out[f"P A[{i}]"] = (obs(0x200 + i, head_kf, head=0x200) + " np=4"
                                + own(PG_EXCL, 0x200))
        return out

    r = _result(MTHP_TEXT, {}, pages)
    assert [s.verdict for s in r.statements] == [AGREED] * 4
    assert {c.name: c for c in r.statements[3].checks}[f"P A[2]: {OWN_FLAG}"].agreed is True
    after_write = {c.name: c for c in r.statements[2].checks}
    assert after_write["P A[0]: exclusive"].agreed is True  # the head: kpageflags
    assert after_write[f"P A[1]: {OWN_FLAG}"].agreed is True
    # the tail is shared in the kernel's struct page: a disagreement on that check
    r = _result(MTHP_TEXT, {}, lambda i: {k: v.replace(f"pf={PG_EXCL:x} pfh=200",
                                                       "pf=0 pfh=200")
                                          for k, v in pages(i).items()})
    assert f"P A[2]: {OWN_FLAG}" in {c.name for c in r.statements[3].disagreements}


def test_expect_invariants_says_why_it_is_not_checked() -> None:
    r = _result(BASIC + "expect invariants\n", {4: "val 31"}, basic_pages)
    assert r.statements[6].verdict == NOT_CHECKED and r.statements[6].reason == INVARIANTS


# ------------------------------------------------------------------ known differences

KNOWN_TOML = """
[[difference]]
scenario = "cow/*.scn"
statement = "Q read *"
check = "outcome"
why = "a simplification"
matters = "no"
"""


def test_known_differences_parse_and_match() -> None:
    known = parse_known(KNOWN_TOML)
    assert len(known) == 1 and known[0].why == "a simplification"
    assert known[0].matches("cow/a01.scn", 5, "Q read A[0] expect 1", "outcome")
    assert not known[0].matches("history/a01.scn", 5, "Q read A[0]", "outcome")
    assert not known[0].matches("cow/a01.scn", 5, "P read A[0]", "outcome")
    assert glob_match("P T[0]: pmd", "P T[*]: *") and not glob_match("P T0", "P T[*]")


@pytest.mark.parametrize("bad, message", [
    ("[[difference]]\nscenario = 'x'\nwhy = 'w'\n", "'matters'"),
    ("[[difference]]\nscenario = 'x'\nwhy = 'w'\nmatters = 'm'\nline = 'a'\n", "integer"),
    ("[[difference]]\nscenario = 'x'\nwhy = 'w'\nmatters = 'm'\nwhere = 1\n", "unknown key"),
    ("difference = [", "known-differences"),
    ("[other]\n", "top-level"),
])
def test_known_differences_errors(bad: str, message: str) -> None:
    with pytest.raises(KnownDifferencesError, match=message):
        parse_known(bad)


def test_known_difference_turns_a_disagreement_into_known() -> None:
    r = _result(BASIC, {4: "val 32"}, basic_pages)
    used = apply_known(r, "cow/a01.scn", parse_known(KNOWN_TOML))
    assert used == {0}
    assert r.statements[4].verdict == KNOWN and r.disagreed == 0 and r.known == 1
    assert r.status == "known differences"


def test_the_projects_known_differences_file_is_valid() -> None:
    for k in load_known():
        assert k.why and k.matters


# ------------------------------------------------------------------ the table


def test_table_markdown_and_json() -> None:
    paths = [REPO / "scenarios" / "cow" / "a01-basic-cow-base.scn"]
    if not paths[0].exists():
        pytest.skip("the scenario library has no a01-basic-cow-base.scn")
    plans = plan_files(paths)
    assert "scenario s0" in make_job(plans)
    bad = plan_files([Path("/nonexistent.scn")])
    out = parse_output("@kernel 6.12.test\n@done\n")
    files, _ = compare_all(plans + bad, out, [])
    from anonlib.kernelcheck.report import Report

    rep = Report(files, "6.12.test", 1.5)
    text = text_table(rep)
    assert "cow/a01-basic-cow-base.scn" in text and "cannot read" in text
    assert "exit 1" in text and rep.exit_code == 1
    md = markdown(rep, rerun="Re-run: `make kernel-check`.")
    assert md.startswith("# Appendix") and "| file | agreed |" in md and "Re-run" in md
    again = from_json(to_json(rep))
    assert [f.name for f in again.files] == [f.name for f in rep.files]
    assert dumps(again) == dumps(rep).replace('"seconds": 1.5', '"seconds": 1.5')


def test_not_checked_statements_are_counted_by_cause() -> None:
    text = "spawn P\nP mmap A 1\nP write A[0] 1\nexpect invariants\nP pin A[0] ro as H\n" \
           "P write A[0] 2\nH read\n"
    p = planned(text)
    fr = compare_plan(p, parse_output(fake_run(p, {}, {"P A[0]": obs(0x100, ANON | EXCL)}))
                      .runs["s0"])
    reasons = not_checked_reasons(Report([fr]))
    # the pin and the two statements after it count under the pin's cause
    assert reasons[0][1] == 3 and reasons[0][0].startswith("not expressible: a short-term")
    assert reasons[1] == (INVARIANTS, 1)
    assert "## Why statements were not checked" in markdown(Report([fr]))


def test_statement_table_for_a_failing_file() -> None:
    from anonlib.kernelcheck.report import Report

    r = _result(BASIC, {4: "val 32"}, basic_pages)
    r.name = "t.scn"
    text = text_table(Report([r], "6.12.test", 1.0))
    assert "t.scn: statement by statement" in text
    assert "DISAGREED" in text and "outcome: model 1, kernel 2" in text


def test_cli_is_registered() -> None:
    from anonlib.cli import build_parser

    args = build_parser().parse_args(["kernel-check", "--all", "--shallow"])
    assert args.all and args.shallow


# ------------------------------------------------------------------ the real kernel


def _kernel_available() -> str:
    """Empty if the VM can run here, else why not."""
    if os.environ.get("CI", "").lower() == "true":
        return ""
    if vm.may_install():
        return ""
    missing = [t for t in (vm.QEMU, "gcc") if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not found"
    if vm.cached_kernel() is None:
        return f"no kernel in {vm.cache_dir()}"
    return ""


@pytest.mark.kernel
@pytest.mark.slow
def test_boot_the_real_kernel_on_a_tiny_scenario(tmp_path: Path) -> None:
    why = _kernel_available()
    if why:
        pytest.skip(f"kernel check not available ({why}): {vm.HOW_TO_INSTALL}")
    from anonlib.kernelcheck import kernel_check

    scn = tmp_path / "tiny.scn"
    scn.write_text("spawn P\nP mmap A 1\nP write A[0] 1\nkernel swapout P A[0]\n"
                   "expect P A[0] swap\nP fork Q\nQ read A[0] expect 1\n"
                   "expect Q A[0] present shared\nP write A[0] 2\nQ read A[0] expect 1\n")
    report = kernel_check([scn], timeout=180)
    f = report.files[0]
    assert report.kernel.startswith("6.12"), report.kernel
    assert f.disagreed == 0, text_table(report, verbose=True)
    assert f.not_checked == 0 and f.agreed == len(f.statements), text_table(report, verbose=True)


def _read_newc(data: bytes) -> dict[str, tuple[int, tuple[int, int], bytes]]:
    """name -> (mode, (rdevmajor, rdevminor), contents) of a newc ("070701") cpio archive.

    Read from the format's definition (13 eight-digit hex fields after the magic, the
    name and the data each padded to four bytes), independently of the writer in vm.py.
    """
    out: dict[str, tuple[int, tuple[int, int], bytes]] = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at offset {pos}"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        assert data[pos + namesize - 1] == 0, f"{name}: the name is not NUL-terminated"
        pos += namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            assert not data[pos:].strip(b"\x00"), "bytes after the trailer"
            return out
        out[name] = (mode, rdev, data[pos:pos + size])
        pos += size + (-size % 4)


def test_make_initramfs_is_a_newc_archive(tmp_path: Path) -> None:
    """The initramfs the kernel check boots: /init (the program), the job, the modules and
    a /dev/console character device, as a gzipped newc archive the kernel unpacks."""
    import gzip
    import stat

    prog = tmp_path / "prog"
    prog.write_bytes(b"\x7fELF-program")
    mod = tmp_path / "m.ko"
    mod.write_bytes(b"module!")
    k = vm.Kernel("test", tmp_path / "vmlinuz", (mod,))
    data = gzip.decompress(vm.make_initramfs(prog, k, "scenario s0\nend\n"))
    files = _read_newc(data)
    assert set(files) == {"dev", "dev/console", "init", "job.txt", "modules.txt", "m.ko"}
    mode, _rdev, body = files["init"]
    assert stat.S_ISREG(mode) and mode & 0o111 and body == b"\x7fELF-program"
    assert files["job.txt"][2] == b"scenario s0\nend\n"
    assert files["modules.txt"][2] == b"/m.ko\n" and files["m.ko"][2] == b"module!"
    mode, rdev, _body = files["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert stat.S_ISDIR(files["dev"][0])
    if shutil.which("cpio") is not None:  # and the archive tool agrees, where there is one
        listing = subprocess.run(["cpio", "-t"], input=data, capture_output=True, check=True)
        assert set(listing.stdout.decode().split()) == set(files)


def test_appendix_from_the_recorded_run(tmp_path: Path) -> None:
    from anonlib.kernelcheck.appendix import RUNS, main, write_appendix

    out = write_appendix(RUNS, tmp_path / "appendix.md")
    text = out.read_text()
    assert text.startswith("# Appendix: the model checked against Linux")
    assert "make kernel-check" in text and "| file | agreed |" in text
    assert "seconds" not in text  # no timings in the book
    assert main([str(tmp_path / "missing.json"), str(out)]) == 2


def test_the_committed_appendix_matches_the_recorded_run(tmp_path: Path) -> None:
    """book/appendix-kernel-check.md is generated from tools/kernelcheck/last-run.json and
    last-run-6.1.json; a stale page would show the book's readers numbers the last runs did
    not produce."""
    from anonlib.kernelcheck.appendix import RUNS, write_appendix

    committed = Path(__file__).resolve().parents[1] / "book" / "appendix-kernel-check.md"
    fresh = write_appendix(RUNS, tmp_path / "appendix.md").read_text()
    assert committed.read_text() == fresh, (
        "book/appendix-kernel-check.md is stale: run python -m anonlib.kernelcheck.appendix")
