"""Steps of a scenario run as frames, and a self-contained HTML player for the static book.

:func:`trace_frames` turns a :class:`~anonlib.scenario.runner.ScenarioResult`
into frames: the world before and after each statement, what changed (in
words and as cells to highlight) and the invariants after it. The live
stepper (:mod:`anonlib.widgets`) and the static player both draw these
frames, so they show the same thing.

:func:`static_player` renders every frame in advance into one HTML fragment
with inline CSS and JavaScript: no kernel, no network, no CDN. Buttons
(First / Back / Next / Last step, with ``title`` and ``aria-label``), a
slider and the arrow keys move between frames; without JavaScript every
frame is shown one after another, and a ``<details>`` element holds the
plain-text transcript. The output is deterministic: its id is a hash of its
text content, so re-running the notebook that makes it gives the same bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

from .. import invariants
from ..ops import Op
from ..scenario.runner import ScenarioResult, run_scenario
from ..schemes import MAINLINE, SCHEMES, Scheme
from ..state import World
from .htmlsteps import BOX_CSS, controls_html, element_id, noscript_html, script_html
from .markup import esc
from .render import changes_cells, changes_words, diff_rows, world_html, world_text
from .svg import legend_html, world_svg


@dataclass(frozen=True)
class Frame:
    """One step of a run: the statement, its outcome, and the world after it.

    Frame 0 is the start (no statement; ``line`` 0). ``violations`` holds the
    invariants that fail after the step, as text (empty: all hold); ``note``
    says why the run stopped, on the last frame of a run that did not pass.
    """

    index: int
    line: int
    statement: str
    outcome: str
    world: World
    before: World
    diff: tuple[str, ...]
    changed: frozenset[tuple[str, str]]
    violations: tuple[str, ...]
    note: str = ""
    op: Op | None = None  # the statement's operation (None for checks, show and the start)

    def title(self, total: int) -> str:
        """``step 3/7  line 4: P fork Q -> ok`` (``step 0/7  start``)."""
        head = f"step {self.index}/{total - 1}"
        if self.index == 0:
            return f"{head}  start"
        outcome = f" -> {self.outcome}" if self.outcome else ""
        return f"{head}  line {self.line}: {self.statement}{outcome}"

    def invariants_text(self) -> str:
        """``invariants: all hold``, or each violated invariant with its explanation."""
        if not self.violations:
            return "invariants: all hold"
        return "\n".join(self.violations)


def scheme_of(result: ScenarioResult) -> Scheme:
    """The Scheme object a result ran under (mainline when the name is unknown)."""
    return SCHEMES.get(result.scheme, MAINLINE)


def as_result(source: ScenarioResult | str, scheme: str | Scheme | None = None
              ) -> ScenarioResult:
    """A ScenarioResult for scenario text (run it) or a result (as is)."""
    if isinstance(source, ScenarioResult):
        return source
    return run_scenario(source, scheme)


def trace_frames(result: ScenarioResult) -> list[Frame]:
    """The frames of a run: the start, then one per statement of the trace."""
    scheme = scheme_of(result)
    start = result.initial if result.initial is not None else World()
    frames = [Frame(0, 0, "", "", start, start, (), frozenset(), ())]
    prev = start
    prev_clean = False  # the previous frame's world was checked and every invariant held
    for i, step in enumerate(result.trace, start=1):
        st = step.statement
        op = st.op
        # The run checked most steps itself (the same check, the same worlds); a step it did
        # not check that leaves a clean world as it was (show, expect on a page) is clean too.
        found = result.checked.get(i - 1)
        if found is None:
            if op is None and step.world is prev and prev_clean:
                found = []
            else:
                found = invariants.check(step.world, scheme,
                                         before=prev if op is not None else None, op=op)
        changes = diff_rows(prev, step.world, scheme)
        frames.append(Frame(
            i, st.line, st.text, str(step.outcome) if step.outcome is not None else "",
            step.world, prev, tuple(changes_words(changes)), changes_cells(changes),
            tuple(str(v) for v in found), op=op))
        prev = step.world
        prev_clean = not found
    if result.status != "ok" and result.failures:
        last = frames[-1]
        note = "run stopped: " + "\n".join(str(f) for f in result.failures)
        frames[-1] = replace(last, note=note)
    return frames


def source_lines(result: ScenarioResult, text: str | None = None) -> list[tuple[int, str]]:
    """The scenario as (line number, text): the text itself, or rebuilt from the statements."""
    if text is not None:
        return list(enumerate(text.splitlines(), start=1))
    if result.scenario is None:
        return []
    out = []
    if result.scenario.scheme is not None:
        out.append((result.scenario.scheme_line, f"scheme {result.scenario.scheme}"))
    out += [(st.line, st.text) for st in result.scenario.statements]
    return out


def transcript(result: ScenarioResult, frames: list[Frame] | None = None) -> str:
    """The plain-text form of the frames: each step's title, what changed, broken invariants."""
    frames = frames if frames is not None else trace_frames(result)
    lines = [f"{display_name(result)} under scheme {result.scheme}: {len(frames) - 1} steps, "
             f"{result.status}"]
    for fr in frames:
        lines.append(fr.title(len(frames)))
        lines += [f"    {d}" for d in fr.diff]
        if fr.violations:
            lines += ["    " + x for v in fr.violations for x in v.splitlines()]
        if fr.note:
            lines += ["    " + x for x in fr.note.splitlines()]
    return "\n".join(lines)


