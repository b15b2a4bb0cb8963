"""The scenario parser: every statement of the contract, and every way to get one wrong."""

from __future__ import annotations

import pytest

from anonlib.ops import (
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
    Munmap,
    PageRef,
    Read,
    Release,
    Spawn,
    Write,
)
from anonlib.scenario import Scenario, ScenarioError, parse
from anonlib.scenario.parser import KEYWORDS, tokenize
from anonlib.scenario.syntax import ExpectInvariants, ExpectState, Show, StateWord
from anonlib.state import Config

PRELUDE = "spawn P\nP mmap A 2\n"
ACTIONS = (
    "swapout, swapcache-drop, migrate, migrate-begin, migrate-end, device-private, "
    "device-private-end, device-exclusive, poison, split-pmd, split-folio, ksm"
)


def ok(text: str) -> Scenario:
    result = parse(text, "t.scn")
    assert isinstance(result, Scenario), str(result)
    return result


def err(text: str) -> ScenarioError:
    result = parse(text, "t.scn")
    assert isinstance(result, ScenarioError), f"expected an error, got {result}"
    return result


def actions(text: str) -> list[object]:
    return [s.action for s in ok(text).statements]


# ---------------------------------------------------------------- lexical rules


def test_comments_blank_lines_and_spaces_are_ignored() -> None:
    sc = ok("# a scenario\n\n   spawn P   # the parent\n\t\nP mmap A 1#no space needed\n")
    assert [s.action for s in sc.statements] == [Spawn("P"), Mmap("P", "A", MapKind.BASE, 1)]
    assert [s.line for s in sc.statements] == [3, 5]
    assert sc.statements[0].column == 4
    assert sc.statements[0].text == "spawn P"


def test_quoted_values_with_escapes() -> None:
    sc = ok(PRELUDE + 'P write A[0] "a b"\nP write A[1] "say \\"hi\\" \\\\o/"  # c\n')
    assert sc.statements[2].action == Write(PageRef("P", "A", 0), "a b")
    assert sc.statements[3].action == Write(PageRef("P", "A", 1), 'say "hi" \\o/')
    assert sc.statements[3].text == 'P write A[1] "say \\"hi\\" \\\\o/"'


def test_hash_inside_quotes_is_not_a_comment() -> None:
    sc = ok(PRELUDE + 'P write A[0] "#1"\n')
    assert sc.statements[2].action == Write(PageRef("P", "A", 0), "#1")


def test_bare_values_allow_the_contract_characters() -> None:
    sc = ok(PRELUDE + "P write A[0] 0xff_1.2:3-4\n")
    assert sc.statements[2].action == Write(PageRef("P", "A", 0), "0xff_1.2:3-4")


def test_empty_quoted_value() -> None:
    assert ok(PRELUDE + 'P write A[0] ""\n').statements[2].action == Write(PageRef("P", "A", 0), "")


def test_tokenize_columns() -> None:
    toks = tokenize('  P write A[0] "x y" # c')
    assert [(t.text, t.column, t.quoted) for t in toks] == [
        ("P", 3, False),
        ("write", 5, False),
        ("A[0]", 11, False),
        ("x y", 16, True),
    ]


def test_keywords_are_lower_case_words_of_the_language() -> None:
    for word in ("spawn", "read", "pin", "as", "kernel", "expect", "show", "thp", "swap", "ro"):
        assert word in KEYWORDS
    assert "P" not in KEYWORDS and "A" not in KEYWORDS and "Spawn" not in KEYWORDS


# ---------------------------------------------------------------- header


def test_header_scheme_and_config() -> None:
    sc = ok("scheme page-count\nconfig thp_pages=8 swap_slots=2\nconfig hugetlb_pages=2\nspawn P\n")
    assert sc.scheme == "page-count" and sc.scheme_line == 1
    assert sc.config == Config(thp_pages=8, hugetlb_pages=2, swap_slots=2)
    assert len(sc.statements) == 1


def test_defaults_without_header() -> None:
    sc = ok("spawn P\n")
    assert sc.scheme is None and sc.config == Config()


