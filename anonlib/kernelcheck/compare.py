"""Compare what the model did with what the real kernel did, statement by statement.

The VM prints one line per statement (``@r SEQ OUTCOME``) and one per observed
page (``@o SEQ ID pm=... kf=... head=... hkf=... kc=... ahp=...``: the
pagemap entry, the kpageflags of the frame and of its compound head, the
kpagecount, and the AnonHugePages of the VMA). :func:`decode_page` turns an
observation into the state words the kernel exposes; :func:`compare_plan`
sets them and the outcomes beside the model's.

What the kernel exposes, and what it does not
---------------------------------------------
* outcomes: values read (through the mapping or a reference), SIGSEGV and
  SIGBUS, GUP errors, madvise errors, and ``skipped`` for a kernel action
  that left the page where it was (found by looking, since MADV_PAGEOUT,
  move_pages, KSM and debugfs do not say);
* kinds: ``present`` and ``swap`` (pagemap bits 63, 62), ``hwpoison`` and
  ``migration`` (the swap type of a non-present entry; hugetlb entries show
  neither, so a hugetlb ``hwpoison`` is not checked), ``none``;
* ``pmd``: the VMA's AnonHugePages in smaps;
* ``exclusive`` / ``shared`` on present anonymous pages: kpageflags bit 34
  (KPF_MAPPEDTODISK, which is PG_anon_exclusive on anonymous pages) of the
  head page for a PMD-mapped THP or a hugetlb page, of the page itself
  for a small folio (and for the first page of a PTE-mapped THP or an
  mTHP). For the other pages of a PTE-mapped THP or an mTHP 6.12's
  kpageflags does not show it: it reads the *folio's* flags, so every
  subpage shows the head's flag (measured: a subpage that a write reuses as
  exclusive reads as shared while the head is shared). For those the guest
  reads the page's own ``struct page`` through /proc/kcore (``pf=``,
  ``pfh=``), trusted only where it agrees with kpageflags
  (:func:`_own_struct_page`; check :data:`OWN_FLAG`). 6.1's kpageflags reads
  each page's own flags (fs/proc/page.c: stable_page_flags), so there every
  subpage's flag comes from kpageflags (``Series.own_page_flags``) and the
  /proc/kcore reading, whose bit numbers are 6.12's, is not used. The zero
  page is never exclusive;
* ``same-page``: the frame numbers;
* in an ``mthp`` mapping, the folio: how many pages the page's folio has and
  which of them the page is. The guest finds the folio from the frame's
  kpageflags (KPF_COMPOUND_HEAD / KPF_COMPOUND_TAIL: the head is the nearest
  frame below that is not a tail, the size the run of tails after it), so an
  mTHP the model expects is checked to be real, of the size expected, with
  the page at the expected place in it (a buddy allocation is physically
  contiguous and naturally aligned, so this is also the alignment check).

* ``writable`` just before a ``write``: the reply's ``faults=N`` (the page
  faults of the first store) against the model's entry (:func:`write_check`).

Not exposed, so never compared: ``writable``/``readonly`` at an ``expect``
(pagemap has no write bit, and a probe would change it),
``pinned``/``unpinned``, and the swap PTE's exclusive bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model import PageState
from ..ops import MapKind, PageRef
from ..results import ModelError
from ..scenario.syntax import ExpectInvariants, ExpectState
from .plan import HUGE_PAGES, Observation, Plan, Step, decode_value
from .vm import DEFAULT_SERIES, SERIES, Series

AGREED, DISAGREED, KNOWN, NOT_CHECKED = "agreed", "disagreed", "known difference", "not checked"

# pagemap and kpageflags bits (Documentation/admin-guide/mm/pagemap.rst)
PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PFN_MASK = (1 << 55) - 1
SWP_TYPE_BITS = 5
KPF_ANON = 12
KPF_SWAPCACHE = 13
KPF_COMPOUND_HEAD = 15
KPF_HWPOISON = 19
KPF_THP = 22
KPF_ZERO_PAGE = 24
KPF_ANON_EXCLUSIVE = 34  # KPF_MAPPEDTODISK: PG_mappedtodisk is PG_anon_exclusive on anon pages
# struct page's own flags word (include/linux/page-flags.h, 6.12: enum pageflags); 6.1
# numbers them differently, and there kpageflags shows every page's own flag anyway.
PG_HEAD = 6
PG_ANON_EXCLUSIVE = 11  # PG_owner_2

#: Measured on 6.12.117: /proc/kpageflags reads the folio's flags, so every page of a
#: large folio shows the head page's PG_anon_exclusive, not its own. The guest reads the
#: tail page's own struct page through /proc/kcore instead; without it (no ``pf=``):
TAIL_FLAG = ("kpageflags shows the head page's flag for every page of a large folio, "
             "so a PTE-mapped subpage's own flag is not visible")
#: The tail page's struct page did not point at the head kpageflags found.
KCORE_LAYOUT = ("the struct page read through /proc/kcore does not belong to the folio "
                "kpageflags shows (the vmemmap layout assumed is wrong)")
#: The check name of a tail page's flag read from its own struct page.
OWN_FLAG = "exclusive (own struct page, /proc/kcore)"
#: Why ``expect invariants`` is never checked on the kernel.
INVARIANTS = ("expect invariants checks the model's own invariants (docs/invariants.md), "
              "which are statements about the model, not something the kernel shows")
#: The check name of a write's page faults against the model's writable bit.
WRITE_CHECK = "writable before the write (page faults)"

#: The name of a folio check where a thp mapping has an mTHP the model has a small folio
#: for (the mTHP sizes are on for the scenario's mthp mappings, and the thp mapping is
#: MADV_HUGEPAGE too): tools/kernelcheck/known-differences.toml explains it.
MTHP_IN_THP = "mTHP in a thp mapping"

UNOBSERVABLE_WORDS = {
    "writable": "pagemap has no write bit (a write's page faults show it: the write check)",
    "readonly": "pagemap has no write bit (a write's page faults show it: the write check)",
    "pinned": "no interface shows a folio's pin count",
    "unpinned": "no interface shows a folio's pin count",
}


@dataclass(frozen=True)
class KernelPage:
    """The state words of one page as the real kernel shows them (None: not visible)."""

    kind: str
    pmd: bool | None = None
    exclusive: bool | None = None
    exclusive_why: str = ""
    phys: int | None = None
    flags: tuple[str, ...] = ()
    raw: str = ""
    #: (pages of the frame's folio, the frame's index in it); None: not reported
    folio: tuple[int, int] | None = None
    #: ``exclusive`` is a tail page's own flag, read from its struct page (/proc/kcore)
    own_flag: bool = False
    #: the struct page read through /proc/kcore contradicts kpageflags (why), or ""
    kcore_mismatch: str = ""

    def describe(self) -> str:
        words = [self.kind]
        if self.pmd:
            words.append("pmd")
        if self.exclusive is not None:
            words.append("exclusive" if self.exclusive else "shared")
        words += [f"[{f}]" for f in self.flags]
        return " ".join(words)


def _bit(v: int, b: int) -> bool:
    return bool(v >> b & 1)


def decode_page(text: str, kind: MapKind, series: Series = SERIES[DEFAULT_SERIES]
                ) -> KernelPage:
    """An ``@o`` observation (everything after the id) as state words."""
    if text.strip() == "gone":
        return KernelPage("gone", raw=text)
    f = dict(kv.split("=", 1) for kv in text.split() if "=" in kv)
    pm = int(f.get("pm", "0"), 16)
    kf = int(f.get("kf", "0"), 16)
    hkf = int(f.get("hkf", "0"), 16)
    ahp = int(f.get("ahp", "-1"))
    if pm & PM_PRESENT:
        flags = tuple(name for bit, name in ((KPF_THP, "thp"), (KPF_SWAPCACHE, "swapcache"),
                                             (KPF_HWPOISON, "hwpoison-flag"),
                                             (KPF_ZERO_PAGE, "zero-page"))
                      if _bit(kf, bit))
        # AnonHugePages counts anonymous THPs; the huge zero page shows as a zero page
        # that is part of a THP (the PMD split maps the small zero page instead).
        huge_zero = _bit(kf, KPF_ZERO_PAGE) and _bit(kf, KPF_THP)
        pmd = kind is MapKind.THP and (ahp > 0 or huge_zero)
        pfn, head = pm & PFN_MASK, int(f.get("head", "0"), 16)
        own, mismatch = (None, "") if series.own_page_flags else _own_struct_page(f, pfn, kf)
        excl: bool | None
        own_flag = False
        if _bit(kf, KPF_ZERO_PAGE):
            excl, why = False, ""  # the zero page is never exclusive
        elif not _bit(kf, KPF_ANON):
            excl, why = None, "not an anonymous page"
        elif pmd or kind is MapKind.HUGETLB:  # the flag lives in the head page
            excl, why = _bit(hkf, KPF_ANON_EXCLUSIVE), ""
        elif head == pfn or series.own_page_flags:  # a small folio, a large one's first
            # page, or any page where kpageflags shows each page's own flags (6.1)
            excl, why = _bit(kf, KPF_ANON_EXCLUSIVE), ""
        elif own is None:  # a PTE-mapped tail page, and no trusted struct page
            excl, why = None, mismatch or TAIL_FLAG
        else:  # a PTE-mapped tail page: its own struct page's flag
            excl, why, own_flag = own, "", True
        folio = (int(f["np"]), pfn - head) if "np" in f else None
        return KernelPage("present", pmd, excl, why, pfn, flags, text, folio,
                          own_flag=own_flag, kcore_mismatch=mismatch)
    if pm & PM_SWAP:
        frame = pm & PFN_MASK
        swp_type, offset = frame & ((1 << SWP_TYPE_BITS) - 1), frame >> SWP_TYPE_BITS
        # the special types follow the swap files: hwpoison, then three migration types
        # (where they start depends on the kernel's build: Series.max_swapfiles)
        max_swapfiles = series.max_swapfiles
        if swp_type == max_swapfiles:
            return KernelPage("hwpoison", phys=offset, raw=text)
        if max_swapfiles < swp_type <= max_swapfiles + 3:
            return KernelPage("migration", phys=offset, raw=text)
        if swp_type < max_swapfiles:
            return KernelPage("swap", exclusive_why="the swap PTE's exclusive bit is not "
                              "visible from user space", raw=text)
        return KernelPage(f"swap-type-{swp_type}", raw=text)
    if kind is MapKind.HUGETLB:
        return KernelPage("none", exclusive_why="", raw=text,
                          flags=("hugetlb: pagemap shows hwpoison entries as none",))
    return KernelPage("none", raw=text)


def _own_struct_page(f: dict[str, str], pfn: int, kf: int) -> tuple[bool | None, str]:
    """A page's own PG_anon_exclusive from its struct page (``pf=``, ``pfh=``), checked.

    The guest reads the frame's ``struct page`` through ``/proc/kcore``:
    ``pf`` its flags word, ``pfh`` the frame its ``compound_head`` points to
    (``-`` when it is no tail). The reading is trusted only where it agrees
    with kpageflags: a tail must point at the head kpageflags found (this
    checks the vmemmap base and the size of a struct page); a head or small
    page must show kpageflags' PG_head and PG_anon_exclusive, since kpageflags
    reads exactly that word for them (this checks the bit numbers). Returns
    (the flag, "") or (None, why it is not trusted); (None, "") without ``pf``.
    """
    if "pf" not in f:
        return None, ""
    pf = int(f["pf"], 16)
    pfh = f.get("pfh", "-")
    head = int(f.get("head", "0"), 16)
    if head != pfn:
        if pfh == "-" or int(pfh, 16) != head:
            return None, KCORE_LAYOUT
        return _bit(pf, PG_ANON_EXCLUSIVE), ""
    if pfh != "-" or _bit(pf, PG_HEAD) != _bit(kf, KPF_COMPOUND_HEAD) \
            or (_bit(kf, KPF_ANON) and _bit(pf, PG_ANON_EXCLUSIVE) != _bit(kf, KPF_ANON_EXCLUSIVE)):
        return None, KCORE_LAYOUT
    return _bit(pf, PG_ANON_EXCLUSIVE), ""


def kernel_outcome(reply: str) -> tuple[str, str]:
    """(outcome word, note) from an ``@r`` reply."""
    words = reply.split()
    if not words:
        return "error", "empty reply"
    head = words[0]
    if head == "val":
        value = decode_value(words[1]) if len(words) > 1 else "?"
        note = "the subpages of the block read different values" if "mixed" in words else ""
        return value, note
    if head in ("ok", "skipped", "SIGSEGV", "SIGBUS") or re.fullmatch(r"E[A-Z0-9]+", head):
        return head, " ".join(words[1:])
    return head, " ".join(words[1:])


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Check:
    """One comparison: what it is about, what each side shows, and whether they agree."""

    name: str
    model: str
    kernel: str
    agreed: bool | None  # None: not checked
    note: str = ""


@dataclass
class StatementResult:
    """The verdict on one statement of a scenario."""

    line: int
    text: str
    verdict: str
    checks: list[Check] = field(default_factory=list)
    reason: str = ""
    known: list[str] = field(default_factory=list)  # the known differences that explain it

    @property
    def disagreements(self) -> list[Check]:
        return [c for c in self.checks if c.agreed is False]


@dataclass
class FileResult:
    """The verdicts on one scenario file."""

    name: str
    statements: list[StatementResult] = field(default_factory=list)
    error: str = ""  # the file could not be checked at all

    def count(self, verdict: str) -> int:
        return sum(1 for s in self.statements if s.verdict == verdict)

    @property
    def agreed(self) -> int:
        return self.count(AGREED)

    @property
    def disagreed(self) -> int:
        return self.count(DISAGREED)

    @property
    def known(self) -> int:
        return self.count(KNOWN)

    @property
    def not_checked(self) -> int:
        return self.count(NOT_CHECKED)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.disagreed:
            return "DISAGREES"
        if self.known:
            return "known differences"
        if self.agreed:
            return "agrees"
        return "not checked"


@dataclass
class KernelRun:
    """What the VM printed for one scenario."""

    replies: dict[int, str] = field(default_factory=dict)
    observations: dict[str, str] = field(default_factory=dict)
    stopped_at: int | None = None
    stop_why: str = ""  # the VM's reason for stopping after a statement it carried out
    complete: bool = False


@dataclass
class VMOutput:
    """Everything one boot printed on the result channel."""

    header: dict[str, str] = field(default_factory=dict)
    runs: dict[str, KernelRun] = field(default_factory=dict)
    done: bool = False


def parse_output(text: str) -> VMOutput:
    """Split the VM's result channel into per-scenario runs."""
    out = VMOutput()
    run: KernelRun | None = None
    for line in text.splitlines():
        if not line.startswith("@"):
            continue
        words = line.split(maxsplit=3)
        tag = words[0][1:]
        if tag == "begin" and len(words) > 1:
            run = out.runs.setdefault(words[1], KernelRun())
        elif tag == "end" and run is not None:
            run.complete = True
            run = None
        elif tag == "r" and run is not None and len(words) >= 2:
            run.replies[int(words[1])] = line.split(maxsplit=2)[2] if len(words) > 2 else ""
        elif tag == "o" and run is not None and len(words) >= 3:
            run.observations[words[2]] = words[3] if len(words) > 3 else ""
        elif tag == "stopped" and run is not None:
            m = re.search(r" at (\d+)(?: \((.*)\))?$", line)
            run.stopped_at = int(m.group(1)) if m else None
            run.stop_why = (m.group(2) or "") if m else ""
        elif tag == "done":
            out.done = True
        elif len(words) > 1:
            out.header[tag] = line.split(maxsplit=1)[1]
    return out


