"""Live widgets, driven by their buttons (``Button.click()`` runs the handlers, no frontend)."""

from __future__ import annotations

import pathlib

import ipywidgets as w
import pytest

import anonlib
from anonlib import model, run_scenario
from anonlib.ops import to_text
from anonlib.results import ModelError
from anonlib.schemes import MAINLINE, SCHEMES
from anonlib.views.player import static_player
from anonlib.views.render import diff_cells, world_html
from anonlib.views.widgets import Playground, Predict, Stepper, enabled_ops

COW = """\
spawn P
P mmap A 1
P write A[0] x
P fork Q
P write A[0] y
"""
BUG = (pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "history" /
       "b02-cve-2020-29374.scn").read_text()


def all_widgets(root: w.Widget) -> list[w.Widget]:
    out, todo = [], [root]
    while todo:
        x = todo.pop()
        out.append(x)
        todo += list(getattr(x, "children", ()))
    return out


# ------------------------------------------------------------------ Stepper
def test_stepper_buttons_and_slider_move_through_the_run():
    s = anonlib.Stepper(COW)
    assert s.text() == ("Stepper: <scenario> under scheme mainline, step 0 of 5\n"
                        "step 0/5  start\ninvariants: all hold")
    assert s.first_button.disabled and s.back_button.disabled and not s.next_button.disabled
    s.next_button.click()
    s.next_button.click()
    s.next_button.click()
    assert s.index == 3 and s.slider.value == 3
    assert s.text() == """\
Stepper: <scenario> under scheme mainline, step 3 of 5
step 3/5  line 3: P write A[0] x -> ok
    P A[0]: none -> present writable 1.0
    new folio 1 (small)
    page 1.0: data 'x', exclusive, mapcount 1
invariants: all hold"""
    assert "P write A[0] x" in s.header.value
    assert s.listing.label == "3  P write A[0] x"  # the current line is the selected one
    s.last_button.click()
    assert s.index == 5 and s.next_button.disabled and s.last_button.disabled
    s.back_button.click()
    assert s.index == 4
    s.first_button.click()
    assert s.index == 0
    s.slider.value = 2
    assert s.index == 2 and "P mmap A 1" in s.header.value
    assert s.listing.label == "2  P mmap A 1"
    s.listing.index = 3  # a click on line 4 shows the step of line 4
    assert s.index == 4 and s.slider.value == 4
    assert s.goto(99).index == 5 and s.goto(-3).index == 0


def test_stepper_shows_figure_table_diff_and_invariants():
    s = Stepper(COW, view="both").goto(4)
    r = run_scenario(COW)
    before, after = r.trace[2].world, r.trace[3].world
    assert s.world_view.table.value == world_html(after, MAINLINE,
                                                  diff_cells(before, after, MAINLINE))
    assert bytes(s.world_view.image.value).startswith(b"\x89PNG")
    assert "page 1.0: exclusive -&gt; shared, mapcount 1 -&gt; 2" in s.diff.value
    assert "invariants: all hold" in s.checks.value
    assert "PG_anon_exclusive" in s.world_view.key.value
    t = Stepper(COW, view="table")
    assert t.world_view.image not in all_widgets(t.widget)
    with pytest.raises(ValueError, match="view must be"):
        Stepper(COW, view="movie")


def test_stepper_invariants_panel_names_the_violation():
    s = Stepper(BUG, "legacy-mapcount")
    s.last_button.click()
    assert 'role="alert"' in s.checks.value and "INV-12 (isolation) violated" in s.checks.value
    text = s.text()
    assert "INV-12 (isolation) violated" in text and "run stopped" in text
    assert s.result.scheme == "legacy-mapcount"


def test_stepper_from_a_result_and_its_static_twin():
    r = run_scenario(COW)
    s = Stepper(r)
    assert s.lines == [(i, line) for i, line in enumerate(COW.splitlines(), start=1)]
    commented = "# a comment\n" + COW
    with_text = Stepper(run_scenario(commented), source=commented)
    assert with_text.lines[0] == (1, "# a comment") and with_text.frames[1].line == 2
    assert Stepper(COW).to_html() == static_player(COW, view="figure")
    assert Stepper(COW, view="table").static().to_html() == static_player(COW, view="table")


def test_stepper_display_data_is_the_widget_and_deterministic_text():
    s = Stepper(COW)
    bundle = s._repr_mimebundle_()
    assert bundle["text/plain"] == s.text() == repr(s)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not any(isinstance(x, w.Output) for x in all_widgets(s.widget))
    # the book shows the static player of the same run, and says what is live where
    html = bundle["text/html"]
    assert html == s.static_html() == Stepper(COW).static_html()
    assert 'class="anonlib-player"' in html and "live <code>Stepper</code>" in html
    assert html.count("<section ") == len(s.frames)


def test_stepper_listing_follows_a_long_scenario():
    text = "".join(f"# comment {i}\n" for i in range(30)) + COW
    s = Stepper(text)
    s.goto(3)
    assert s.listing.label == "33  P write A[0] x"  # the browser scrolls a list box to it
    s.listing.index = 0  # a comment: no step there, so the stepper stays
    assert s.index == 3 and s.listing.label == "33  P write A[0] x"


def test_predict_and_playground_have_a_static_form_for_the_book():
    p = Predict(COW)
    html = p._repr_mimebundle_()["text/html"]
    assert "live <code>Predict</code> quiz" in html
    # the question about the write sits in the frame before it, its answer folded away
    assert ("<b>Predict step 3</b>: line 3 <code>P write A[0] x</code>. What will P A[0] be "
            "after it? (now: none)<details><summary>Answer</summary>P A[0] is <code>present "
            "writable exclusive</code> after it.</details>") in html
    needs_explorer()
    g = Playground()
    g.do("spawn P")
    html = g._repr_mimebundle_()["text/html"]
    assert "<b>Playground</b> under scheme <code>mainline</code>: 1 operation<" in html
    assert "<code>P mmap A 1</code>" in html  # on offer next
    assert "1: spawn P -&gt; ok" in html and "data:image/png;base64," in html
    assert html == g.static_html()