def test_config_sizes_reach_mmap() -> None:
    ok("config thp_pages=8 hugetlb_pages=2\nspawn P\nP mmap T thp\nP mmap H hugetlb\nP read T[7]\n")
    e = err("config hugetlb_pages=2\nspawn P\nP mmap H hugetlb\nP read H[2]\n")
    assert str(e) == (
        "t.scn: line 4, column 10: page 2 is out of range: mapping H of P has 2 pages "
        "(H[0] to H[1])"
    )


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "spawn P\nscheme mainline\n",
            2,
            1,
            "'scheme' must come before any other statement (line 1 has one)",
        ),
        ("scheme mainline\nscheme page-count\n", 2, 1, "the scheme is already set at line 1"),
        (
            "config swap_slots=3\nscheme mainline\n",
            2,
            1,
            "'scheme' must come before 'config' (line 1)",
        ),
        (
            "spawn P\nconfig swap_slots=3\n",
            2,
            1,
            "'config' must come before any other statement (line 1 has one)",
        ),
        (
            "scheme mainlne\n",
            1,
            8,
            "unknown scheme 'mainlne'; did you mean 'mainline'? schemes: mainline, "
            "no-swp-exclusive, page-count, gup-cow-break, legacy-mapcount, head-only, lts-6.1, "
            "lts-6.18, "
            "mprotect-batch-head, iouring-unpin-head",
        ),
        ("scheme\n", 1, 8, "missing the scheme name, e.g. 'scheme mainline'"),
        ("scheme mainline extra\n", 1, 17, "unexpected 'extra' after 'scheme mainline'"),
        ("scheme mainline expect ok\n", 1, 17, "'scheme' has no outcome to expect"),
        ("config\n", 1, 8, "missing KEY=VALUE after 'config' (e.g. thp_pages=8)"),
        ("config thp_pages\n", 1, 8, "expected KEY=VALUE, not 'thp_pages' (e.g. thp_pages=8)"),
        (
            "config thp_page=8\n",
            1,
            8,
            "unknown config key 'thp_page'; did you mean 'thp_pages'? keys: thp_pages, "
            "hugetlb_pages, swap_slots, mthp_pages",
        ),
        ("config thp_pages=x\n", 1, 18, "thp_pages must be a whole number, not 'x'"),
        ("config thp_pages=-2\n", 1, 18, "thp_pages must be a whole number, not '-2'"),
        ("config thp_pages=6\n", 1, 18, "thp_pages must be a power of two from 2 to 512, not 6"),
        ("config thp_pages=1\n", 1, 18, "thp_pages must be a power of two from 2 to 512, not 1"),
        (
            "config thp_pages=1024\n",
            1,
            18,
            "thp_pages must be a power of two from 2 to 512, not 1024",
        ),
        ("config hugetlb_pages=0\n", 1, 22, "hugetlb_pages must be from 1 to 512, not 0"),
        ("config swap_slots=5000\n", 1, 19, "swap_slots must be at most 4096, not 5000"),
        (
            "config swap_slots=3\nconfig swap_slots=4\n",
            2,
            8,
            "swap_slots is already set at line 1",
        ),
    ],
)
def test_header_errors(text: str, line: int, column: int, message: str) -> None:
    e = err(text)
    assert (e.line, e.column, e.message) == (line, column, message)


def test_thp_pages_accepts_powers_of_two() -> None:
    for n in (2, 4, 16, 512):
        assert ok(f"config thp_pages={n}\n").config.thp_pages == n


# ---------------------------------------------------------------- every statement


