"""A static step-through of a race schedule: HTML with inline JavaScript, and its text.

:class:`RacePlayer` shows a schedule (the shortest bad one of a
:class:`~anonlib.race.explorer.RaceResult`, or a
:class:`~anonlib.race.explorer.Replay`) one event at a time: the schedule
on the left with the current event marked, and on the right the kernel line
it models, what it did and the state after it (memory, each CPU's position,
store buffer and early loads). Buttons, a slider and the arrow keys move
between frames. Nothing is loaded from the network, and the HTML is
deterministic: its element id is a hash of its text, so re-running a notebook
gives the same bytes. Without JavaScript every frame is shown in turn.
Its text form (what nbval compares) lists the frames.
"""

from __future__ import annotations

from typing import Any

from ..views.htmlsteps import BOX_CSS, controls_html, element_id, noscript_html, script_html
from ..views.markup import esc
from .explorer import Frame, RaceResult, Replay

_CSS = """
#{id} .race-body {{ display:flex; flex-wrap:wrap; gap:10px; align-items:flex-start; }}
#{id} .race-list {{ margin:0; padding:4px 0; background:#fafafa; border:1px solid #ddd;
  font:12px/1.45 ui-monospace,Menlo,Consolas,monospace; flex:0 1 24em; max-height:30em;
  overflow:auto; }}
#{id} .race-ev {{ display:block; padding:0 8px 0 4px; white-space:pre; cursor:pointer; }}
#{id} .race-ev.race-a {{ color:#0b4f8a; }}
#{id} .race-ev.race-b {{ color:#8a3b0b; }}
#{id} .race-ev.anonlib-current {{ background:#F0E442; font-weight:bold; }}
#{id} .race-frames {{ flex:1 1 480px; min-width:0; }}
#{id} .race-frame h4 {{ margin:2px 0 4px; font-size:13px; }}
#{id} .race-frame pre {{ margin:2px 0; font:12px/1.45 ui-monospace,Menlo,Consolas,monospace;
  white-space:pre-wrap; }}
#{id} .race-bad {{ border-left:6px double #D55E00; background:#fbe6da; padding:2px 8px;
  margin:4px 0; white-space:pre-wrap; font:12px/1.4 ui-monospace,Menlo,Consolas,monospace; }}
"""


class RacePlayer:
    """Step through a schedule in the browser; ``text()`` is the same content as plain text."""

    def __init__(self, run: RaceResult | Replay) -> None:
        if isinstance(run, RaceResult):
            if run.safe:
                raise ValueError(f"{run.variant} under {run.memory_model} has no bad schedule")
            self.title = (
                f"{run.variant} under {run.memory_model}: the shortest schedule that loses the pin"
            )
        else:
            self.title = f"{run.variant} under {run.memory_model}: a replayed schedule"
        self.frames: tuple[Frame, ...] = run.frames
        self.violations: tuple[str, ...] = run.violations

    def text(self) -> str:
        lines = [self.title] + [f.line() for f in self.frames[1:]]
        lines += ["broken at the end:"] + [f"  {v}" for v in self.violations]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self) -> str:
        content = "\n".join([self.title] + [f.text() for f in self.frames] + list(self.violations))
        pid = element_id("anonlib-race", content)
        n = len(self.frames)
        out = [
            f'<div class="anonlib-race" id="{pid}" tabindex="0" role="group" '
            f'aria-label="{esc(self.title)}">',
            "<style>" + (BOX_CSS + _CSS).format(id=pid) + "</style>",
            noscript_html(pid),
            f'<div style="margin-bottom:4px"><b>{esc(self.title)}</b></div>',
            controls_html(n, "event"),
        ]
        items = ['<span class="race-ev" data-step="0"> 0. CPU A      CPU B   (start)</span>']
        for f in self.frames[1:]:
            lane = " race-a" if f.cpu == "A" else " race-b"
            cell = f"{f.event:<11}" if f.cpu == "A" else f"{'':<11}{f.event}"
            label = f"{f.index:2}. {cell}"
            items.append(
                f'<span class="race-ev{lane}" data-step="{f.index}">{esc(label.rstrip())}</span>'
            )
        out.append(
            '<div class="race-body"><pre class="race-list" aria-label="Schedule">'
            + "".join(items)
            + '</pre><div class="race-frames">'
        )
        for f in self.frames:
            hidden = " hidden" if f.index else ""
            out.append(f'<section class="race-frame" data-step="{f.index}"{hidden}>')
            if f.index == 0:
                out.append("<h4>start</h4>")
            else:
                out.append(
                    f"<h4>{f.index}. {esc(f.event)} on CPU {f.cpu}: <code>{esc(f.where)}</code>"
                    "</h4>"
                )
                what = "the buffered store reaches memory" if f.event.endswith("@mem") else f.code
                out.append(f"<pre>{esc(what)}\n-&gt; {esc(f.effect)}</pre>")
            out.append(f"<pre>{esc(f.state)}</pre>")
            if f.index == n - 1 and self.violations:
                out.append('<div class="race-bad">' + esc("\n".join(self.violations)) + "</div>")
            out.append("</section>")
        out.append("</div></div>")
        out.append(script_html(pid, items=".race-ev", link="data-step", unit="event"))
        out.append("</div>")
        return "\n".join(out)


def player(run: RaceResult | Replay) -> RacePlayer:
    """The step-through of ``run``'s schedule (the shortest bad one, or the replayed one)."""
    return RacePlayer(run)
