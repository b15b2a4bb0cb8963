"""Live widgets (ipywidgets): step through a run, play with a world, predict then reveal.

* :class:`Stepper` walks through a scenario run: First / Back / Next / Last
  buttons and a slider; the current statement highlighted in the scenario;
  the figure (or table) of the state with what the step changed; the
  invariants after the step. ``to_html()`` gives the static player of the
  same run for the book, where no kernel runs the buttons.
* :class:`Predict` (``Stepper(..., predict=True)``) asks, before each step is
  shown, what the entry the statement touches will be, from a menu of state
  words; "Reveal" shows the answer and the step.
* :class:`Playground` starts from a world (or a scenario) and offers every
  operation the model accepts in the current state, with undo and the
  scenario text that reproduces the session.

Every widget has a deterministic text form (``repr``, and ``text/plain`` in
its display data): that is what nbval compares, since it cannot see widget
views. No ``Output`` widget is used, so nothing a callback prints leaks into
a cell's stored output.
"""

from __future__ import annotations

import base64
from typing import Any

import ipywidgets as w

from .. import invariants, model
from ..model import PageState, Step
from ..ops import (
    MapKind,
    Mmap,
    Op,
    Operation,
    PageRef,
    Spawn,
    to_text,
)
from ..results import ModelError
from ..scenario import InputError, Scenario, parse
from ..scenario.parser import _Invalid as ScenarioSyntaxError
from ..scenario.parser import q, scheme_named, split_lines, tokenize
from ..scenario.runner import ScenarioResult
from ..schemes import MAINLINE, Scheme
from ..state import World
from .figure import figure_png, legend_html, world_figure
from .markup import esc
from .player import (
    Frame,
    Player,
    as_result,
    invariants_html,
    scheme_of,
    source_lines,
    static_player,
    trace_frames,
)
from .render import diff_cells, diff_words, world_html

VIEWS = ("figure", "table", "both")
_MONO = "font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"


#: How the live listing looks: a list box whose selected line is the current one, in
#: bold on yellow (not colour alone). The browser scrolls a list box to its selected
#: line, so the current line stays in view however long the scenario is.
LISTING_CSS = (
    "<style>.anonlib-listing select {font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,"
    "Consolas,monospace;color:#000;background:#fafafa;width:100%;overflow-x:auto}"
    ".anonlib-listing select option:checked {font-weight:bold;color:#000;"
    "background:#F0E442 linear-gradient(#F0E442,#F0E442)}</style>")


def _listing_options(lines: list[tuple[int, str]]) -> list[tuple[str, int]]:
    """The scenario's lines as list-box options: (``NN  text``, position)."""
    width = len(str(lines[-1][0])) if lines else 1
    return [(f"{num:>{width}}  {text}", i) for i, (num, text) in enumerate(lines)]


def _diff_html(diff: tuple[str, ...] | list[str]) -> str:
    if not diff:
        return f'<div style="{_MONO};color:#555">(nothing changed)</div>'
    return (f'<ul style="{_MONO};margin:2px 0 4px 1.2em;padding:0;color:#000">'
            + "".join(f"<li>{esc(d)}</li>" for d in diff) + "</ul>")


def _box(text: str) -> str:
    return f'<div style="font-weight:bold;margin:2px 0">{esc(text)}</div>'