def test_every_statement_of_the_contract() -> None:
    text = """\
spawn P
P mmap A 4
P mmap T thp
P mmap H hugetlb
P write A[0] v
P read A[1]
P fork Q
P pin A[0] ro as R1
P pin A[0] rw longterm as R2
P pin A[0] ro longterm fast as R3
P pin A[0] rw fast longterm as R4
P get A[0] ro as G1
P get A[0] rw fast as G2
R2 write x
R1 read
unpin R1
put G1
P mprotect A ro
P mprotect A rw
P madvise A[1] dontneed
P madvise A dontfork
P madvise A[2] dofork
P madvise T collapse
P clear-softdirty
P munmap A
kernel swapout P T[0]
kernel swapcache-drop P T[0]
kernel migrate P T[1]
kernel migrate-begin P T[1]
kernel migrate-end P T[1]
kernel ksm P T[0] Q A[0]
kernel split-pmd P T
kernel split-folio P T
kernel device-private P T[2]
kernel device-private-end P T[2]
kernel device-exclusive P T[3]
kernel poison P H[3]
show
show P T[2]
expect P T[0] present pmd writable exclusive pinned
expect P T[0] swap shared unpinned same-page Q A[0]
expect invariants
Q exit
"""
    p = lambda m, i: PageRef("P", m, i)  # noqa: E731
    assert actions(text) == [
        Spawn("P"),
        Mmap("P", "A", MapKind.BASE, 4),
        Mmap("P", "T", MapKind.THP),
        Mmap("P", "H", MapKind.HUGETLB),
        Write(p("A", 0), "v"),
        Read(p("A", 1)),
        Fork("P", "Q"),
        Gup(p("A", 0), "R1", pin=True, write=False),
        Gup(p("A", 0), "R2", pin=True, write=True, longterm=True),
        Gup(p("A", 0), "R3", pin=True, write=False, longterm=True, fast=True),
        Gup(p("A", 0), "R4", pin=True, write=True, longterm=True, fast=True),
        Gup(p("A", 0), "G1", pin=False, write=False),
        Gup(p("A", 0), "G2", pin=False, write=True, fast=True),
        HandleWrite("R2", "x"),
        HandleRead("R1"),
        Release("R1", pin=True),
        Release("G1", pin=False),
        Mprotect("P", "A", write=False),
        Mprotect("P", "A", write=True),
        Madvise("P", "A", 1, Advice.DONTNEED),
        Madvise("P", "A", None, Advice.DONTFORK),
        Madvise("P", "A", 2, Advice.DOFORK),
        Madvise("P", "T", None, Advice.COLLAPSE),
        ClearSoftDirty("P"),
        Munmap("P", "A"),
        Kernel(KernelAction.SWAPOUT, p("T", 0)),
        Kernel(KernelAction.SWAPCACHE_DROP, p("T", 0)),
        Kernel(KernelAction.MIGRATE, p("T", 1)),
        Kernel(KernelAction.MIGRATE_BEGIN, p("T", 1)),
        Kernel(KernelAction.MIGRATE_END, p("T", 1)),
        Ksm(p("T", 0), PageRef("Q", "A", 0)),
        Kernel(KernelAction.SPLIT_PMD, p("T", 0)),
        Kernel(KernelAction.SPLIT_FOLIO, p("T", 0)),
        Kernel(KernelAction.DEVICE_PRIVATE, p("T", 2)),
        Kernel(KernelAction.DEVICE_PRIVATE_END, p("T", 2)),
        Kernel(KernelAction.DEVICE_EXCLUSIVE, p("T", 3)),
        Kernel(KernelAction.POISON, p("H", 3)),
        Show(),
        Show(p("T", 2)),
        ExpectState(
            p("T", 0),
            (
                StateWord("present", 15),
                StateWord("pmd", 23),
                StateWord("writable", 27),
                StateWord("exclusive", 36),
                StateWord("pinned", 46),
            ),
        ),
        ExpectState(
            p("T", 0),
            (
                StateWord("swap", 15),
                StateWord("shared", 20),
                StateWord("unpinned", 27),
                StateWord("same-page", 36, PageRef("Q", "A", 0)),
            ),
        ),
        ExpectInvariants(),
        Exit("Q"),
    ]


def test_pmd_goes_with_the_kinds_a_pmd_entry_can_have() -> None:
    for kind in ("present", "migration", "hwpoison", "device-exclusive"):
        ok(f"spawn P\nP mmap T thp\nexpect P T[0] {kind} pmd\nexpect P T[1] pmd {kind}\n")


