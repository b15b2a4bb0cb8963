// The scenario lab's Web Worker: Pyodide and anonlib, off the page's thread.
//
// Loads ./pyodide/ (copied from npm at build time) and ./anonlib.zip (the
// package and the scenario library of the tree the book was built from; see
// tools/lab_bundle.py), then answers messages from lab.js:
//   {id, cmd: "run", text, schemes, name, player}  -> anonlib.views.lab.run
//   {id, cmd: "explore", scheme, pages, depth, ops}  -> anonlib.views.lab.explore
//                                                (progress lines as {id, progress})
// Every answer is {id, ok: true, value} or {id, ok: false, error}. Nothing is
// fetched from anywhere but this folder.
"use strict";

importScripts("pyodide/pyodide.js");

var ready = (async function () {
  var t0 = performance.now();
  var base = new URL(".", self.location.href).href;
  var zip = fetch(base + "anonlib.zip").then(function (r) {  // while Pyodide starts
    if (!r.ok) throw new Error("anonlib.zip: HTTP " + r.status);
    return r.arrayBuffer();
  });
  var py = await loadPyodide({ indexURL: base + "pyodide/", fullStdLib: false });
  var t1 = performance.now();
  py.unpackArchive(await zip, "zip", { extractDir: "/home/pyodide/book" });
  py.runPython(
    "import os, sys\n" +
    "os.chdir('/home/pyodide/book')\n" +
    "sys.path.insert(0, '/home/pyodide/book')\n" +
    "import anonlib.views.lab as lab\n");
  var lab = py.globals.get("lab");
  var info = {
    python: lab.python_version(),
    pyodide: py.version,
    library: lab.library().toJs({ dict_converter: Object.fromEntries }),
    schemes: lab.schemes().toJs({ dict_converter: Object.fromEntries }),
    families: lab.families(),
    seconds: (performance.now() - t0) / 1000,
    pyodideSeconds: (t1 - t0) / 1000,
  };
  return { py: py, lab: lab, info: info };
})();

function convert(proxy) {
  var value = proxy.toJs({ dict_converter: Object.fromEntries });
  proxy.destroy();
  return value;
}

self.onmessage = async function (ev) {
  var msg = ev.data;
  try {
    var env = await ready;
    var value;
    var t0 = performance.now();
    if (msg.cmd === "init") {
      value = env.info;
    } else if (msg.cmd === "run") {
      var schemes = env.py.toPy(msg.schemes || []);
      value = convert(env.lab.run(msg.text, schemes, msg.name || "", msg.player !== false));
      schemes.destroy();
    } else if (msg.cmd === "explore") {
      var report = function (line) { self.postMessage({ id: msg.id, progress: line }); };
      value = convert(env.lab.explore(msg.scheme, msg.pages, msg.depth, msg.ops, 2, report));
    } else {
      throw new Error("unknown command " + msg.cmd);
    }
    if (msg.cmd !== "init" && value && typeof value === "object")
      value.seconds = (performance.now() - t0) / 1000;
    self.postMessage({ id: msg.id, ok: true, value: value });
  } catch (e) {
    self.postMessage({ id: msg.id, ok: false, error: String(e && e.message || e) });
  }
};
