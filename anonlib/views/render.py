"""Canonical text form of a World: what ``show`` prints and nbval compares.

Sorted and stable: processes by name, mappings in mmap order, folios by id.
Folio ids are the model's physical page numbers; they are allocated in a
deterministic order, so the same scenario always prints the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..mem import Mem, Snapshot
from ..ops import PageRef
from ..schemes import LargeReuse, Scheme
from ..state import ZERO_FOLIO, Entry, EntryKind, World
from .markup import esc


def entry_text(m: Mem, e: Entry | None, index: int, huge: bool) -> str:
    """One entry, e.g. ``present rw -> 3.0 excl`` or ``swap slot 7 excl``."""
    return _entry_line(dict(entry_fields(m, e, index, huge)))


def _entry_line(f: dict[str, str]) -> str:
    """The text of one entry from its fields (:func:`entry_fields`)."""
    kind, excl = f["kind"], f["excl"]
    if kind == "none":
        return "none"
    if kind == "swap":
        return f"swap {f['target']}{' ' + excl if excl else ''}"
    if kind == "hwpoison":
        return f"hwpoison -> {f['target']}"
    if kind == "migration":
        return f"migration {f['write']} -> {f['target']}"
    sd = " sd" if f["sd"] else ""
    return f"{kind} {f['write']} -> {f['target']}{' ' + excl if excl else ''}{sd}"


def world_text(world: World, scheme: Scheme) -> str:
    """The whole state: page tables per process, then folios, references and swap.

    One line per row of :func:`world_rows` (plus ``(no mappings)`` under a
    process without any), so the text, the HTML table and the diffs say the same.
    """
    rows = world_rows(world, scheme)
    lines: list[str] = []
    for i, r in enumerate(rows):
        lines.append(row_text(r))
        if r.kind == "process" and (i + 1 == len(rows) or rows[i + 1].parent != r.key):
            lines.append("  (no mappings)")
    return "\n".join(lines)


def row_text(r: Row) -> str:
    """One row of :func:`world_rows` as its line of :func:`world_text` (indented)."""
    f = dict(r.fields)
    name = r.key.split(" ", 1)[1]
    if r.kind == "process":
        return f"process {name}{' (' + f['pinned'] + ')' if f['pinned'] else ''}"
    if r.kind == "mapping":
        extra = "".join([
            f" dontfork={f['dontfork']}" if f["dontfork"] else "",
            f" holes={f['holes']}" if f["holes"] else "",
            f" {f['softdirty']}" if f["softdirty"] else "",
        ])
        return f"  {name}: {f['kind']} {f['pages']} pages {f['prot']}{extra}"
    if r.kind == "entry":
        idx = name[name.rindex("["):]
        level = "" if f["level"] == "pte" else f" {f['level']}"
        return f"    {idx}{level} {_entry_line(f)}"
    if r.kind == "folio":
        sc = f" swapcache={f['swapcache']}" if f["swapcache"] else ""
        pm = f" {f['partial']}" if f["partial"] else ""
        mm = f" mm=[{f['slots']}]" if f["slots"] else ""
        ms = f" {f['shared']}" if f["shared"] else ""
        return (f"folio {name} {f['kind']} refcount={f['refcount']} pins={f['pins']}{sc}{pm}"
                f"{mm}{ms}")
    if r.kind == "page":
        flags = " ".join(x for x in (f["flag"], f["hwpoison"]) if x)
        return f"  page {name} data={f['data']} mapcount={f['mapcount']} {flags}"
    if r.kind == "ref":
        lt = f" {f['longterm']}" if f["longterm"] else ""
        return (f"{r.key}: {f['type']} {f['mode']}{lt} by {f['owner']} at {f['at']} "
                f"-> {f['target']}")
    if r.kind == "slot":
        return f"{r.key} data={f['data']} count={f['count']}"
    raise ValueError(f"row_text: unknown row kind {r.kind!r} ({r.key})")


def page_text(world: World, scheme: Scheme, ref: PageRef) -> str:
    """One virtual page: its entry and the page behind it."""
    m = Snapshot(world, scheme)
    p = world.proc(ref.proc)
    v = p.vma(ref.mapping) if p is not None else None
    if p is None:
        return f"{ref}: no such process"
    if v is None or ref.index in v.holes:
        return f"{ref}: not mapped"
    huge = v.huge is not None
    e = v.entry(ref.index)
    text = f"{ref}: {entry_text(m, e, ref.index, huge)}"
    if e is not None and e.kind is not EntryKind.SWAP and e.folio != ZERO_FOLIO:
        f = m.folio(e.folio)
        page = ref.index if huge else e.page
        text += (f"; folio {f.id} {f.kind.value} refcount={m.refcount(f.id)} "
                 f"pins={m.pincount(f.id)} mapcount={m.mapcount(f.id, page)} "
                 f"data={f.pages[page].data!r}")
    return text


# --------------------------------------------------------------------------
# Structured rows: the one place a World becomes named fields, as (row, field)
# cells. world_text prints them, world_html draws them, diff_words compares two
# worlds with them, and the cells a step changed are the (row, field) keys whose
# values differ.
# --------------------------------------------------------------------------

#: Row sections, in the order world_text prints them.
SECTIONS = ("procs", "folios", "refs", "slots")


@dataclass(frozen=True)
class Row:
    """One line of world_text as named fields; ``key`` is how diffs and highlights name it.

    Keys: ``process P``, ``P A`` (a mapping), ``P A[0]`` / ``P A[*]`` (an
    entry; ``*`` for a PMD or hugetlb entry), ``folio 3``, ``page 3.0``,
    ``ref H``, ``swap slot 5``.
    """

    key: str
    kind: str  # process, mapping, entry, folio, page, ref, slot
    section: str
    fields: tuple[tuple[str, str], ...]
    parent: str = ""  # the process row of a mapping/entry, the folio row of a page

    def get(self, name: str) -> str:
        for k, v in self.fields:
            if k == name:
                return v
        return ""


def entry_fields(m: Mem, e: Entry | None, index: int, huge: bool) -> tuple[tuple[str, str], ...]:
    """kind, write, excl, target, sd of one entry (strings; empty where not applicable)."""
    if e is None:
        return (("kind", "none"), ("write", ""), ("excl", ""), ("target", ""), ("sd", ""))
    flag = m.scheme.anon_exclusive
    if e.kind is EntryKind.SWAP:
        bit = ("excl" if e.exclusive else "shared") if flag else ""
        return (("kind", "swap"), ("write", ""), ("excl", bit), ("target", f"slot {e.slot}"),
                ("sd", "sd" if e.soft_dirty else ""))
    page = index if huge else e.page
    target = "zero page" if e.folio == ZERO_FOLIO else f"{e.folio}.{page}"
    if e.kind is EntryKind.HWPOISON:
        return (("kind", "hwpoison"), ("write", ""), ("excl", ""), ("target", target), ("sd", ""))
    if e.kind is EntryKind.MIGRATION:
        mtype = ("writable" if e.writable else "readable_exclusive" if e.exclusive
                 else "readable")
        excl = ("excl" if e.exclusive else "shared") if flag else ""
        return (("kind", "migration"), ("write", mtype), ("excl", excl), ("target", target),
                ("sd", ""))
    rw = "rw" if e.writable else "ro"
    excl = ""
    if flag and e.folio != ZERO_FOLIO:
        excl = "excl" if m.exclusive(e.folio, page, huge) else "shared"
    return (("kind", e.kind.value), ("write", rw), ("excl", excl), ("target", target),
            ("sd", "sd" if e.soft_dirty else ""))


def world_rows(world: World, scheme: Scheme) -> list[Row]:
    """A World as rows of named fields: what :func:`world_text` prints, :func:`world_html` draws."""
    m = Snapshot(world, scheme)
    rows: list[Row] = []
    for p in world.procs:
        pkey = f"process {p.name}"
        rows.append(Row(pkey, "process", "procs",
                        (("pinned", "MMF_HAS_PINNED" if p.has_pinned else ""),)))
        for v in p.vmas:
            mkey = f"{p.name} {v.name}"
            rows.append(Row(mkey, "mapping", "procs", (
                ("kind", v.kind.value), ("pages", str(v.npages)),
                ("prot", "rw" if v.writable else "ro"),
                ("dontfork", str(sorted(v.dontfork)) if v.dontfork else ""),
                ("holes", str(sorted(v.holes)) if v.holes else ""),
                ("softdirty", "softdirty-tracking" if v.softdirty_tracking else ""),
            ), pkey))
            if v.huge is not None:
                level = "hugetlb" if v.kind.value == "hugetlb" else "pmd"
                rows.append(Row(f"{p.name} {v.name}[*]", "entry", "procs",
                                (("level", level),) + entry_fields(m, v.huge, 0, True), pkey))
            else:
                for i, e in enumerate(v.ptes):
                    if i in v.holes:
                        continue
                    rows.append(Row(f"{p.name} {v.name}[{i}]", "entry", "procs",
                                    (("level", "pte"),) + entry_fields(m, e, i, False), pkey))
    mm = scheme.large_reuse is LargeReuse.MM_SLOTS
    for f in world.folios:
        fkey = f"folio {f.id}"
        rows.append(Row(fkey, "folio", "folios", (
            ("kind", f.kind.value), ("refcount", str(m.refcount(f.id))),
            ("pins", str(m.pincount(f.id))),
            ("swapcache", str(list(f.swapcache)) if f.swapcache is not None else ""),
            ("partial", "partially-mapped" if f.partially_mapped else ""),
            # the per-MM tracking (6.15), shown only where the scheme reads it
            ("slots", " ".join(f"{p}:{n}" for p, n in f.mm_slots) if mm else ""),
            ("shared", "maybe-mapped-shared" if mm and f.maybe_mapped_shared else ""),
        )))
        for i, pg in enumerate(f.pages):
            flag = ("anon_exclusive" if pg.anon_exclusive else "-") if scheme.anon_exclusive else ""
            rows.append(Row(f"page {f.id}.{i}", "page", "folios", (
                ("data", repr(pg.data)), ("mapcount", str(m.mapcount(f.id, i))),
                ("flag", flag), ("hwpoison", "hwpoison" if pg.hwpoison else ""),
            ), fkey))
    for h in world.handles:
        target = "zero page" if h.folio == ZERO_FOLIO else f"{h.folio}.{h.page}"
        rows.append(Row(f"ref {h.name}", "ref", "refs", (
            ("type", "pin" if h.pin else "get"), ("mode", "rw" if h.write else "ro"),
            ("longterm", "longterm" if h.longterm else ""), ("owner", h.owner),
            ("at", f"{h.mapping}[{h.index}]"), ("target", target),
        )))
    for s in world.slots:
        rows.append(Row(f"swap slot {s.id}", "slot", "slots",
                        (("data", repr(s.data)), ("count", str(m.swap_count(s.id))))))
    return rows


# ------------------------------------------------------------------ diffs
@dataclass(frozen=True)
class Change:
    """One row that a step added, removed or changed; ``fields`` names the changed cells."""

    key: str
    kind: str
    what: str  # "new", "gone" or "changed"
    before: Row | None
    after: Row | None
    fields: tuple[str, ...]


#: The rows of the last few worlds diffed: a player diffs each world twice, as the world
#: after one step and as the world before the next. Worlds are immutable, and the
#: entry keeps the world alive, so the same object always has the same rows.
_ROWS_KEPT: list[tuple[World, Scheme, list[Row]]] = []


def _rows_of(world: World, scheme: Scheme) -> list[Row]:
    for w, sch, rows in _ROWS_KEPT:
        if w is world and sch is scheme:
            return rows
    rows = world_rows(world, scheme)
    _ROWS_KEPT.insert(0, (world, scheme, rows))
    del _ROWS_KEPT[4:]
    return rows


def diff_rows(before: World, after: World, scheme: Scheme) -> list[Change]:
    """The rows that differ between two worlds, in canonical order (section by section)."""
    old = _rows_of(before, scheme)
    new = _rows_of(after, scheme)
    old_by = {r.key: r for r in old}
    new_by = {r.key: r for r in new}
    out: list[Change] = []
    for section in SECTIONS:
        for r in new:
            if r.section != section:
                continue
            o = old_by.get(r.key)
            if o is None:
                out.append(Change(r.key, r.kind, "new", None, r, tuple(k for k, _ in r.fields)))
            elif o.fields != r.fields:
                names = tuple(k for (k, v), (_k2, v2) in zip(r.fields, o.fields, strict=True)
                              if v != v2)
                out.append(Change(r.key, r.kind, "changed", o, r, names))
        for o in old:
            if o.section == section and o.key not in new_by:
                out.append(Change(o.key, o.kind, "gone", o, None, ()))
    return out


def diff_cells(before: World, after: World, scheme: Scheme) -> frozenset[tuple[str, str]]:
    """The (row key, field) cells of ``after`` that differ from ``before``; ``*``: a new row."""
    return changes_cells(diff_rows(before, after, scheme))


def changes_cells(changes: list[Change]) -> frozenset[tuple[str, str]]:
    """:func:`diff_cells` from the changes :func:`diff_rows` found (to compute them once)."""
    cells: set[tuple[str, str]] = set()
    for c in changes:
        if c.what == "new":
            cells.add((c.key, "*"))
        else:
            cells.update((c.key, f) for f in c.fields)
    return frozenset(cells)


_RW_WORDS = {"rw": "writable", "ro": "read-only"}


def _pages(n: str) -> str:
    return "1 page" if n == "1" else f"{n} pages"
_EXCL_WORDS = {"excl": "exclusive", "shared": "shared", "": ""}


def _entry_words(r: Row, target: bool, sd: bool) -> str:
    """An entry in words, e.g. ``present read-only 3.0`` or ``swap slot 5 exclusive``."""
    kind = r.get("kind")
    if kind == "none":
        return "none"
    words = [] if r.get("level") == "pte" else [r.get("level")]
    words.append(kind)
    if kind == "swap":
        words += [r.get("target"), _EXCL_WORDS[r.get("excl")]]
    elif kind == "migration":
        words.append(r.get("write"))
    elif kind != "hwpoison":
        words.append(_RW_WORDS[r.get("write")])
    if target and kind != "swap":
        words.append(r.get("target"))
    if sd and r.get("sd"):
        words.append("soft-dirty")
    return " ".join(w for w in words if w)


def _page_words(r: Row) -> list[str]:
    out = [f"data {r.get('data')}"]
    if r.get("flag"):
        out.append("exclusive" if r.get("flag") == "anon_exclusive" else "shared")
    out.append(f"mapcount {r.get('mapcount')}")
    if r.get("hwpoison"):
        out.append("hwpoison")
    return out


def _change_words(c: Change) -> str | None:  # noqa: C901 - one branch per row kind
    a, b = c.before, c.after
    name = c.key
    if c.kind == "process":
        if c.what == "new":
            return f"new process {name.split()[1]}"
        if c.what == "gone":
            return f"process {name.split()[1]} exited"
        assert b is not None
        return f"{name.split()[1]}: MMF_HAS_PINNED " + ("set" if b.get("pinned") else "cleared")
    if c.kind == "mapping":
        if c.what == "new":
            assert b is not None
            size = _pages(b.get("pages"))
            return f"new mapping {name} ({b.get('kind')}, {size}, {b.get('prot')})"
        if c.what == "gone":
            return f"mapping {name} unmapped"
        assert a is not None and b is not None
        parts = []
        for f in c.fields:
            parts.append(f"{f} {a.get(f) or '-'} -> {b.get(f) or '-'}")
        return f"{name}: " + ", ".join(parts)
    if c.kind == "entry":
        if c.what == "gone":  # the mapping is still there (see diff_words): a split or collapse
            assert a is not None
            if a.get("kind") == "none":
                return None
            return f"{name}: {_entry_words(a, True, False)} -> none"
        if c.what == "new":
            assert b is not None
            if b.get("kind") == "none":
                return None
            return f"{name}: none -> {_entry_words(b, True, False)}"
        assert a is not None and b is not None
        fields = set(c.fields)
        if a.get("kind") in ("present", "device-private", "device-exclusive") and \
                a.get("kind") == b.get("kind") and fields <= {"excl"}:
            return None  # only the page's flag changed: the page line says so
        target = "target" in fields
        sd = "sd" in fields and a.get("kind") != "none"
        return f"{name}: {_entry_words(a, target, sd)} -> {_entry_words(b, target, sd)}"
    if c.kind == "folio":
        if c.what == "new":
            assert b is not None
            return f"new folio {name.split()[1]} ({b.get('kind')})"
        if c.what == "gone":
            return f"{name} freed"
        assert a is not None and b is not None
        parts = []
        for f in c.fields:
            if f == "swapcache":
                parts.append(f"added to the swap cache ({b.get(f)})" if b.get(f) else
                             "removed from the swap cache" if not b.get(f) and a.get(f) else
                             f"swap cache {a.get(f)} -> {b.get(f)}")
            elif f == "partial":
                parts.append("now partially mapped")
            elif f == "slots":
                parts.append(f"mm slots [{a.get(f)}] -> [{b.get(f)}]")
            elif f == "shared":
                parts.append("now maybe mapped shared" if b.get(f) else
                             "no longer maybe mapped shared")
            else:
                parts.append(f"{f} {a.get(f)} -> {b.get(f)}")
        return f"{name}: " + ", ".join(parts)
    if c.kind == "page":
        if c.what == "gone":
            return None  # its folio was freed
        if c.what == "new":
            assert b is not None
            return f"{name}: " + ", ".join(_page_words(b))
        assert a is not None and b is not None
        parts = []
        for f in sorted(c.fields, key=("flag", "data", "mapcount", "hwpoison").index):
            if f == "flag":
                was = "exclusive" if a.get(f) == "anon_exclusive" else "shared"
                now = "exclusive" if b.get(f) == "anon_exclusive" else "shared"
                parts.append(f"{was} -> {now}")
            elif f == "hwpoison":
                parts.append("hwpoisoned" if b.get(f) else "hwpoison cleared")
            else:
                parts.append(f"{f} {a.get(f)} -> {b.get(f)}")
        return f"{name}: " + ", ".join(parts)
    if c.kind == "ref":
        if c.what == "new":
            assert b is not None
            lt = " longterm" if b.get("longterm") else ""
            return (f"new {name}: {b.get('type')} {b.get('mode')}{lt} by {b.get('owner')} at "
                    f"{b.get('at')} -> {b.get('target')}")
        if c.what == "gone":
            return f"{name} dropped"
        assert a is not None and b is not None
        return f"{name}: " + ", ".join(f"{f} {a.get(f)} -> {b.get(f)}" for f in c.fields)
    if c.kind == "slot":
        if c.what == "new":
            assert b is not None
            return f"new {name} (data {b.get('data')})"
        if c.what == "gone":
            return f"{name} freed"
        assert a is not None and b is not None
        return f"{name}: " + ", ".join(f"{f} {a.get(f)} -> {b.get(f)}" for f in c.fields)
    return None  # pragma: no cover


def diff_words(before: World, after: World, scheme: Scheme) -> list[str]:
    """What changed between two worlds, one line per changed row, in canonical order.

    e.g. ``P A[0]: present writable -> present read-only``, ``page 3.0:
    exclusive -> shared``, ``new folio 7 (small)``, ``swap slot 4 freed``.
    A present entry whose page's flag changed is reported on the page's line
    only. Deterministic: the same two worlds always give the same lines.
    """
    return changes_words(diff_rows(before, after, scheme))


def changes_words(changes: list[Change]) -> list[str]:
    """:func:`diff_words` from the changes :func:`diff_rows` found (to compute them once)."""
    gone = {c.key for c in changes if c.what == "gone" and c.kind in ("process", "mapping")}
    out = []
    for c in changes:
        if c.kind in ("mapping", "entry") and c.what == "gone":
            proc, _, rest = c.key.partition(" ")
            mapping = f"{proc} {rest.split('[')[0]}"
            if f"process {proc}" in gone or (c.kind == "entry" and mapping in gone):
                continue
        words = _change_words(c)
        if words is not None:
            out.append(words)
    return out


# ------------------------------------------------------------------ HTML
#: Okabe-Ito colours (colour-blind safe) and light tints of them for cell backgrounds.
OKABE_ITO = {
    "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
}
_EXCL_BG = "#c8ebe0"  # tint of bluish green: exclusive
_SHARED_BG = "#fbe3b3"  # tint of orange: shared
_CHANGED = "background:#F0E442;font-weight:bold;outline:1px dashed #000;outline-offset:-2px"
_TABLE = ("border-collapse:collapse;font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,"
          "monospace;color:#000;background:#fff;margin:0 12px 8px 0;text-align:left;"
          "white-space:nowrap")
_TD = "padding:1px 6px;border-bottom:1px solid #ddd"
_HEAD = "padding:3px 6px 1px;border-bottom:1px solid #888"


class _Cells:
    """Builds table cells, highlighting those a step changed."""

    def __init__(self, changed: frozenset[tuple[str, str]]) -> None:
        self.changed = changed

    def td(self, row: Row | None, field: str, text: str, style: str = "",
           title: str = "", colspan: int = 1) -> str:
        hit = row is not None and ((row.key, field) in self.changed or (
            (row.key, "*") in self.changed and (bool(text) or field == "*")))
        if hit:  # the highlight replaces any tint (the words still say excl / shared)
            style = ";".join(x for x in style.split(";") if x and not x.startswith("background"))
        css = _TD + (";" + style if style else "") + (";" + _CHANGED if hit else "")
        attrs = f' style="{css}"'
        if colspan > 1:
            attrs += f' colspan="{colspan}"'
        if title:
            attrs += f' title="{esc(title)}"'
        if hit:
            attrs += ' data-changed="1"'
        return f"<td{attrs}>{esc(text)}</td>"


def _flag_style(word: str) -> str:
    if word in ("excl", "anon_exclusive"):
        return f"background:{_EXCL_BG}"
    if word == "shared":
        return f"background:{_SHARED_BG}"
    return ""


def world_html(world: World, scheme: Scheme,
               changed: frozenset[tuple[str, str]] | set[tuple[str, str]] | None = None) -> str:
    """The content of :func:`world_text` as compact HTML tables (inline CSS only).

    Page tables on the left, folios and their pages on the right, then GUP
    references and swap slots. ``changed`` holds (row key, field) cells to
    highlight, as :func:`diff_cells` returns them. Colours are Okabe-Ito
    tints and never the only cue: every cell also says its value in words,
    and changed cells are bold and outlined. Everything is escaped.
    """
    rows = world_rows(world, scheme)
    cells = _Cells(frozenset(changed or ()))
    flag = scheme.anon_exclusive
    excl_head = "excl" if flag else ""
    left: list[str] = [
        f'<table class="anonlib-ptables" style="{_TABLE}"><thead><tr>'
        f'<th style="{_HEAD}">entry</th><th style="{_HEAD}">kind</th>'
        f'<th style="{_HEAD}">write</th><th style="{_HEAD}">{excl_head}</th>'
        f'<th style="{_HEAD}">target</th><th style="{_HEAD}"></th></tr></thead><tbody>'
    ]
    right: list[str] = [
        f'<table class="anonlib-folios" style="{_TABLE}"><thead><tr>'
        f'<th style="{_HEAD}">page</th><th style="{_HEAD}">data</th>'
        f'<th style="{_HEAD}">mapcount</th><th style="{_HEAD}">'
        f'{"PG_anon_exclusive" if flag else ""}</th><th style="{_HEAD}"></th></tr></thead><tbody>'
    ]
    extra: list[str] = []
    group = "background:#f2f2f2"
    for r in rows:
        if r.kind == "process":
            name = r.key.split(" ", 1)[1]
            left.append("<tr>" + cells.td(r, "*", f"process {name}", group + ";font-weight:bold",
                                          colspan=4)
                        + cells.td(r, "pinned", r.get("pinned"), group, colspan=2) + "</tr>")
        elif r.kind == "mapping":
            name = r.key.split(" ", 1)[1]
            more = " ".join(x for x in (
                f"dontfork={r.get('dontfork')}" if r.get("dontfork") else "",
                f"holes={r.get('holes')}" if r.get("holes") else "",
                r.get("softdirty")) if x)
            left.append(
                "<tr>" + cells.td(r, "*", name, "font-weight:bold;padding-left:14px")
                + cells.td(r, "kind", f"{r.get('kind')} {_pages(r.get('pages'))}")
                + cells.td(r, "prot", r.get("prot"), title="VM_WRITE" if r.get("prot") == "rw"
                           else "no VM_WRITE")
                + cells.td(r, "dontfork", more, colspan=3) + "</tr>")
        elif r.kind == "entry":
            name = r.key.split(" ", 1)[1]
            level = r.get("level")
            idx = name[name.index("["):]
            label = f"{idx} {level}" if level != "pte" else idx
            kind = r.get("kind")
            write = r.get("write")
            title = "migration entry type" if kind == "migration" else ""
            excl = r.get("excl")
            excl_title = ("swap PTE exclusive bit" if kind == "swap" else
                          "migration entry type" if kind == "migration" else
                          "PG_anon_exclusive of the page" if excl else "")
            left.append(
                "<tr>" + cells.td(r, "level", label, "padding-left:26px")
                + cells.td(r, "kind", kind)
                + cells.td(r, "write", write, title=title)
                + cells.td(r, "excl", excl, _flag_style(excl), title=excl_title)
                + cells.td(r, "target", r.get("target"))
                + cells.td(r, "sd", r.get("sd"), title="soft-dirty" if r.get("sd") else "")
                + "</tr>")
        elif r.kind == "folio":
            fid = r.key.split(" ", 1)[1]
            sc = f"swapcache={r.get('swapcache')}" if r.get("swapcache") else ""
            right.append(
                "<tr>" + cells.td(r, "kind", f"folio {fid} {r.get('kind')}",
                                  group + ";font-weight:bold")
                + cells.td(r, "refcount", f"refcount={r.get('refcount')}", group)
                + cells.td(r, "pins", f"pins={r.get('pins')}", group)
                + cells.td(r, "swapcache", " ".join(x for x in (
                    sc, r.get("partial"), f"mm=[{r.get('slots')}]" if r.get("slots") else "",
                    r.get("shared")) if x), group, colspan=2) + "</tr>")
        elif r.kind == "page":
            fl = r.get("flag")
            right.append(
                "<tr>" + cells.td(r, "*", r.key.split(" ", 1)[1], "padding-left:14px")
                + cells.td(r, "data", r.get("data"))
                + cells.td(r, "mapcount", r.get("mapcount"))
                + cells.td(r, "flag", fl, _flag_style(fl))
                + cells.td(r, "hwpoison", r.get("hwpoison")) + "</tr>")
        elif r.kind == "ref":
            lt = " longterm" if r.get("longterm") else ""
            extra.append(
                "<tr>" + cells.td(r, "*", r.key, "font-weight:bold")
                + cells.td(r, "type", f"{r.get('type')} {r.get('mode')}{lt}",
                           title="FOLL_PIN" if r.get("type") == "pin" else "FOLL_GET")
                + cells.td(r, "owner", f"by {r.get('owner')} at {r.get('at')}")
                + cells.td(r, "target", f"-> {r.get('target')}") + "</tr>")
        elif r.kind == "slot":
            extra.append(
                "<tr>" + cells.td(r, "*", r.key, "font-weight:bold")
                + cells.td(r, "data", f"data={r.get('data')}")
                + cells.td(r, "count", f"count={r.get('count')}", colspan=2) + "</tr>")
    if len(left) == 1:
        left.append(f'<tr><td style="{_TD}" colspan="6">(no processes)</td></tr>')
    if len(right) == 1:
        right.append(f'<tr><td style="{_TD}" colspan="5">(no folios)</td></tr>')
    out = ['<div class="anonlib-world" style="display:flex;flex-wrap:wrap;align-items:flex-start;'
           'color:#000;background:#fff">']
    out += left + ["</tbody></table>"] + right + ["</tbody></table>"]
    if extra:
        out.append(f'<table class="anonlib-refs" style="{_TABLE}"><tbody>')
        out += extra + ["</tbody></table>"]
    out.append("</div>")
    return "".join(out)
