"""What the two static players share: the controls, and the script that steps through frames.

The scenario player (:mod:`anonlib.player`) and the race player
(:mod:`anonlib.race.view`) are both a root element holding
``<section data-step="i">`` frames, one shown at a time, next to a list (the
scenario's lines, the schedule's events) whose entry for the shown frame is
highlighted. This module writes their common parts once:

* :func:`controls_html`: First / Back / Next / Last buttons (``data-act``,
  ``title`` and ``aria-label``), a slider and a live counter; hidden until
  the script runs, so a reader without JavaScript sees every frame instead;
* :data:`BOX_CSS`: how the player's box and its controls look;
* :func:`script_html`: the inline script. ``link`` names the attribute that
  ties a frame to its list entry (``data-line``: the frame of a scenario
  statement and the line it is on; ``data-step``: a race event and its
  frame). Clicking an entry shows its first frame; the arrow keys, Home and
  End move between frames.
* :func:`element_id`: a player's id, a hash of its content, so re-running a
  notebook gives the same bytes.

Nothing is loaded from the network.
"""

from __future__ import annotations

import hashlib

BOX_CSS = """
#{id} {{ color:#000; background:#fff; border:1px solid #bbb; border-radius:4px; padding:6px 8px;
  margin:4px 0; font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif; }}
#{id}:focus {{ outline:2px solid #0072B2; }}
#{id} .anonlib-controls {{ display:flex; flex-wrap:wrap; align-items:center; gap:6px;
  margin-bottom:6px; }}
#{id} .anonlib-controls button {{ font:inherit; padding:2px 10px; border:1px solid #666;
  border-radius:3px; background:#f4f4f4; color:#000; cursor:pointer; }}
#{id} .anonlib-controls button:disabled {{ color:#999; border-color:#ccc; cursor:default; }}
#{id} .anonlib-controls input[type=range] {{ flex:1 1 160px; min-width:120px; }}
#{id} .anonlib-counter {{ font-variant-numeric:tabular-nums; min-width:6em; }}
"""

_JS = """
(function () {{
  var root = document.getElementById("{id}");
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var frames = root.querySelectorAll("section[data-step]");
  var items = root.querySelectorAll("{items}");
  var slider = root.querySelector(".anonlib-controls input[type=range]");
  var counter = root.querySelector(".anonlib-counter");
  var btn = {{}};
  ["first", "back", "next", "last"].forEach(function (a) {{
    btn[a] = root.querySelector("button[data-act=" + a + "]");
  }});
  var last = frames.length - 1, cur = 0;
  function show(i) {{
    cur = Math.max(0, Math.min(last, i));
    for (var k = 0; k < frames.length; k++) frames[k].hidden = (k !== cur);
    slider.value = String(cur);
    counter.textContent = "{unit} " + cur + " of " + last;
    var mark = frames[cur].getAttribute("{link}");
    for (var k = 0; k < items.length; k++) {{
      var on = items[k].getAttribute("{link}") === mark;
      items[k].classList.toggle("anonlib-current", on);
      if (on) {{
        items[k].setAttribute("aria-current", "step");
        var box = items[k].parentNode, top = items[k].offsetTop;
        if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 20)
          box.scrollTop = Math.max(0, top - box.clientHeight / 2);
      }} else items[k].removeAttribute("aria-current");
    }}
    btn.first.disabled = btn.back.disabled = (cur === 0);
    btn.next.disabled = btn.last.disabled = (cur === last);
  }}
  btn.first.addEventListener("click", function () {{ show(0); }});
  btn.back.addEventListener("click", function () {{ show(cur - 1); }});
  btn.next.addEventListener("click", function () {{ show(cur + 1); }});
  btn.last.addEventListener("click", function () {{ show(last); }});
  slider.addEventListener("input", function () {{ show(parseInt(slider.value, 10)); }});
  for (var k = 0; k < items.length; k++) {{
    items[k].addEventListener("click", function (ev) {{
      var mark = ev.currentTarget.getAttribute("{link}");
      for (var f = 0; f < frames.length; f++)
        if (frames[f].getAttribute("{link}") === mark) {{ show(f); return; }}
    }});
  }}
  root.addEventListener("keydown", function (ev) {{
    if (ev.target === slider) return;
    var to = {{ArrowRight: cur + 1, ArrowDown: cur + 1, ArrowLeft: cur - 1, ArrowUp: cur - 1,
              Home: 0, End: last}}[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    show(to);
  }});
  root.querySelector(".anonlib-controls").hidden = false;
  show(0);
}})();
"""


def element_id(prefix: str, content: str) -> str:
    """A deterministic element id: ``prefix`` and 12 hex digits of the content's SHA-256."""
    return f"{prefix}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"


def controls_html(frames: int, unit: str) -> str:
    """The hidden controls for ``frames`` frames; ``unit`` names one (``step``, ``event``)."""
    Unit = unit.capitalize()
    out = ['<div class="anonlib-controls" hidden>']
    for act, label, glyph in (("first", f"First {unit}", "&laquo; First"),
                              ("back", f"Previous {unit}", "&lsaquo; Back"),
                              ("next", f"Next {unit}", "Next &rsaquo;"),
                              ("last", f"Last {unit}", "Last &raquo;")):
        out.append(f'<button type="button" data-act="{act}" title="{label}" '
                   f'aria-label="{label}">{glyph}</button>')
    out.append(f'<input type="range" min="0" max="{frames - 1}" value="0" step="1" '
               f'aria-label="{Unit}" title="{Unit}">'
               f'<span class="anonlib-counter" aria-live="polite">{unit} 0 of {frames - 1}</span>'
               "</div>")
    return "".join(out)


def noscript_html(pid: str) -> str:
    """Without JavaScript, show every frame (they are hidden but the first)."""
    return (f"<noscript><style>#{pid} section[data-step][hidden]{{display:block!important}}"
            "</style></noscript>")


def script_html(pid: str, *, items: str, link: str, unit: str) -> str:
    """The player's inline script (see the module doc for ``items`` and ``link``)."""
    return "<script>" + _JS.format(id=pid, items=items, link=link, unit=unit) + "</script>"