# ------------------------------------------------------------------ comparing


def _model_words(ps: PageState) -> str:
    return " ".join(ps.words())


def compare_page(ob: Observation, kp: KernelPage) -> list[Check]:
    """The checks for one observed page: kind, pmd, exclusive."""
    where = str(ob.ref)
    ps = ob.model
    if isinstance(ps, ModelError):
        return [Check(f"{where}: state", f"error: {ps.message}", kp.describe(), None,
                      "the model cannot say")]
    checks: list[Check] = []
    mw, kw = _model_words(ps), kp.describe()
    if kp.kind == "gone":
        return [Check(f"{where}: kind", ps.kind, "process gone", False,
                      "the real process no longer exists")]
    if kp.kind == "none" and ob.kind is MapKind.HUGETLB and ps.kind == "hwpoison":
        return [Check(f"{where}: kind", ps.kind, kp.kind, None,
                      "pagemap shows a hugetlb hwpoison entry as none")]
    checks.append(Check(f"{where}: kind", ps.kind, kp.kind, ps.kind == kp.kind,
                        " ".join(kp.flags)))
    if ps.kind != kp.kind:
        return checks
    if ps.kind == "present" and ob.kind is MapKind.THP:
        checks.append(Check(f"{where}: pmd", "pmd" if ps.pmd else "pte",
                            "pmd" if kp.pmd else "pte", bool(ps.pmd) == bool(kp.pmd)))
    mf = _model_folio(ob)
    if ps.kind == "present" and mf is not None and kp.folio is not None:
        name = f"{where}: folio"
        if ob.kind is MapKind.THP and mf == (1, 0) and 1 < kp.folio[0] < HUGE_PAGES:
            name += f" ({MTHP_IN_THP})"
        checks.append(Check(name, _folio_text(mf), _folio_text(kp.folio), mf == kp.folio))
    if kp.kcore_mismatch:
        checks.append(Check(f"{where}: struct page (/proc/kcore)", "", kp.raw, False,
                            kp.kcore_mismatch))
    if ps.exclusive is not None:
        if kp.exclusive is None:
            checks.append(Check(f"{where}: exclusive", mw, kw, None,
                                kp.exclusive_why or "not visible"))
        else:
            checks.append(Check(f"{where}: {OWN_FLAG if kp.own_flag else 'exclusive'}",
                                "exclusive" if ps.exclusive else "shared",
                                "exclusive" if kp.exclusive else "shared",
                                ps.exclusive == kp.exclusive))
    return checks