def test_split_on_a_page_names_its_mapping() -> None:
    assert actions("spawn P\nP mmap T thp\nkernel split-pmd P T[2]\n")[-1] == Kernel(
        KernelAction.SPLIT_PMD, PageRef("P", "T", 2)
    )


def test_expect_outcome_suffix() -> None:
    sc = ok(
        PRELUDE
        + "P read A[0] expect 0\nP write A[0] x expect SIGSEGV\nP pin A[0] rw as H expect EFAULT\n"
        + 'kernel ksm P A[0] P A[1] expect skipped\nP read A[1] expect "a b"\n'
        + 'P write A[1] "expect" expect ok\nspawn R expect ok\n'
    )
    got = [(s.expect, s.expect_column) for s in sc.statements[2:]]
    assert got == [
        ("0", 13),
        ("SIGSEGV", 16),
        ("EFAULT", 20),
        ("skipped", 26),
        ("a b", 13),
        ("ok", 23),
        ("ok", 9),
    ]
    assert sc.statements[7].action == Write(PageRef("P", "A", 1), "expect")
    assert sc.statements[2].text == "P read A[0] expect 0"


def test_fork_child_inherits_mapping_names_and_sizes() -> None:
    ok("spawn P\nP mmap A 3\nP fork Q\nQ read A[2]\nQ fork R\nR write A[2] x\n")
    e = err("spawn P\nP mmap A 3\nP fork Q\nP mmap B 1\nQ read B[0]\n")
    assert e.message == "unknown mapping 'B'; mappings of Q: A"


def test_munmap_then_mmap_again_with_another_size() -> None:
    ok("spawn P\nP mmap A 1\nP munmap A\nP mmap A 3\nP read A[2]\n")


def test_a_munmapped_mapping_is_left_to_the_model() -> None:
    # the kernel sends SIGSEGV there; whatever happens is the model's business, not a syntax error
    ok("spawn P\nP mmap A 1\nP munmap A\nP read A[0]\n")


def test_a_munmapped_mapping_is_not_inherited() -> None:
    e = err("spawn P\nP mmap A 1\nP munmap A\nP fork Q\nQ read A[0]\n")
    assert e.message == "unknown mapping 'A'; Q has no mappings (create one with 'Q mmap A 1')"


def test_a_handle_name_can_be_reused_after_release() -> None:
    ok(PRELUDE + "P pin A[0] ro as H\nunpin H\nP get A[0] rw as H\nH write x\nput H\n")


def test_process_and_handle_forms_of_read_and_write() -> None:
    got = actions(PRELUDE + "P get A[0] rw as H\nH write x\nH read\nP write A[0] y\nP read A[0]\n")
    assert got[3:] == [
        HandleWrite("H", "x"),
        HandleRead("H"),
        Write(PageRef("P", "A", 0), "y"),
        Read(PageRef("P", "A", 0)),
    ]


# ---------------------------------------------------------------- errors, one per path

