// "Edit in the lab" on the chapters' scenario cells: each step-by-step player (its
// listing) and each %%scenario cell (its input) gets a link that opens the scenario, and
// its scheme, in the book's lab (lab.html), through the URL fragment. Loaded on every page
// (html_js_files in book/_config.yml); it reads only the page, and does nothing on the lab.
(function () {
  "use strict";
  var here = document.currentScript ? document.currentScript.src : "";
  if (!here) return;
  var lab = new URL("../../lab.html", here);
  if (location.pathname === lab.pathname) return;

  function link(text, scheme, where, before) {
    var p = new URLSearchParams();
    if (scheme) p.set("scheme", scheme);
    p.set("scn", text.replace(/\s*$/, "\n"));
    var a = document.createElement("a");
    a.className = "anonlib-edit-lab";
    a.href = lab.href + "#" + p.toString();
    a.textContent = "Edit in the lab";
    a.title = "Open this scenario" + (scheme ? " under " + scheme : "") +
      " in the scenario lab, and run it in your browser";
    var box = document.createElement("div");
    box.className = "anonlib-edit-lab-box";
    box.style.cssText = "text-align:right;font-size:12px;margin:2px 0";
    box.appendChild(a);
    where.parentNode.insertBefore(box, before ? where : where.nextSibling);
  }

  function ready() {
    // the players: the listing holds "<mark> <number>  <text>" per line
    document.querySelectorAll(".anonlib-player").forEach(function (player) {
      var lines = player.querySelectorAll(".anonlib-src .anonlib-line");
      if (!lines.length) return;
      var out = [];
      lines.forEach(function (el) {
        var n = parseInt(el.getAttribute("data-line"), 10);
        var m = /^\S\s+\d+  ([\s\S]*)$/.exec(el.textContent);
        while (out.length < n - 1) out.push("");
        out.push(m ? m[1] : "");
      });
      var code = player.querySelector("div > code");
      link(out.join("\n"), code ? code.textContent : "", player, true);
    });
    // the %%scenario cells: their input starts with the magic's line
    document.querySelectorAll("div.cell").forEach(function (cell) {
      var input = cell.querySelector(".cell_input pre");
      if (!input) return;
      var src = input.textContent;
      var m = /^%%scenario([^\n]*)\n([\s\S]*)$/.exec(src);
      if (!m) return;
      var opt = /--scheme[= ]+(\S+)/.exec(m[1]);
      link(m[2], opt ? opt[1] : "", cell.querySelector(".cell_input"), false);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