def write_check(ref: PageRef, writable: bool, faults: int) -> Check:
    """The write check: did the write's first store fault, as the model's entry says?

    The guest counts the page faults (``getrusage``: minor plus major) of the
    first store of a ``write``; a present, writable PTE or PMD takes none,
    anything else at least one (a COW, a reuse, a swap-in or a first touch is
    a fault). ``writable``: the model's entry just before the write.
    """
    return Check(f"{ref}: {WRITE_CHECK}",
                 "writable (no fault)" if writable else "not writable (fault)",
                 f"{faults} fault{'s' * (faults != 1)}", (faults == 0) == writable)


def _model_folio(ob: Observation) -> tuple[int, int] | None:
    """The real folio the model's stands for: (pages, index of the observed frame).

    In an ``mthp`` mapping a model page is a real page. In a ``thp`` mapping
    model page ``i`` is the first of a block of ``512 / thp_pages`` real
    subpages, so a model THP stands for the real 512-page THP and a small
    folio for a small one (so an mTHP where the model has a small folio, as
    a PTE fault in a ``thp`` mapping of a scenario with ``mthp`` sizes may
    give, shows). Other mappings: not compared.
    """
    ps = ob.model
    if not isinstance(ps, PageState) or ps.page is None or ob.folio_pages is None:
        return None
    if ob.kind is MapKind.MTHP:
        return ob.folio_pages, ps.page[1]
    if ob.kind is MapKind.THP:
        if ob.folio_pages == 1:
            return 1, 0
        if HUGE_PAGES % ob.folio_pages:
            return None
        block = HUGE_PAGES // ob.folio_pages
        return HUGE_PAGES, ps.page[1] * block
    return None