class _WorldView:
    """The figure and/or the table of a world, cached per key (a frame index or a history depth)."""

    def __init__(self, scheme: Scheme, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
        self.scheme = scheme
        self.view = view
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.table = w.HTML()
        self.key = w.HTML(legend_html(scheme.anon_exclusive))
        self._png: dict[Any, bytes] = {}
        parts: list[w.Widget] = []
        if view != "table":
            parts += [self.key, self.image]
        if view != "figure":
            parts.append(self.table)
        self.box = w.VBox(parts)

    def show(self, key: Any, world: World, changed: frozenset[tuple[str, str]]) -> None:
        if self.view != "table":
            png = self._png.get(key)
            if png is None:
                png = figure_png(world_figure(world, self.scheme, legend=False), dpi=90)
                self._png[key] = png
            self.image.value = png
        if self.view != "figure":
            self.table.value = world_html(world, self.scheme, changed)

    def forget(self, key: Any) -> None:
        self._png.pop(key, None)


def _button(label: str, tooltip: str) -> w.Button:
    return w.Button(description=label, tooltip=tooltip, layout=w.Layout(width="auto"))


# ------------------------------------------------------------------ prediction
#: The menu a reader picks from, for schemes with PG_anon_exclusive and without.
MENU_FLAG = ("none", "present writable exclusive", "present readonly exclusive",
             "present readonly shared", "present writable shared", "swap exclusive",
             "swap shared")
MENU_NOFLAG = ("none", "present writable", "present readonly", "swap")


def state_words(world: World, scheme: Scheme, ref: PageRef) -> str | None:
    """The page's state in the contract's state words, without pinned/unpinned (None: no page)."""
    ps = model.page_state(world, scheme, ref)
    if not isinstance(ps, PageState):
        return None
    return " ".join(x for x in ps.words() if x not in ("pinned", "unpinned"))


def _first_page(world: World, proc: str) -> PageRef | None:
    p = world.proc(proc)
    if p is None or not p.vmas:
        return None
    return PageRef(proc, p.vmas[0].name, 0)


def question_page(op: object, before: World) -> PageRef | None:
    """The page a prediction asks about for this statement: the one it names or touches."""
    if not isinstance(op, Operation):
        return None
    scope = op.scope()
    if scope.pages:
        return scope.pages[0]
    if scope.mapping is not None:
        return PageRef(*scope.mapping, 0)
    if scope.handle is not None:
        h = before.handle(scope.handle)
        return PageRef(h.owner, h.mapping, h.index) if h is not None else None
    if scope.process is not None:
        return _first_page(before, scope.process)
    return None


class Question:
    """What will ``page`` be after the step? The menu, the state now and the answer."""

    def __init__(self, page: PageRef, now: str, answer: str, options: tuple[str, ...]) -> None:
        self.page = page
        self.now = now
        self.answer = answer
        self.options = options

    def text(self) -> str:
        return f"What will {self.page} be after it? (now: {self.now})"


def make_question(frame: Frame, scheme: Scheme, watch: PageRef | None = None) -> Question | None:
    """The question for a frame (None: the statement gives nothing to predict)."""
    if frame.index == 0:
        return None
    if frame.op is None:
        return None
    page = watch or question_page(frame.op, frame.before)
    if page is None or isinstance(frame.op, (Spawn, Mmap)):
        return None
    proc = frame.before.proc(page.proc)
    if proc is None or proc.vma(page.mapping) is None:
        return None  # nothing there yet to predict about
    now = state_words(frame.before, scheme, page)
    answer = state_words(frame.world, scheme, page)
    if now is None or answer is None:
        return None
    menu = MENU_FLAG if scheme.anon_exclusive else MENU_NOFLAG
    extra = sorted({now, answer} - set(menu))
    return Question(page, now, answer, tuple(menu) + tuple(extra))


# ------------------------------------------------------------------ the stepper
class _Displayed:
    """Shown as its live widget, with :meth:`text` as the plain-text form (what nbval compares).

    The display data also carries :meth:`static_html`, a rendering that needs no
    kernel: JupyterLab shows the live widget (its view ranks first there), the
    book shows the HTML (``book/_config.yml`` ranks ``text/html`` above widget
    views), so a widget cell is never an empty output in the static book.
    """

    widget: Any

    def text(self) -> str:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def static_html(self) -> str:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = dict(self.widget._repr_mimebundle_() or {})
        data["text/plain"] = self.text()
        data["text/html"] = self.static_html()
        return data


class Stepper(_Displayed):
    """Step through a scenario run, live in a kernel.

    ``Stepper(text_or_result, scheme=None, view="figure", predict=False, watch=None)``;
    ``view`` is ``figure``, ``table`` or ``both``; ``source`` is the scenario
    text to show for a result (default: its statements). Drive it with the buttons
    and slider, or with :meth:`goto`. :meth:`to_html` is the static player of
    the same run (for the book); :meth:`static` the same as a displayable object.
    With ``predict=True`` (see :class:`Predict`) moving forward asks first.
    """

    def __init__(self, scenario: ScenarioResult | str, scheme: str | Scheme | None = None, *,
                 view: str = "figure", predict: bool = False,
                 watch: PageRef | str | None = None, source: str | None = None) -> None:
        if scheme is not None:
            _scheme(scheme)  # a name that is not a scheme: InputError with the nearest one
        self.source_text = scenario if isinstance(scenario, str) else source
        self.result = as_result(scenario, scheme)
        self.scheme = scheme_of(self.result)
        self.frames = trace_frames(self.result)
        self.lines = source_lines(self.result, self.source_text)
        self.view = view
        self.predict = predict
        self.watch = _page_ref(watch) if watch is not None else None
        self.index = 0
        self.reached = 0 if predict else len(self.frames) - 1
        self.answers: dict[int, tuple[str, bool]] = {}
        self.questions = {f.index: make_question(f, self.scheme, self.watch)
                          for f in self.frames} if predict else {}
        last = len(self.frames) - 1

        self.first_button = _button("« First", "First step")
        self.back_button = _button("‹ Back", "Previous step")
        self.next_button = _button("Next ›", "Next step")
        self.last_button = _button("Last »", "Last step")
        self.slider = w.IntSlider(value=0, min=0, max=max(self.reached, 0), description="step",
                                  continuous_update=True, layout=w.Layout(width="320px"))
        self.first_button.on_click(lambda _b: self.goto(0))
        self.back_button.on_click(lambda _b: self.goto(self.index - 1))
        self.next_button.on_click(lambda _b: self.next())
        self.last_button.on_click(lambda _b: self.goto(self.reached))
        self.slider.observe(self._on_slider, names="value")
        self.header = w.HTML()
        self._positions = {num: i for i, (num, _t) in reversed(list(enumerate(self.lines)))}
        self._moving_listing = False
        self.listing = w.Select(options=_listing_options(self.lines), value=None,
                                rows=max(2, min(len(self.lines), 18)),
                                layout=w.Layout(width="100%"))
        self.listing.add_class("anonlib-listing")
        self.listing.observe(self._on_line, names="index")
        self.diff = w.HTML()
        self.checks = w.HTML()
        self.world_view = _WorldView(self.scheme, view)
        # predict, then reveal
        self.choice = w.Dropdown(options=[], description="predict", layout=w.Layout(
            width="auto"), style={"description_width": "initial"})
        self.reveal_button = _button("Reveal", "Reveal the next step")
        self.reveal_button.on_click(lambda _b: self.reveal())
        self.question_label = w.HTML()
        self.feedback = w.HTML()
        self.predict_box = w.VBox([self.question_label, w.HBox([self.choice,
                                                                self.reveal_button]),
                                   self.feedback])
        self.predict_box.layout.display = "" if predict else "none"
        controls = w.HBox([self.first_button, self.back_button, self.next_button,
                           self.last_button, self.slider])
        side = w.VBox([w.HTML(LISTING_CSS), self.listing],
                      layout=w.Layout(flex="1 1 260px", min_width="220px"))
        main = w.VBox([self.header, self.diff, self.checks, self.world_view.box],
                      layout=w.Layout(flex="2 1 420px", min_width="0"))
        self.widget = w.VBox([controls, self.predict_box,
                              w.HBox([side, main], layout=w.Layout(flex_flow="row wrap"))])
        self.widget.add_class("anonlib-stepper")
        self._pending: Question | None = None
        self._show(0)
        if last == 0:
            self.next_button.disabled = self.last_button.disabled = True

    # -- navigation ------------------------------------------------------------
    def goto(self, index: int) -> Stepper:
        """Show frame ``index`` (clamped; in predict mode, to the frames revealed so far)."""
        index = max(0, min(index, self.reached))
        if self.slider.value == index:
            self._show(index)
        else:
            self.slider.value = index  # the observer shows it
        return self

    def next(self) -> Stepper:
        """One step on; in predict mode, first ask about the step if it has a question."""
        target = self.index + 1
        if target >= len(self.frames):
            return self
        if self.predict and target > self.reached:
            q = self.questions.get(target)
            if q is not None:
                self._ask(target, q)
                return self
            self._reach(target)
        return self.goto(target)

    def _on_slider(self, change: dict[str, Any]) -> None:
        self._show(int(change["new"]))

    def _on_line(self, change: dict[str, Any]) -> None:
        """A click on a line of the listing shows the first frame reached on that line."""
        if self._moving_listing or change["new"] is None:
            return
        num = self.lines[int(change["new"])][0]
        for fr in self.frames[: self.reached + 1]:
            if fr.line == num:
                self.goto(fr.index)
                return
        self._select_line(self.frames[self.index].line)  # not reached yet: stay

    def _select_line(self, num: int) -> None:
        self._moving_listing = True
        try:
            self.listing.index = self._positions.get(num)
        finally:
            self._moving_listing = False

    def _reach(self, index: int) -> None:
        self.reached = max(self.reached, index)
        self.slider.max = self.reached

    # -- predict, then reveal ---------------------------------------------------
    def _ask(self, index: int, q: Question) -> None:
        self._pending = q
        fr = self.frames[index]
        self.question_label.value = (
            f"<b>Predict step {index}</b>: line {fr.line} <code>{esc(fr.statement)}</code><br>"
            f"{esc(q.text())}")
        self.choice.options = list(q.options)
        self.choice.value = q.options[0]
        self.reveal_button.disabled = False
        self.feedback.value = ""

    def reveal(self, choice: str | None = None) -> Stepper:
        """Check the prediction (the dropdown's, or ``choice``) and show the step."""
        q = self._pending
        if q is None:
            return self
        picked = choice if choice is not None else str(self.choice.value)
        target = self.index + 1
        right = picked == q.answer
        self.answers[target] = (picked, right)
        self._pending = None
        self.reveal_button.disabled = True
        self._reach(target)
        self.goto(target)
        return self

    def score(self) -> tuple[int, int]:
        """(right, asked) so far."""
        return sum(1 for _p, ok in self.answers.values() if ok), len(self.answers)

    # -- drawing ----------------------------------------------------------------
    def _show(self, index: int) -> None:
        self.index = index
        fr = self.frames[index]
        n = len(self.frames)
        self.header.value = _box(fr.title(n))
        self._select_line(fr.line)
        self.diff.value = _diff_html(fr.diff) if index else ""
        self.checks.value = invariants_html(fr)
        self.world_view.show(index, fr.world, fr.changed)
        self.first_button.disabled = self.back_button.disabled = index == 0
        self.next_button.disabled = index >= n - 1
        self.last_button.disabled = index >= self.reached
        if self.predict:
            if index in self.answers:
                picked, ok = self.answers[index]
                q = self.questions[index]
                assert q is not None
                verdict = "right" if ok else "not quite"
                self.feedback.value = (
                    f"<b>{verdict}</b>: {esc(str(q.page))} is now <code>{esc(q.answer)}"
                    f"</code> (you said <code>{esc(picked)}</code>)")
            elif self._pending is None:
                self.feedback.value = ""
            if self._pending is None:
                self.question_label.value = ""
                self.choice.options = []
                self.reveal_button.disabled = True

    # -- text and display -------------------------------------------------------
    def text(self) -> str:
        """What the stepper shows now, as deterministic text."""
        fr = self.frames[self.index]
        n = len(self.frames)
        kind = "Predict" if self.predict else "Stepper"
        lines = [f"{kind}: {self.result.name} under scheme {self.result.scheme}, "
                 f"step {self.index} of {n - 1}"]
        if self.predict:
            right, asked = self.score()
            lines[0] += f" ({right} of {asked} predictions right)"
        lines.append(fr.title(n))
        lines += [f"    {d}" for d in fr.diff]
        lines += fr.invariants_text().splitlines()
        if fr.note:
            lines += fr.note.splitlines()
        if self.predict and self.index in self.answers:
            picked, ok = self.answers[self.index]
            q = self.questions[self.index]
            assert q is not None
            lines.append(f"predicted: {picked} ({'right' if ok else 'wrong'}; "
                         f"{q.page} is {q.answer})")
        if self._pending is not None:
            nxt = self.frames[self.index + 1]
            lines.append(f"next: line {nxt.line}: {nxt.statement}")
            lines.append(f"question: {self._pending.text()}")
            lines.append("options: " + " | ".join(self._pending.options))
        return "\n".join(lines)

    def to_html(self, view: str | None = None) -> str:
        """The static player of this run (self-contained HTML; see :mod:`anonlib.player`)."""
        return static_player(self.result, source=self.source_text,
                             view=view or ("both" if self.view == "both" else self.view))

    def static_html(self) -> str:
        """What the book shows for this stepper: its static player, saying what is live where.

        A :class:`Predict` puts each question in the frame before the step it asks
        about, with the answer folded under it.
        """
        if not self.predict:
            caption = ("In JupyterLab this cell is a live <code>Stepper</code>. Here, with no "
                       "Python kernel, it is the same run as a static player: every step was "
                       "computed in advance, and the buttons, slider and arrow keys work.")
            return static_player(self.result, source=self.source_text, view=self.view,
                                 caption=caption)
        caption = ("In JupyterLab this cell is a live <code>Predict</code> quiz: before each "
                   "step it asks for your prediction from a menu and checks it. Here, with no "
                   "Python kernel, the question comes before each step: decide, then open "
                   "<b>Answer</b> or press Next.")
        notes: dict[int, str] = {}
        for index, question in self.questions.items():
            if question is None:
                continue
            fr = self.frames[index]
            notes[index - 1] = (
                f'<div class="anonlib-note"><b>Predict step {index}</b>: line {fr.line} '
                f"<code>{esc(fr.statement)}</code>. {esc(question.text())}"
                f"<details><summary>Answer</summary>{esc(str(question.page))} is "
                f"<code>{esc(question.answer)}</code> after it.</details></div>")
        return static_player(self.result, source=self.source_text, view=self.view,
                             caption=caption, notes=notes)

    def static(self, view: str | None = None) -> Player:
        """The static player as an object a notebook displays (HTML, and text for nbval)."""
        return Player(self.result, source=self.source_text,
                      view=view or ("both" if self.view == "both" else self.view))


class Predict(Stepper):
    """A stepper in "predict, then reveal" mode: ``Predict(text, watch="P A[0]")``.

    Before each step that touches a page (or the ``watch`` page), the reader
    picks the page's next state from a menu of state words; "Reveal" (or
    :meth:`reveal`) checks it and shows the step.
    """

    def __init__(self, scenario: ScenarioResult | str, scheme: str | Scheme | None = None, *,
                 view: str = "figure", watch: PageRef | str | None = None,
                 source: str | None = None) -> None:
        super().__init__(scenario, scheme, view=view, predict=True, watch=watch, source=source)


def _page_ref(text: PageRef | str) -> PageRef:
    if isinstance(text, PageRef):
        return text
    import re

    pattern = r"\s*(\w+)\s+(\w+)\[([0-9]{1,9})\]\s*"
    m = re.fullmatch(pattern, text) if isinstance(text, str) else None
    if m is None:
        raise InputError(f"not a page: {q(str(text))} (write it as 'P A[0]')")
    return PageRef(m.group(1), m.group(2), int(m.group(3)))


# ------------------------------------------------------------------ the playground
#: Bounds on what the playground offers (the explorer's alphabet, a little wider).
PLAYGROUND_BOUNDS = {"processes": 4, "handles": 4, "values": 2}
MAPPING_NAMES = ("A", "B", "C", "D", "E", "F")


def enabled_ops(world: World, scheme: Scheme, used: set[str] | None = None
                ) -> list[tuple[str, Op, Step]]:
    """Every operation the model carries out in ``world``: (family, operation, its step).

    Candidates come from the explorer's generator (:func:`anonlib.explorer.alphabet.enabled`)
    plus ``spawn`` and ``mmap``, which the explorer does not need; an
    operation is kept when :func:`anonlib.model.apply` does not refuse it
    (outcomes such as ``SIGSEGV`` or ``skipped`` are kept: they are what
    the kernel would do). ``used`` holds names already taken (never reused).
    """
    from ..explorer.alphabet import HANDLE_NAMES, PROC_NAMES, Alphabet, Names, enabled

    bounds = PLAYGROUND_BOUNDS
    alphabet = Alphabet(processes=bounds["processes"], handles=bounds["handles"],
                        values=bounds["values"])
    used = set(used or ()) | {p.name for p in world.procs} | {h.name for h in world.handles}
    names = Names(procs=_next_index(PROC_NAMES, used), handles=_next_index(HANDLE_NAMES, used))
    cands: list[tuple[str, Op]] = []
    if len(world.procs) < alphabet.processes:
        cands.append(("spawn", Spawn(names.proc())))
    for p in world.procs:
        taken = {v.name for v in p.vmas} | {u.split(" ", 1)[1] for u in used
                                             if u.startswith(p.name + " ")}
        free = [n for n in MAPPING_NAMES if n not in taken]
        if free:
            for kind, npages in ((MapKind.BASE, 1), (MapKind.BASE, 2), (MapKind.THP, 0),
                                 (MapKind.HUGETLB, 0)):
                cands.append(("mmap", Mmap(p.name, free[0], kind, npages)))
    cands += [(fam, op) for fam, op, _n in enabled(world, scheme, alphabet, names)]
    out = []
    for fam, op in cands:
        step = model.apply(world, op, scheme)
        if not isinstance(step, ModelError):
            out.append((fam, op, step))
    return out


def _next_index(pool: tuple[str, ...], used: set[str]) -> int:
    taken = [i for i, n in enumerate(pool) if n in used]
    return max(taken) + 1 if taken else 0


def _names_in(op: Op) -> set[str]:
    return set(op.new_names())


class Playground(_Displayed):
    """Apply operations one at a time to a world, with undo and the scenario that replays it.

    ``Playground()`` starts from an empty world; ``Playground(text)`` from the
    end of a scenario run; ``Playground(world, scheme)`` from a World. The
    menus offer only operations the model accepts in the current state
    (:func:`enabled_ops`). :meth:`do` applies one (an Op, or its statement
    text), :meth:`undo` takes the last back, :meth:`script` is the scenario.
    """

    def __init__(self, source: World | str | ScenarioResult | None = None,
                 scheme: str | Scheme | None = None, *, view: str = "figure") -> None:
        self.base_text: str | None = None
        self.from_world = False
        if isinstance(source, World):
            self.scheme = _scheme(scheme)
            self.start = source
            self.from_world = True
        elif source is None:
            self.scheme = _scheme(scheme)
            self.start = model.initial_world()
            self.base_text = f"scheme {self.scheme.name}\n" if self.scheme is not MAINLINE else ""
        else:
            if scheme is not None:
                _scheme(scheme)  # a bad name: InputError, before anything runs
            result = as_result(source, scheme)
            if result.world is None:
                raise InputError("the scenario did not run:\n" + str(result))
            self.scheme = scheme_of(result)
            self.start = result.world
            self.base_text = source if isinstance(source, str) else None
            if self.base_text is not None and scheme is not None:
                self.base_text = _with_scheme(self.base_text, self.scheme)
        self.used: set[str] = self._names_of_start()
        self.history: list[tuple[Op, str, World]] = []
        self._enabled: list[tuple[str, Op, Step]] | None = None

        self.family = w.Dropdown(description="operation", options=[],
                                 style={"description_width": "initial"})
        self.op = w.Dropdown(options=[], layout=w.Layout(width="320px"))
        self.apply_button = _button("Apply", "Apply the chosen operation")
        self.undo_button = _button("Undo", "Undo the last operation")
        self.family.observe(lambda _c: self._fill_ops(), names="value")
        self.apply_button.on_click(lambda _b: self._apply_chosen())
        self.undo_button.on_click(lambda _b: self.undo())
        self.header = w.HTML()
        self.diff = w.HTML()
        self.checks = w.HTML()
        self.scenario = w.HTML()
        self.world_view = _WorldView(self.scheme, view)
        controls = w.HBox([self.family, self.op, self.apply_button, self.undo_button])
        side = w.VBox([w.HTML("<b>scenario</b>"), self.scenario],
                      layout=w.Layout(width="34%", min_width="220px"))
        main = w.VBox([self.header, self.diff, self.checks, self.world_view.box],
                      layout=w.Layout(width="66%"))
        self.widget = w.VBox([controls, w.HBox([side, main])])
        self.widget.add_class("anonlib-playground")
        self._refresh()

    # -- state -------------------------------------------------------------------
    @property
    def world(self) -> World:
        return self.history[-1][2] if self.history else self.start

    def _names_of_start(self) -> set[str]:
        used = {p.name for p in self.start.procs} | {h.name for h in self.start.handles}
        if self.base_text:
            sc = parse(self.base_text)
            if isinstance(sc, Scenario):
                for st in sc.statements:
                    if st.op is not None:
                        used |= _names_in(st.op)
        for p in self.start.procs:
            used |= {f"{p.name} {v.name}" for v in p.vmas}
        return used

    def enabled(self) -> list[tuple[str, Op, Step]]:
        """The operations on offer now (cached until the state changes)."""
        if self._enabled is None:
            self._enabled = enabled_ops(self.world, self.scheme, self.used)
        return self._enabled

    def do(self, op: Op | str) -> Playground:
        """Apply one operation (an Op or a statement such as ``"P write A[0] x"``).

        A string holds exactly one statement (a comment after it is fine);
        blank text, a comment alone, or several statements raise
        :class:`~anonlib.scenario.InputError`, as does an operation the
        model refuses here. A refused call changes nothing.
        """
        if isinstance(op, str):
            op = self._parse(_one_statement(op))
        elif not isinstance(op, Op):
            raise InputError(f"do() takes a statement (str) or an operation, not "
                             f"{type(op).__name__}")
        before = self.world
        step = model.apply(before, op, self.scheme)
        if isinstance(step, ModelError):
            raise InputError(f"{to_text(op)}: {step.message}")
        self.history.append((op, str(step.outcome), step.world))
        self.used |= _names_in(op)
        self._enabled = None
        self._refresh()
        return self

    def undo(self) -> Playground:
        """Take the last operation back (names it introduced stay used)."""
        if self.history:
            self.history.pop()
            self.world_view.forget(len(self.history) + 1)
            self._enabled = None
            self._refresh()
        return self

    def _parse(self, text: str) -> Op:
        for _fam, op, _step in self.enabled():
            if to_text(op) == text.strip():
                return op
        if self.base_text is not None:  # a value of its own, say: parse in context
            sc = parse(self.script() + "\n" + text.strip() + "\n")
            last = sc.statements[-1].op if isinstance(sc, Scenario) and sc.statements else None
            if last is not None:
                return last
            raise InputError(f"not a statement here: {q(text)}: {sc}")
        raise InputError(f"not an enabled operation: {q(text)}")

    def script(self) -> str:
        """The scenario text that reproduces the session (for a start World: its operations)."""
        ops = [to_text(op) for op, _o, _w in self.history]
        if self.from_world:
            return "\n".join(["# from a given world"] + ops)
        base = (self.base_text or "").rstrip("\n")
        if base and ops:
            return base + "\n# playground\n" + "\n".join(ops)
        return "\n".join(x for x in (base, "\n".join(ops)) if x)

    # -- widgets -------------------------------------------------------------------
    def _refresh(self) -> None:
        from ..explorer.alphabet import FAMILIES

        ops = self.enabled()
        fams = [f for f in ("spawn", "mmap") + FAMILIES if any(x[0] == f for x in ops)]
        current = self.family.value
        self.family.options = fams
        if fams:
            self.family.value = current if current in fams else fams[0]
        self._fill_ops()
        self.undo_button.disabled = not self.history
        before = self.history[-2][2] if len(self.history) > 1 else self.start
        if self.history:
            op, outcome, world = self.history[-1]
            diff = diff_words(before, world, self.scheme)
            changed = diff_cells(before, world, self.scheme)
            found = invariants.check(world, self.scheme, before=before, op=op)
            self.header.value = _box(f"{len(self.history)}: {to_text(op)} -> {outcome}")
            self.diff.value = _diff_html(diff)
            self.checks.value = _checks_html([str(v) for v in found])
        else:
            changed = frozenset()
            found = invariants.check(self.world, self.scheme)
            self.header.value = _box("start")
            self.diff.value = ""
            self.checks.value = _checks_html([str(v) for v in found])
        self.world_view.show(len(self.history), self.world, changed)
        self.scenario.value = (f'<pre style="{_MONO};background:#fafafa;border:1px solid #ddd;'
                               f'margin:0;padding:3px 6px;color:#000">{esc(self.script())}</pre>')

    def _fill_ops(self) -> None:
        fam = self.family.value
        self.op.options = [(to_text(op), i) for i, (f, op, _s) in enumerate(self.enabled())
                           if f == fam]
        self.op.index = 0 if self.op.options else None
        self.apply_button.disabled = not self.op.options

    def _apply_chosen(self) -> None:
        if self.op.value is None:
            return
        _fam, op, _step = self.enabled()[int(self.op.value)]
        self.do(op)

    # -- text and display -------------------------------------------------------------
    def static_html(self) -> str:
        """The playground as it stands, for the book: state, checks, scenario, operations on offer.

        Nothing in it runs: applying an operation needs the Python kernel.
        """
        from .figure import figure_png, legend_html

        before = self.history[-2][2] if len(self.history) > 1 else self.start
        if self.history:
            op, outcome, world = self.history[-1]
            head = f"{len(self.history)}: {to_text(op)} -> {outcome}"
            diff = _diff_html(diff_words(before, world, self.scheme))
            changed = diff_cells(before, world, self.scheme)
            found = invariants.check(world, self.scheme, before=before, op=op)
        else:
            head, diff, changed = "start", "", frozenset()
            found = invariants.check(self.world, self.scheme)
        state = []
        if self.world_view.view != "table":
            png = figure_png(world_figure(self.world, self.scheme, legend=False), dpi=90,
                             palette=True)
            state.append(legend_html(self.scheme.anon_exclusive))
            state.append('<img style="max-width:100%;height:auto;display:block" alt="the state"'
                         ' src="data:image/png;base64,'
                         + base64.b64encode(png).decode("ascii") + '">')
        if self.world_view.view != "figure":
            state.append(world_html(self.world, self.scheme, changed))
        offer: dict[str, list[str]] = {}
        for fam, op_, _step in self.enabled():
            offer.setdefault(fam, []).append(to_text(op_))
        menu = "".join(f"<li><b>{esc(fam)}</b>: " + "; ".join(
            f"<code>{esc(x)}</code>" for x in ops) + "</li>" for fam, ops in offer.items())
        script = self.script() or "(empty)"
        return (
            '<div class="anonlib-playground-static" style="color:#000;background:#fff;'
            'border:1px solid #bbb;border-radius:4px;padding:6px 8px;margin:4px 0;'
            'font:13px/1.4 system-ui,sans-serif">'
            f"<div><b>Playground</b> under scheme <code>{esc(self.scheme.name)}</code>: "
            f"{_count(len(self.history), 'operation')}</div>"
            '<div style="border-left:6px solid #0072B2;background:#e8f1f8;padding:2px 8px;'
            'margin:6px 0">In JupyterLab this cell is a live playground: pick an operation '
            "family and an operation, then <b>Apply</b>; <b>Undo</b> takes it back. Here, "
            "with no Python kernel, it is a snapshot: the state, the scenario so far, and "
            "the operations the model would accept next.</div>"
            '<div style="display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start">'
            '<div style="flex:1 1 16em;min-width:0"><b>scenario</b>'
            f'<pre style="{_MONO};background:#fafafa;border:1px solid #ddd;margin:0;'
            f'padding:3px 6px;white-space:pre-wrap">{esc(script)}</pre>'
            f"<details><summary>{_count(len(self.enabled()), 'operation')} on offer now"
            "</summary>"
            f'<ul style="margin:2px 0 0 1.2em;padding:0">{menu}</ul></details></div>'
            '<div style="flex:2 1 420px;min-width:0">'
            + _box(head) + diff + _checks_html([str(v) for v in found]) + "".join(state)
            + "</div></div></div>")

    def text(self) -> str:
        """The session as deterministic text: the last step, invariants, and the scenario."""
        lines = [f"Playground under scheme {self.scheme.name}: {len(self.history)} operations"]
        if self.history:
            before = self.history[-2][2] if len(self.history) > 1 else self.start
            op, outcome, world = self.history[-1]
            lines.append(f"last: {to_text(op)} -> {outcome}")
            lines += [f"    {d}" for d in diff_words(before, world, self.scheme)]
            found = invariants.check(world, self.scheme, before=before, op=op)
        else:
            found = invariants.check(self.world, self.scheme)
        lines += [str(v) for v in found] or ["invariants: all hold"]
        lines.append("scenario:")
        lines += [f"  {x}" for x in self.script().splitlines()] or ["  (empty)"]
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _checks_html(violations: list[str]) -> str:
    if not violations:
        return ('<div style="border-left:6px solid #009E73;background:#e6f5ef;padding:2px 8px;'
                'color:#000">&#10003; invariants: all hold</div>')
    return ('<div role="alert" style="border-left:6px double #D55E00;background:#fbe6da;'
            f'padding:2px 8px;white-space:pre-wrap;color:#000;{_MONO}">'
            + esc("\n".join(violations)) + "</div>")


def _scheme(scheme: str | Scheme | None) -> Scheme:
    """The Scheme named, or InputError with the nearest name."""
    return MAINLINE if scheme is None else scheme_named(scheme)


def _one_statement(text: str) -> str:
    """The one statement in ``text``, without its comment; InputError for none or several."""
    found: list[tuple[int, str]] = []
    for lineno, line in enumerate(split_lines(text), start=1):
        try:
            tokens = tokenize(line)
        except ScenarioSyntaxError as e:
            raise InputError(f"line {lineno}, column {e.column}: {e.message}") from None
        if tokens:
            found.append((lineno, " ".join(t.raw for t in tokens)))
    if not found:
        raise InputError("nothing to do: the text is blank or only a comment; give one "
                         "statement, such as 'P write A[0] x'")
    if len(found) > 1:
        lines = ", ".join(str(n) for n, _ in found[:10]) + (", ..." if len(found) > 10 else "")
        raise InputError(f"do() applies one statement; this text has {len(found)} (lines "
                         f"{lines}): call do() once for each")
    return found[0][1]


def _with_scheme(text: str, scheme: Scheme) -> str:
    """The scenario text with its ``scheme`` line set to ``scheme`` (so the script replays)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split("#", 1)[0].split()[:1] == ["scheme"]:
            lines[i] = f"scheme {scheme.name}"
            return "\n".join(lines) + "\n"
    return f"scheme {scheme.name}\n" + text