# ---------------------------------------------------------------------- HTML
_CSS = """
#{id} .anonlib-body {{ display:flex; flex-wrap:wrap; gap:10px; align-items:flex-start; }}
#{id} .anonlib-src {{ margin:0; padding:4px 0; background:#fafafa; border:1px solid #ddd;
  font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; flex:1 1 auto;
  min-width:14em; max-width:100%; max-height:28em; overflow:auto; position:relative; }}
#{id} .anonlib-line {{ display:block; white-space:pre-wrap; overflow-wrap:anywhere;
  padding:0 8px 0 calc(var(--anonlib-indent) + 4px);
  text-indent:calc(-1 * var(--anonlib-indent)); }}
#{id} .anonlib-line .anonlib-mark {{ visibility:hidden; }}
#{id} .anonlib-line.anonlib-current {{ background:#F0E442; font-weight:bold; }}
#{id} .anonlib-line.anonlib-current .anonlib-mark {{ visibility:visible; }}
#{id} .anonlib-frames {{ flex:1 1 420px; min-width:0; }}
#{id} .anonlib-note {{ border-left:6px solid #0072B2; background:#e8f1f8; padding:2px 8px;
  margin:6px 0; }}
#{id} details.anonlib-table > summary {{ cursor:pointer; font-size:12px; }}
#{id} .anonlib-frame h4 {{ margin:2px 0 4px; font-size:13px; }}
#{id} .anonlib-diff {{ margin:2px 0 6px 1.2em; padding:0; font:12px/1.4 ui-monospace,Menlo,
  Consolas,monospace; }}
#{id} .anonlib-ok {{ border-left:6px solid #009E73; background:#e6f5ef; padding:2px 8px;
  margin:4px 0; }}
#{id} .anonlib-bad {{ border-left:6px double #D55E00; background:#fbe6da; padding:2px 8px;
  margin:4px 0; white-space:pre-wrap; font-family:ui-monospace,Menlo,Consolas,monospace;
  font-size:12px; }}
#{id} .anonlib-fig {{ max-width:100%; height:auto; display:block; margin:4px 0; }}
#{id} details pre {{ font-size:12px; white-space:pre-wrap; }}
"""


def _diff_html(diff: tuple[str, ...]) -> str:
    if not diff:
        return '<ul class="anonlib-diff"><li>(nothing changed)</li></ul>'
    return '<ul class="anonlib-diff">' + "".join(f"<li>{esc(d)}</li>" for d in diff) + "</ul>"


def invariants_html(frame: Frame) -> str:
    """The invariants panel: a green bar, or each violation with its explanation."""
    parts = []
    if frame.violations:
        parts.append('<div class="anonlib-bad" role="alert">'
                     + esc("\n".join(frame.violations)) + "</div>")
    else:
        parts.append('<div class="anonlib-ok">&#10003; invariants: all hold</div>')
    if frame.note:
        parts.append(f'<div class="anonlib-bad">{esc(frame.note)}</div>')
    return "".join(parts)