def _folio_text(f: tuple[int, int]) -> str:
    return "small folio" if f == (1, 0) else f"page {f[1]} of a {f[0]}-page folio"


def _same_page_checks(step: Step, pages: dict[str, KernelPage]) -> list[Check]:
    by_ref = {ob.ref: ob for ob in step.observations}
    checks: list[Check] = []
    named = list(step.same_pages)
    if step.deep:
        obs = step.observations
        named += [(a.ref, b.ref) for i, a in enumerate(obs) for b in obs[i + 1:]]
    wrong: list[str] = []
    compared = 0
    for a, b in named:
        oa, ob_ = by_ref.get(a), by_ref.get(b)
        if oa is None or ob_ is None:
            continue
        ma, mb = oa.model, ob_.model
        ka, kb = pages.get(oa.id), pages.get(ob_.id)
        if not isinstance(ma, PageState) or not isinstance(mb, PageState) or ka is None \
                or kb is None:
            continue
        if ma.page is None or mb.page is None or ka.phys is None or kb.phys is None:
            continue
        msame, ksame = ma.page == mb.page, ka.phys == kb.phys
        compared += 1
        explicit = (a, b) in step.same_pages
        if explicit:
            checks.append(Check(f"same-page {a} {b}", "same" if msame else "different",
                                "same" if ksame else "different", msame == ksame))
        elif msame != ksame:
            wrong.append(f"{a} / {b}: model {'same' if msame else 'different'}, "
                         f"kernel {'same' if ksame else 'different'}")
    if step.deep and compared:
        checks.append(Check("same-page (all pairs)", "", "; ".join(wrong), not wrong))
    return checks