# ------------------------------------------------------------------ Predict
def test_predict_asks_before_each_step_that_touches_a_page():
    p = Predict(COW)
    assert p.slider.max == 0
    p.next_button.click()  # spawn: nothing to predict
    p.next_button.click()  # mmap: nothing to predict
    assert p.index == 2 and p.slider.max == 2
    p.next_button.click()  # write: asks first
    assert p.index == 2
    assert p.text().endswith(
        "next: line 3: P write A[0] x\n"
        "question: What will P A[0] be after it? (now: none)\n"
        "options: none | present writable exclusive | present readonly exclusive | "
        "present readonly shared | present writable shared | swap exclusive | swap shared")
    p.choice.value = "present writable exclusive"
    p.reveal_button.click()
    assert p.index == 3 and p.score() == (1, 1)
    assert "predicted: present writable exclusive (right; P A[0] is present writable " \
        "exclusive)" in p.text()
    assert "<b>right</b>" in p.feedback.value
    p.next_button.click()  # fork: asks about the parent's page
    assert "What will P A[0] be after it? (now: present writable exclusive)" in p.text()
    p.choice.value = "present writable exclusive"
    p.reveal_button.click()
    assert p.score() == (1, 2) and "not quite" in p.feedback.value
    assert p.text().splitlines()[0].endswith("(1 of 2 predictions right)")
    p.first_button.click()
    p.last_button.click()  # only as far as revealed
    assert p.index == 4
    p.next_button.click()
    p.reveal("present writable exclusive")
    assert p.index == 5 and p.score() == (2, 3)


def test_predict_watch_and_stepper_flag():
    p = Stepper(COW, predict=True, watch="Q A[0]")
    for _ in range(4):
        p.next_button.click()
    assert p.index == 4  # no Q before the fork: nothing to ask until then
    assert "What will Q A[0]" not in p.text()
    p.next_button.click()
    assert p.index == 4
    assert "question: What will Q A[0] be after it? (now: present readonly shared)" in p.text()
    p.reveal()
    assert p.index == 5 and p.score() == (0, 1)
    noflag = Predict(COW, "page-count")
    noflag.goto(0)
    for _ in range(3):
        noflag.next_button.click()
    assert "options: none | present writable | present readonly | swap" in noflag.text()


# ------------------------------------------------------------------ Playground
def needs_explorer() -> None:
    """The playground takes its candidate operations from the explorer's generator."""
    pytest.importorskip("anonlib.explorer.alphabet")


def test_playground_offers_only_what_the_model_accepts():
    needs_explorer()
    g = Playground()
    assert [to_text(op) for _f, op, _s in g.enabled()] == ["spawn P"]
    assert list(g.family.options) == ["spawn"]
    g.apply_button.click()
    g.family.value = "mmap"
    assert [label for label, _i in g.op.options] == [
        "P mmap A 1", "P mmap A 2", "P mmap A thp", "P mmap A hugetlb"]
    g.op.value = 1
    g.apply_button.click()
    g.do("P write A[0] hello").do("P fork Q")
    for _fam, op, _step in g.enabled():
        assert not isinstance(model.apply(g.world, op, MAINLINE), ModelError)
    labels = [to_text(op) for _f, op, _s in g.enabled()]
    assert "P pin A[0] rw as H" in labels and "R fork S" not in labels
    assert "spawn R" in labels and "kernel ksm P A[0] Q A[0]" in labels


def test_playground_script_replays_the_session_and_undo():
    needs_explorer()
    g = Playground()
    for stmt in ("spawn P", "P mmap A 2", "P write A[0] P1", "P fork Q", "Q write A[0] Q1"):
        g.do(stmt)
    assert g.script() == "spawn P\nP mmap A 2\nP write A[0] P1\nP fork Q\nQ write A[0] Q1"
    assert run_scenario(g.script()).world == g.world
    g.undo_button.click()
    assert g.script().endswith("P fork Q") and len(g.history) == 4
    text = g.text()
    assert text.startswith("Playground under scheme mainline: 4 operations\n")
    assert "last: P fork Q -> ok\n    P A[0]: present writable -> present read-only" in text
    assert text.endswith("scenario:\n  spawn P\n  P mmap A 2\n  P write A[0] P1\n  P fork Q")
    assert g._repr_mimebundle_()["text/plain"] == text
    with pytest.raises(ValueError):
        g.do("P write B[0] x")


def test_playground_from_a_scenario_or_a_world():
    needs_explorer()
    g = Playground(COW)
    g.do("Q write A[0] mine")
    assert g.script() == COW.rstrip("\n") + "\n# playground\nQ write A[0] mine"
    assert run_scenario(g.script()).world == g.world
    old = Playground(COW, "page-count")
    assert old.scheme is SCHEMES["page-count"] and old.script().startswith("scheme page-count")
    start = run_scenario(COW).world
    assert start is not None
    h = Playground(start, "mainline")
    h.do("P read A[0]")
    assert h.script() == "# from a given world\nP read A[0]"
    assert "fork" in h.family.options


def test_enabled_ops_never_reuse_names():
    needs_explorer()
    r = run_scenario(COW + "Q exit\n")
    assert r.world is not None
    ops = [to_text(op) for _f, op, _s in enabled_ops(r.world, MAINLINE, {"Q"})]
    assert "spawn R" in ops and "spawn Q" not in ops and "P fork R" in ops