def frame_png(frame: Frame, scheme: Scheme, dpi: int = 100) -> bytes:
    """The frame's world as a PNG figure (no key: players show one key, as HTML, for all)."""
    from .figure import figure_png, world_figure

    return figure_png(world_figure(frame.world, scheme, legend=False), dpi=dpi, palette=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


#: Names the runner gives a scenario that was not named: not titles a reader can use.
PLACEHOLDER_NAMES = ("<scenario>",)


def display_name(result: ScenarioResult) -> str:
    """What a player calls a run: its name, or "this scenario" for an unnamed one."""
    return "this scenario" if result.name in PLACEHOLDER_NAMES else result.name


def static_player(result: ScenarioResult | str, *, source: str | None = None,
                  view: str = "both", dpi: int = 100, scheme: str | Scheme | None = None,
                  notes: dict[int, str] | None = None, caption: str = "",
                  drawing: str = "svg") -> str:
    """A self-contained HTML player for a run (or scenario text, which is run first).

    ``view`` is ``table`` (the world as HTML tables), ``figure`` (PNG frames
    as data: URIs) or ``both``. ``source`` is the scenario text to show
    (default: the text of ``result`` when it is a string, else the
    statements). ``notes`` maps a frame index to HTML shown at the end of
    that frame (the static predict-then-reveal puts its questions there);
    ``caption`` is HTML shown under the title. ``drawing`` is how a figure
    frame is drawn: ``svg`` (the default: :func:`anonlib.views.svg.world_svg`,
    inline, no matplotlib; the chapters and the book's lab draw the same
    picture) or ``png`` (matplotlib, a PNG data: URI). Deterministic: the same
    run gives the same string.
    """
    if view not in ("table", "figure", "both"):
        raise ValueError(f"view must be 'table', 'figure' or 'both', not {view!r}")
    if drawing not in ("png", "svg"):
        raise ValueError(f"drawing must be 'png' or 'svg', not {drawing!r}")
    if isinstance(result, str):
        source = result if source is None else source
    res = as_result(result, scheme)
    sch = scheme_of(res)
    frames = trace_frames(res)
    text = transcript(res, frames)
    lines = source_lines(res, source)
    notes = notes or {}
    content = "\n".join([text, view, str(dpi), caption] + [f"{n}:{t}" for n, t in lines]
                        + [world_text(f.world, sch) for f in frames]
                        + [f"note {i}:{notes[i]}" for i in sorted(notes)]
                        + (["drawing svg"] if drawing == "svg" else []))
    pid = element_id("anonlib-player", content)
    n = len(frames)
    out = [f'<div class="anonlib-player" id="{pid}" tabindex="0" role="group" '
           f'aria-label="{esc(display_name(res))}: step-by-step player" '
           f'data-steps="{n - 1}">',
           "<style>" + (BOX_CSS + _CSS).format(id=pid) + "</style>",
           noscript_html(pid),
           f'<div style="margin-bottom:4px"><b>{esc(display_name(res))}</b> under scheme '
           f"<code>{esc(res.scheme)}</code>: {esc(res.status)}</div>",
           controls_html(n, "step")]
    if caption:
        out.insert(-1, f'<div class="anonlib-note">{caption}</div>')
    out.append('<div class="anonlib-body">')
    if lines:
        width = len(str(lines[-1][0]))
        out.append(f'<pre class="anonlib-src" aria-label="Scenario" '
                   f'style="--anonlib-indent:{width + 4}ch">' + "".join(
            f'<span class="anonlib-line" data-line="{num}"><span class="anonlib-mark">&#9654;'
            f"</span> {num:>{width}}  {esc(line)}</span>" for num, line in lines) + "</pre>")
    out.append('<div class="anonlib-frames">')
    if view != "table":
        out.append(legend_html(sch.anon_exclusive))
    for fr in frames:
        hidden = " hidden" if fr.index else ""
        out.append(f'<section class="anonlib-frame" data-step="{fr.index}" '
                   f'data-line="{fr.line}"{hidden}>')
        out.append(f"<h4>{esc(fr.title(n))}</h4>")
        out.append(_diff_html(fr.diff) if fr.index else "")
        out.append(invariants_html(fr))
        if view != "table" and drawing == "svg":
            out.append('<div class="anonlib-fig">' + world_svg(fr.world, sch) + "</div>")
        elif view != "table":
            out.append(f'<img class="anonlib-fig" alt="{esc(fr.title(n))}" '
                       f'src="{_data_uri(frame_png(fr, sch, dpi))}">')
        if view == "table":
            out.append(world_html(fr.world, sch, fr.changed))
        elif view == "both":
            out.append('<details class="anonlib-table"><summary>the state as a table '
                       "(changed cells highlighted)</summary>"
                       + world_html(fr.world, sch, fr.changed) + "</details>")
        if fr.index in notes:
            out.append(notes[fr.index])
        out.append("</section>")
    out.append("</div></div>")
    out.append("<details><summary>Transcript (plain text)</summary><pre>"
               + esc(text) + "</pre></details>")
    out.append(script_html(pid, items=".anonlib-src .anonlib-line", link="data-line",
                           unit="step"))
    out.append("</div>")
    return "\n".join(out)


class Player:
    """A static player to display in a notebook: HTML for the book, a transcript for nbval.

    ``Player(result_or_text, view=..., source=...)``; its text form is the
    plain-text transcript, deterministic like the HTML.
    """

    def __init__(self, result: ScenarioResult | str, *, source: str | None = None,
                 view: str = "both", dpi: int = 100, scheme: str | Scheme | None = None,
                 drawing: str = "svg") -> None:
        if isinstance(result, str):
            source = result if source is None else source
        self.result = as_result(result, scheme)
        self.source = source
        self.view = view
        self.dpi = dpi
        self.drawing = drawing
        self._html: str | None = None

    def to_html(self) -> str:
        if self._html is None:
            self._html = static_player(self.result, source=self.source, view=self.view,
                                       dpi=self.dpi, drawing=self.drawing)
        return self._html

    def text(self) -> str:
        return "static player\n" + transcript(self.result)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.to_html()}