def compare_step(step: Step, run: KernelRun | None, stop_reason: str,
                 series: Series = SERIES[DEFAULT_SERIES]) -> StatementResult:
    st = step.statement
    res = StatementResult(st.line, st.text, NOT_CHECKED)
    if step.model_error:
        res.reason = step.model_error
        return res
    if run is None or (step.command is None and not step.observations):
        res.reason = stop_reason or (INVARIANTS if isinstance(st.action, ExpectInvariants)
                                     else "nothing to compare")
        return res
    if step.command is not None:
        reply = run.replies.get(step.index)
        if reply is None:
            res.reason = stop_reason or "the VM did not run it"
            return res
        word, note = kernel_outcome(reply)
        faults = re.search(r"(?:^| )faults=(\d+)", note)
        if faults:
            note = (note[:faults.start()] + note[faults.end():]).strip()
        if word == "inexpressible":
            res.reason = f"not expressible here: {note}"
            return res
        model_word = step.model_outcome or ""
        if word in ("error", "lost", "timeout"):
            res.checks.append(Check("outcome", model_word, f"{word} {note}".strip(), False,
                                    "the test program failed to carry it out"))
        else:
            agreed = word == model_word and not (note and reply.startswith("val"))
            res.checks.append(Check("outcome", model_word, word, agreed, note))
            if agreed and faults and step.write_probe is not None:
                res.checks.append(write_check(*step.write_probe, int(faults.group(1))))
    pages: dict[str, KernelPage] = {}
    for ob in step.observations:
        text = run.observations.get(ob.id)
        if text is None:
            continue
        kp = decode_page(text, ob.kind, series)
        pages[ob.id] = kp
        res.checks += compare_page(ob, kp)
    res.checks += _same_page_checks(step, pages)
    if any(c.agreed is False for c in res.checks):
        res.verdict = DISAGREED
    elif any(c.agreed for c in res.checks):
        res.verdict = AGREED
    else:
        res.reason = "; ".join(c.note for c in res.checks if c.note) or "nothing visible"
    if res.verdict != NOT_CHECKED:
        hidden = _hidden_words(step)
        if hidden:
            res.reason = f"not visible: {', '.join(hidden)}"
    return res