E = [
    # lexical
    (PRELUDE + 'P write A[0] "abc\n', 3, 14, 'unterminated quoted value: a closing " is missing'),
    (
        PRELUDE + 'P write A[0] "a\\nb"\n',
        3,
        16,
        "unknown escape '\\n' in a quoted value; only \\\" and \\\\ are allowed",
    ),
    (PRELUDE + 'P write A[0] "a"b\n', 3, 17, "put a space after a quoted value"),
    (PRELUDE + 'P write A[0] a"b"\n', 3, 15, 'unexpected \'"\': quote a whole value, as in "a b"'),
    (
        PRELUDE + "P write A[0] a/b\n",
        3,
        14,
        "'a/b' is not a value: use letters, digits and _ . : - or quote it (\"a b\")",
    ),
    # statements and names
    (
        "spwan P\n",
        1,
        1,
        "unknown statement 'spwan'; did you mean 'spawn'? a statement starts with scheme, config, "
        "show, expect, for, spawn, unpin, put, kernel, or a process (processes: none yet) or "
        "handle name",
    ),
    (
        "Spawn P\n",
        1,
        1,
        "unknown statement 'Spawn'; did you mean 'spawn'? a statement starts with scheme, config, "
        "show, expect, for, spawn, unpin, put, kernel, or a process or handle name",
    ),
    ("spawn\n", 1, 7, "missing the new process's name: 'spawn P'"),
    ("spawn P Q\n", 1, 9, "unexpected 'Q' after 'spawn P'"),
    ("spawn read\n", 1, 7, "'read' is a keyword and cannot name a process"),
    (
        "spawn 1P\n",
        1,
        7,
        "'1P' cannot name a process: a name is a letter or _ followed by letters, digits and _",
    ),
    ("spawn P\nspawn P\n", 2, 7, "process 'P' already exists (line 1)"),
    (PRELUDE + "P fork P\n", 3, 8, "process 'P' already exists (line 1)"),
    (PRELUDE + "P fork\n", 3, 8, "missing the child's name: 'P fork Q'"),
    (
        "spawn P\nQ mmap A 1\n",
        2,
        1,
        "unknown process 'Q'; processes: P",
    ),
    (
        "spawn Parent\nparent mmap A 1\n",
        2,
        1,
        "unknown process 'parent'; did you mean 'Parent'? processes: Parent",
    ),
    (
        "expect P A[0] present\n",
        1,
        8,
        "unknown process 'P'; no process exists yet (create one with 'spawn P')",
    ),
    (PRELUDE + "P\n", 3, 3, "missing the operation after 'P'"),
    (
        PRELUDE + "P reed A[0]\n",
        3,
        3,
        "unknown operation 'reed'; did you mean 'read'? a process can: mmap, write, read, fork, "
        "pin, get, mprotect, madvise, clear-softdirty, munmap, mremap, exit",
    ),
    (
        PRELUDE + "X read A[0]\n",
        3,
        1,
        "unknown process or handle 'X'; processes and handles: P",
    ),
    (
        PRELUDE + "P get A[0] ro as H\nH mmap B 1\n",
        4,
        3,
        "'H' is a handle; a handle can: read, write",
    ),
    # mappings and pages
    (
        "spawn P\nP read A[0]\n",
        2,
        8,
        "unknown mapping 'A'; P has no mappings (create one with 'P mmap A 1')",
    ),
    (PRELUDE + "P read B[0]\n", 3, 8, "unknown mapping 'B'; mappings of P: A"),
    (
        PRELUDE + "P mmap AB 1\nP read Ab[0]\n",
        4,
        8,
        "unknown mapping 'Ab'; did you mean 'AB'? mappings of P: A, AB",
    ),
    (
        PRELUDE + "P read A[2]\n",
        3,
        10,
        "page 2 is out of range: mapping A of P has 2 pages (A[0] to A[1])",
    ),
    (
        "spawn P\nP mmap A 1\nP read A[1]\n",
        3,
        10,
        "page 1 is out of range: mapping A of P has 1 page (A[0])",
    ),
    (
        "spawn P\nP mmap T thp\nP read T[4]\n",
        3,
        10,
        "page 4 is out of range: mapping T of P has 4 pages (T[0] to T[3])",
    ),
    (
        PRELUDE + "P read A[x]\n",
        3,
        8,
        "expected a page such as A[0], not 'A[x]': write A[i], i from 0",
    ),
    (PRELUDE + "P read A\n", 3, 8, "expected a page such as A[0], not 'A': write A[i], i from 0"),
    (
        PRELUDE + "P read A[-1]\n",
        3,
        8,
        "expected a page such as A[0], not 'A[-1]': write A[i], i from 0",
    ),
    (PRELUDE + "P read\n", 3, 8, "missing the page: 'P read A[0]'"),
    (PRELUDE + "P read A[0] A[1]\n", 3, 13, "unexpected 'A[1]' after 'P read A[0]'"),
    (PRELUDE + "P write A[0]\n", 3, 14, "missing the value to write: 'P write A[0] v'"),
    (PRELUDE + "P write\n", 3, 9, "missing the page and the value: 'P write A[0] v'"),
    (PRELUDE + "P write A[0] 1 2\n", 3, 16, "unexpected '2' after 'P write A[0] 1'"),
    # mmap
    (PRELUDE + "P mmap A 1\n", 3, 8, "mapping 'A' already exists in P (line 2)"),
    (
        PRELUDE + "P mmap B 0\n",
        3,
        10,
        "the size must be a number of pages from 1 to 512, 'thp', 'hugetlb' or 'mthp', not '0'",
    ),
    (
        PRELUDE + "P mmap B huge\n",
        3,
        10,
        "the size must be a number of pages from 1 to 512, 'thp', 'hugetlb' or 'mthp', not 'huge'",
    ),
    (
        PRELUDE + "P mmap B\n",
        3,
        10,
        "missing the mapping name and its size: 'P mmap A 4', 'thp', 'hugetlb', 'mthp' or '4 mthp'",
    ),
    (PRELUDE + "P mmap pin 1\n", 3, 8, "'pin' is a keyword and cannot name a mapping"),
    # GUP
    (
        PRELUDE + "P pin A[0]\n",
        3,
        12,
        "missing ro or rw after the page: 'P pin A[i] ro|rw [longterm] [fast] as H'",
    ),
    (PRELUDE + "P pin\n", 3, 7, "missing the page: 'P pin A[i] ro|rw [longterm] [fast] as H'"),
    (
        PRELUDE + "P pin A[0] r as H\n",
        3,
        12,
        "expected ro or rw, not 'r': 'P pin A[i] ro|rw [longterm] [fast] as H'",
    ),
    (
        PRELUDE + "P pin A[0] ro\n",
        3,
        15,
        "missing 'as H' to name the reference: 'P pin A[i] ro|rw [longterm] [fast] as H'",
    ),
    (
        PRELUDE + "P pin A[0] ro H\n",
        3,
        15,
        "expected 'as H', not 'H': 'P pin A[i] ro|rw [longterm] [fast] as H'",
    ),
    (
        PRELUDE + "P pin A[0] ro as\n",
        3,
        18,
        "missing the handle's name after 'as': 'P pin A[i] ro|rw [longterm] [fast] as H'",
    ),
    (PRELUDE + "P pin A[0] ro as H x\n", 3, 20, "unexpected 'x' after the handle's name"),
    (PRELUDE + "P pin A[0] ro fast fast as H\n", 3, 20, "'fast' is repeated"),
    (
        PRELUDE + "P get A[0] ro longterm as H\n",
        3,
        15,
        "'longterm' applies to 'pin' (FOLL_LONGTERM needs FOLL_PIN)",
    ),
    (PRELUDE + "P pin A[0] ro as P\n", 3, 18, "'P' is already a process"),
    (PRELUDE + "P pin A[0] ro as get\n", 3, 18, "'get' is a keyword and cannot name a handle"),
    (
        PRELUDE + "P pin A[0] ro as H\nP pin A[1] ro as H\n",
        4,
        18,
        "handle 'H' already exists (line 3); release it first or pick another name",
    ),
    (PRELUDE + "P pin A[0] ro as H\nspawn H\n", 4, 7, "'H' is already a handle"),
    # handles
    (
        PRELUDE + "P pin A[0] ro as H\nH write 3\n",
        4,
        3,
        "handle 'H' is read-only (taken 'ro' at line 3); only a 'rw' reference can write",
    ),
    (PRELUDE + "P get A[0] rw as H\nH write\n", 4, 9, "missing the value: 'H write v'"),
    (PRELUDE + "P get A[0] rw as H\nH read x\n", 4, 8, "unexpected 'x' after 'H read'"),
    (
        PRELUDE + "P get A[0] ro as H\nunpin H\n",
        4,
        1,
        "'unpin' cannot release 'H': it was taken with 'get' at line 3; use 'put H'",
    ),
    (
        PRELUDE + "P pin A[0] ro as H\nput H\n",
        4,
        1,
        "'put' cannot release 'H': it was taken with 'pin' at line 3; use 'unpin H'",
    ),
    (PRELUDE + "P pin A[0] ro as H\nunpin H\nH read\n", 5, 1, "handle 'H' was released at line 4"),
    (PRELUDE + "P pin A[0] ro as H\nunpin H\nunpin H\n", 5, 7, "handle 'H' was released at line 4"),
    (
        PRELUDE + "unpin H\n",
        3,
        7,
        "unknown handle 'H'; no handle exists (take one with 'P pin A[0] rw as H')",
    ),
    (
        PRELUDE + "P pin A[0] ro as H1\nunpin H\n",
        4,
        7,
        "unknown handle 'H'; did you mean 'H1'? handles: H1",
    ),
    (PRELUDE + "unpin\n", 3, 7, "missing the handle: 'unpin H'"),
    # mprotect, madvise, munmap, exit, clear-softdirty
    (PRELUDE + "P mprotect A rx\n", 3, 14, "expected ro or rw, not 'rx'"),
    (
        PRELUDE + "P mprotect A[0] ro\n",
        3,
        12,
        "mprotect takes a whole mapping: 'P mprotect A ro|rw'",
    ),
    (PRELUDE + "P mprotect B ro\n", 3, 12, "unknown mapping 'B'; mappings of P: A"),
    (PRELUDE + "P mprotect A\n", 3, 14, "missing the mapping and ro or rw: 'P mprotect A ro'"),
    (
        PRELUDE + "P madvise A[0] dontneeed\n",
        3,
        16,
        "unknown advice 'dontneeed'; did you mean 'dontneed'? advice: dontneed, dontfork, dofork, "
        "collapse",
    ),
    (
        PRELUDE + "P madvise A[0] collapse\n",
        3,
        11,
        "collapse applies to a whole mapping: 'P madvise A collapse'",
    ),
    (
        PRELUDE + "P madvise A[5] dontneed\n",
        3,
        13,
        "page 5 is out of range: mapping A of P has 2 pages (A[0] to A[1])",
    ),
    (PRELUDE + "P munmap A[0]\n", 3, 10, "munmap takes a whole mapping: 'P munmap A'"),
    (PRELUDE + "P munmap\n", 3, 10, "missing the mapping: 'P munmap A'"),
    (PRELUDE + "P exit now\n", 3, 8, "unexpected 'now' after 'P exit'"),
    (PRELUDE + "P clear-softdirty A\n", 3, 19, "unexpected 'A' after 'P clear-softdirty'"),
    # kernel
    (
        PRELUDE + "kernel\n",
        3,
        8,
        "missing what the kernel does: one of " + ACTIONS,
    ),
    (
        PRELUDE + "kernel swapot P A[0]\n",
        3,
        8,
        "unknown kernel action 'swapot'; did you mean 'swapout'? actions: " + ACTIONS,
    ),
    (PRELUDE + "kernel swapout P\n", 3, 18, "missing the page: 'kernel swapout P A[i]'"),
    (
        PRELUDE + "kernel swapout P A\n",
        3,
        18,
        "expected a page such as A[0], not 'A': write A[i], i from 0",
    ),
    (PRELUDE + "kernel swapout Q A[0]\n", 3, 16, "unknown process 'Q'; processes: P"),
    (PRELUDE + "kernel ksm P A[0] P\n", 3, 21, "missing two pages: 'kernel ksm P A[i] Q B[j]'"),
    (PRELUDE + "kernel split-pmd P B\n", 3, 20, "unknown mapping 'B'; mappings of P: A"),
    (PRELUDE + "kernel split-pmd P\n", 3, 20, "missing the mapping: 'kernel split-pmd P A'"),
    # expect suffix
    (
        PRELUDE + "P read A[0] expect\n",
        3,
        20,
        "missing the outcome after 'expect' (e.g. 'expect ok')",
    ),
    (
        PRELUDE + "P read A[0] expect 1 2\n",
        3,
        22,
        "unexpected '2': 'expect' takes one outcome (quote a value with spaces)",
    ),
    (
        PRELUDE + "P read A[0] expect a/b\n",
        3,
        20,
        "'a/b' is not a value: use letters, digits and _ . : - or quote it (\"a b\")",
    ),
    (PRELUDE + "show expect ok\n", 3, 6, "'show' has no outcome to expect"),
    (PRELUDE + "expect invariants expect ok\n", 3, 19, "a check has no outcome to expect"),
    # show
    (PRELUDE + "show P\n", 3, 8, "missing the page after the process: 'show P A[i]'"),
    (PRELUDE + "show P A[0] x\n", 3, 13, "unexpected 'x': 'show' takes at most 'P A[i]'"),
    (
        PRELUDE + "show P A[9]\n",
        3,
        10,
        "page 9 is out of range: mapping A of P has 2 pages (A[0] to A[1])",
    ),
    # expect checks
    (
        PRELUDE + "expect\n",
        3,
        8,
        "missing what to expect: 'expect invariants' or 'expect P A[i] WORD...'",
    ),
    (PRELUDE + "expect invariants now\n", 3, 19, "unexpected 'now' after 'expect invariants'"),
    (PRELUDE + "expect P\n", 3, 10, "missing the page after 'expect P'"),
    (
        PRELUDE + "expect P A[0]\n",
        3,
        15,
        "missing state words after 'expect P A[0]' (e.g. present writable exclusive)",
    ),
    (
        PRELUDE + "expect P A[0] writeable\n",
        3,
        15,
        "unknown state word 'writeable'; did you mean 'writable'? state words: none, present, "
        "pmd, swap, migration, device-private, device-exclusive, hwpoison, writable, readonly, "
        "exclusive, shared, pinned, unpinned, same-page",
    ),
    (PRELUDE + "expect P A[0] writable readonly\n", 3, 24, "'readonly' contradicts 'writable'"),
    (PRELUDE + "expect P A[0] pinned unpinned\n", 3, 22, "'unpinned' contradicts 'pinned'"),
    (PRELUDE + "expect P A[0] shared exclusive\n", 3, 22, "'exclusive' contradicts 'shared'"),
    (
        PRELUDE + "expect P A[0] present swap\n",
        3,
        23,
        "'swap' contradicts 'present': an entry has one kind",
    ),
    (PRELUDE + "expect P A[0] present present\n", 3, 23, "'present' is repeated"),
    (
        PRELUDE + "expect P A[0] swap pmd\n",
        3,
        20,
        "'pmd' contradicts 'swap': an entry has one kind",
    ),
    (
        PRELUDE + "expect P A[0] pmd none\n",
        3,
        19,
        "'none' contradicts 'pmd': an entry has one kind",
    ),
    (PRELUDE + "expect P A[0] swap writable\n", 3, 20, "'writable' is undefined for a swap entry"),
    (
        PRELUDE + "expect P A[0] readonly hwpoison\n",
        3,
        24,
        "'readonly' is undefined for a hwpoison entry",
    ),
    (
        PRELUDE + "expect P A[0] none exclusive\n",
        3,
        20,
        "'exclusive' is undefined for a none entry",
    ),
    (PRELUDE + "expect P A[0] same-page P\n", 3, 27, "missing the other page: 'same-page Q B[j]'"),
    (PRELUDE + "expect P A[0] same-page Q A[0]\n", 3, 25, "unknown process 'Q'; processes: P"),
    (
        PRELUDE + "expect P A[3] present\n",
        3,
        12,
        "page 3 is out of range: mapping A of P has 2 pages (A[0] to A[1])",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), E)
def test_errors(text: str, line: int, column: int, message: str) -> None:
    e = err(text)
    assert (e.line, e.column, e.message) == (line, column, message)


def test_error_text_names_file_line_and_column() -> None:
    e = err("spawn P\nP mmap A 1\nP read B[0]\n")
    assert str(e) == "t.scn: line 3, column 8: unknown mapping 'B'; mappings of P: A"


def test_the_first_error_is_reported() -> None:
    e = err("spawn P\nP read A[0]\nP read B[0]\n")
    assert e.line == 2


def test_parse_never_raises_on_garbage() -> None:
    for text in ["\x00", "[[[", '"', "\\", "expect expect", "kernel ksm", "P[0]", "A[0] read"]:
        assert isinstance(parse(text), (Scenario, ScenarioError))
