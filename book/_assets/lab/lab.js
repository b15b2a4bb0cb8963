// The scenario lab (book/lab.md): an editor, schemes, Run, and the model's answer, computed
// in this browser by anonlib under Pyodide in a Web Worker (worker.js). No server, no network:
// everything it loads is in this folder, copied into the book when it was built.
//
// The URL fragment holds the scenario and the schemes (#scheme=a,b&name=...&scn=TEXT, or
// #tab=explore&scheme=...&pages=...&depth=...&ops=...), so a link runs the same thing in
// the reader's browser; the fragment is never sent to a server.
(function () {
  "use strict";
  var root = document.getElementById("anonlib-lab");
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var here = document.currentScript ? document.currentScript.src : location.href;
  var workerUrl = new URL("worker.js", here).href;

  function $(sel) { return root.querySelector(sel); }
  var status = $(".lab-status");
  var editor = $("#lab-text");
  var example = $("#lab-example");
  var schemesBox = $("#lab-schemes");
  var runBtn = $("#lab-run-btn");
  var result = $("#lab-result");
  var share = $("#lab-share");
  var exScheme = $("#lab-ex-scheme");
  var exBtn = $("#lab-ex-btn");
  var exCancel = $("#lab-ex-cancel");
  var exProgress = $("#lab-ex-progress");
  var exOut = $("#lab-ex-out");
  var exOpen = $("#lab-ex-open");

  function say(text, kind) {
    status.textContent = text;
    status.setAttribute("data-kind", kind || "info");
  }

  if (location.protocol === "file:") {
    root.classList.add("lab-file");
    say("The lab runs the model in your browser with WebAssembly, which browsers refuse to " +
        "load from file:// pages. Serve the book instead:  python3 -m http.server -d " +
        "book/_build/html  then open http://localhost:8000/lab.html  (the rest of the book " +
        "works from file://).", "error");
    return;
  }

  // ------------------------------------------------------------------ the worker
  var worker = null, nextId = 1, pending = {}, info = null, startedAt = 0;
  function startWorker() {
    startedAt = performance.now();
    worker = new Worker(workerUrl);
    pending = {};
    worker.onmessage = function (ev) {
      var m = ev.data, p = pending[m.id];
      if (!p) return;
      if (m.progress !== undefined) { if (p.progress) p.progress(m.progress); return; }
      delete pending[m.id];
      if (m.ok) p.resolve(m.value); else p.reject(new Error(m.error));
    };
    worker.onerror = function (ev) {
      say("The model could not start: " + (ev.message || "worker error"), "error");
    };
    return call({ cmd: "init" }).then(function (value) {
      info = value;
      info.readySeconds = (performance.now() - startedAt) / 1000;
      root.setAttribute("data-lab-ready", "1");
      say("Ready: anonlib on Python " + info.python + " (Pyodide " + info.pyodide +
          ") in this browser, started in " + info.readySeconds.toFixed(1) + " s.", "ok");
      return info;
    });
  }
  function call(msg, progress) {
    var id = nextId++;
    msg.id = id;
    return new Promise(function (resolve, reject) {
      pending[id] = { resolve: resolve, reject: reject, progress: progress };
      worker.postMessage(msg);
    });
  }
  function cancelWorker() {
    worker.terminate();
    Object.keys(pending).forEach(function (id) {
      pending[id].reject(new Error("cancelled"));
    });
    root.removeAttribute("data-lab-ready");
    say("Cancelled. Restarting the model...", "info");
    return startWorker();
  }

  // ------------------------------------------------------------------ the run tab
  var currentName = "";
  // Scheme names a link gave that are not schemes: run with them, so the reader sees the
  // command line's error (with the nearest name), until a box is ticked or cleared.
  var unknownSchemes = [];
  function chosenSchemes() {
    return Array.prototype.map.call(
      schemesBox.querySelectorAll("input[type=checkbox]:checked"),
      function (b) { return b.value; }).concat(unknownSchemes);
  }
  function setSchemes(names) {
    var known = [];
    schemesBox.querySelectorAll("input[type=checkbox]").forEach(function (b) {
      b.checked = names.indexOf(b.value) >= 0;
      known.push(b.value);
    });
    unknownSchemes = names.filter(function (n) { return known.indexOf(n) < 0; });
  }
  schemesBox.addEventListener("change", function () { unknownSchemes = []; });
  function fillMenus() {
    $("#lab-ex-families").textContent = info.families;
    var groups = {};
    info.library.forEach(function (s) {
      if (!groups[s.group]) {
        groups[s.group] = document.createElement("optgroup");
        groups[s.group].label = s.group;
        example.appendChild(groups[s.group]);
      }
      var o = document.createElement("option");
      o.value = s.path;
      o.textContent = s.path.split("/").pop();
      if (s.expect) o.title = "expected exit status per scheme: " + s.expect;
      groups[s.group].appendChild(o);
    });
    info.schemes.forEach(function (s, i) {
      var label = document.createElement("label");
      label.title = s.summary;
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = s.name;
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + s.name));
      schemesBox.appendChild(label);
      var o = document.createElement("option");
      o.value = s.name;
      o.textContent = s.name;
      o.title = s.summary;
      exScheme.appendChild(o);
    });
  }
  function libraryText(path) {
    for (var i = 0; i < info.library.length; i++)
      if (info.library[i].path === path) return info.library[i].text;
    return null;
  }
  example.addEventListener("change", function () {
    var text = libraryText(example.value);
    if (text !== null) { editor.value = text; currentName = example.value; }
  });
  editor.addEventListener("input", function () {
    if (currentName && libraryText(currentName) !== editor.value) example.value = "";
  });

  function fragmentFor() {
    var p = new URLSearchParams();
    var schemes = chosenSchemes();
    if (schemes.length) p.set("scheme", schemes.join(","));
    if (currentName && libraryText(currentName) === editor.value) p.set("name", currentName);
    p.set("scn", editor.value);
    return "#" + p.toString();
  }

  function runScripts(el) {
    el.querySelectorAll("script").forEach(function (old) {
      var s = document.createElement("script");
      s.textContent = old.textContent;
      old.parentNode.replaceChild(s, old);
    });
  }

  function show(value) {
    result.innerHTML = "";
    result.setAttribute("data-seconds", String(value.seconds));
    if (value.compare) {
      var h = document.createElement("h3");
      h.textContent = "The verdicts side by side (anonlib.compare)";
      var pre = document.createElement("pre");
      pre.className = "lab-compare";
      pre.textContent = value.compare;
      result.appendChild(h);
      result.appendChild(pre);
    }
    var grid = document.createElement("div");
    grid.className = "lab-runs" + (value.runs.length > 1 ? " lab-runs-many" : "");
    value.runs.forEach(function (r) {
      var box = document.createElement("section");
      box.className = "lab-run";
      box.setAttribute("data-scheme", r.scheme);
      box.setAttribute("data-status", String(r.status));
      var h = document.createElement("h3");
      h.textContent = (r.scheme ? "Under " + r.scheme : "Under the file's scheme") +
        ": exit " + r.status + (r.status === 0 ? " (all held)" : r.status === 1 ?
          " (a check failed)" : " (not a valid scenario)");
      var cmd = document.createElement("div");
      cmd.className = "lab-cmd";
      cmd.textContent = "$ python -m anonlib " + r.argv.join(" ");
      var out = document.createElement("pre");
      out.className = "lab-output" + (r.status === 2 ? " lab-error" : "");
      out.textContent = r.output;
      box.appendChild(h);
      box.appendChild(cmd);
      box.appendChild(out);
      if (r.player) {
        var p = document.createElement("div");
        p.className = "lab-player";
        p.innerHTML = r.player;
        box.appendChild(p);
        runScripts(p);
      }
      grid.appendChild(box);
    });
    result.appendChild(grid);
  }

  function run() {
    if (!info) return Promise.resolve();
    var frag = fragmentFor();
    history.replaceState(null, "", frag);
    share.href = frag;
    runBtn.disabled = true;
    root.setAttribute("data-busy", "run");
    say("Running...", "info");
    return call({ cmd: "run", text: editor.value, schemes: chosenSchemes(),
                  name: (currentName && libraryText(currentName) === editor.value) ?
                        currentName : "" })
      .then(function (value) {
        show(value);
        say("Ran in " + value.seconds.toFixed(2) + " s (anonlib on Python " + info.python +
            ", in this browser).", "ok");
      }, function (e) { say("The run failed: " + e.message, "error"); })
      .then(function () { runBtn.disabled = false; root.removeAttribute("data-busy"); });
  }
  runBtn.addEventListener("click", run);

  // ------------------------------------------------------------------ the explore tab
  var tabs = root.querySelectorAll("[role=tab]");
  function showTab(name) {
    tabs.forEach(function (t) {
      var on = t.getAttribute("data-tab") === name;
      t.setAttribute("aria-selected", on ? "true" : "false");
      $("#lab-tab-" + t.getAttribute("data-tab")).hidden = !on;
    });
  }
  tabs.forEach(function (t) {
    t.addEventListener("click", function () { showTab(t.getAttribute("data-tab")); });
  });
  var counterexample = "";
  function explore() {
    if (!info) return;
    var p = new URLSearchParams();
    p.set("tab", "explore");
    p.set("scheme", exScheme.value);
    p.set("pages", $("#lab-ex-pages").value);
    p.set("depth", $("#lab-ex-depth").value);
    p.set("ops", $("#lab-ex-ops").value);
    history.replaceState(null, "", "#" + p.toString());
    exBtn.disabled = true;
    exCancel.disabled = false;
    exOpen.hidden = true;
    exOut.textContent = "";
    exProgress.textContent = "exploring...";
    root.setAttribute("data-busy", "explore");
    var t0 = performance.now();
    call({ cmd: "explore", scheme: exScheme.value, pages: $("#lab-ex-pages").value,
           depth: parseInt($("#lab-ex-depth").value, 10) || 0, ops: $("#lab-ex-ops").value },
         function (line) { exProgress.textContent = line; })
      .then(function (value) {
        exOut.textContent = value.output;
        exOut.setAttribute("data-status", String(value.status));
        exProgress.textContent = "done in " + ((performance.now() - t0) / 1000).toFixed(2) +
          " s: exit " + value.status + (value.status === 0 ? " (every invariant held)" :
            value.status === 1 ? " (a counterexample)" : " (bad options)");
        counterexample = value.counterexample;
        exOpen.hidden = !counterexample;
      }, function (e) {
        exProgress.textContent = e.message === "cancelled" ? "cancelled" : "failed: " + e.message;
      })
      .then(function () {
        exBtn.disabled = false; exCancel.disabled = true; root.removeAttribute("data-busy");
      });
  }
  exBtn.addEventListener("click", explore);
  exCancel.addEventListener("click", function () {
    exCancel.disabled = true;
    cancelWorker().then(function () { exBtn.disabled = false; runBtn.disabled = false; });
  });
  exOpen.addEventListener("click", function () {
    editor.value = counterexample;
    currentName = "";
    example.value = "";
    setSchemes([]);
    showTab("run");
    run();
  });

  // ------------------------------------------------------------------ the fragment
  function fromFragment() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (p.get("tab") === "explore") {
      showTab("explore");
      if (p.get("scheme")) exScheme.value = p.get("scheme");
      if (p.get("pages")) $("#lab-ex-pages").value = p.get("pages");
      if (p.get("depth")) $("#lab-ex-depth").value = p.get("depth");
      if (p.get("ops")) $("#lab-ex-ops").value = p.get("ops");
      return false;
    }
    if (!p.has("scn") && !p.has("name")) return false;
    showTab("run");
    var name = p.get("name") || "";
    var text = p.has("scn") ? p.get("scn") : libraryText(name);
    editor.value = text || "";
    currentName = name && libraryText(name) === editor.value ? name : "";
    example.value = currentName;
    setSchemes((p.get("scheme") || "").split(",").filter(Boolean));
    return true;
  }
  window.addEventListener("hashchange", function () {
    if (info && fromFragment()) run();
  });

  say("Loading the model: Python (Pyodide) and anonlib, in this browser...", "info");
  // For the browser test and the benchmark (tests/test_book_lab.py, benchmarks/lab.py): the
  // worker's answers, without the page around them.
  window.anonlibLab = { call: function (msg) { return call(msg); } };

  startWorker().then(function () {
    fillMenus();
    runBtn.disabled = false;
    exBtn.disabled = false;
    if (fromFragment()) { run(); return; }
    if (!editor.value) {
      var first = "scenarios/history/b02-cve-2020-29374.scn";
      if (libraryText(first) === null) first = info.library[0].path;
      editor.value = libraryText(first);
      currentName = first;
      example.value = first;
    }
  }, function (e) { say("The model could not start: " + e.message, "error"); });
})();