def _hidden_words(step: Step) -> list[str]:
    action = step.statement.action
    if not isinstance(action, ExpectState):
        return []
    return [w.word for w in action.words if w.word in UNOBSERVABLE_WORDS]


def compare_plan(plan: Plan, run: KernelRun | None) -> FileResult:
    """Verdicts for every statement of a planned scenario, given the VM's run of it."""
    result = FileResult(plan.name)
    stop_reason = ""
    for step in plan.steps:
        if plan.cutoff is not None and step.index >= plan.cutoff:
            if step.index == plan.cutoff:
                stop_reason = plan.cutoff_reason
            sr = StatementResult(step.statement.line, step.statement.text, NOT_CHECKED)
            sr.reason = (step.not_expressible and f"not expressible: {step.not_expressible}") \
                or step.model_error or stop_reason or "after the end of the kernel's run"
            if step.index > plan.cutoff:
                sr.reason = f"after line {plan.steps[plan.cutoff].statement.line}: {stop_reason}"
            result.statements.append(sr)
            continue
        if run is not None and run.stopped_at is not None and step.index > run.stopped_at:
            result.statements.append(StatementResult(
                step.statement.line, step.statement.text, NOT_CHECKED, reason=stop_reason))
            continue
        sr = compare_step(step, run, stop_reason, plan.series)
        result.statements.append(sr)
        if run is not None and run.stopped_at == step.index and not stop_reason:
            stop_reason = f"the VM stopped the scenario at line {step.statement.line}"
            if sr.verdict == NOT_CHECKED and sr.reason:
                stop_reason += f" ({sr.reason})"
            elif run.stop_why:
                stop_reason += f" ({run.stop_why})"
        outcome = next((c for c in sr.checks if c.name == "outcome"), None)
        if outcome is not None and outcome.agreed is False and not stop_reason:
            stop_reason = (f"after the different outcome at line {step.statement.line}, "
                           "the real state no longer follows the model's")
            plan_cut = step.index + 1
            for later in plan.steps[plan_cut:]:
                r = StatementResult(later.statement.line, later.statement.text, NOT_CHECKED,
                                    reason=stop_reason)
                result.statements.append(r)
            break
    return result
