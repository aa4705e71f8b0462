"""One self-contained HTML file for ``meshlens report``: data, script, style and the graph
library inlined; the page fetches nothing.

Layer: L7 (review). Imports: nothing of meshlens.

Drawing uses Cytoscape.js (MIT, vendored in ``assets/`` with its licence): its ``cose`` layout
places small meshes, a grid of collapsed namespaces keeps a 1,000-service mesh readable (a
click expands a namespace). The page reads its data from one ``application/json`` script and
writes ``data-ready``, ``data-nodes`` and ``data-edges`` on ``<body>`` once drawn, and any
script error into ``#errors``, so a headless browser can check it.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any


def _asset(name: str) -> str:
    return resources.files("meshlens.review").joinpath("assets", name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    # "</" can end the script element; "\u2028/9" end a JS line in old engines.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


#: The big per-node parts travel gzip-compressed (base64) and are unpacked in the browser on the
#: first click (DecompressionStream, built into every current browser): proxy-config tables and
#: traces compress about tenfold, which keeps a 1,000-service report near 10 MB.
PACKED = ("panels", "services")


def _pack(value: Any) -> str:
    import base64
    import gzip

    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def render_html(data: dict[str, Any]) -> str:
    data = dict(data)
    data["packed"] = {k: _pack(data.pop(k, {})) for k in PACKED}
    title = html.escape(str(data.get("title", "meshlens report")))
    return (_TEMPLATE
            .replace("@@TITLE@@", title)
            .replace("@@STYLE@@", _STYLE)
            .replace("@@CYTOSCAPE@@", _asset("cytoscape.min.js").replace("</script", "<\\/script"))
            .replace("@@DATA@@", _json_for_script(data))
            .replace("@@APP@@", _APP))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>@@TITLE@@</title>
<style>@@STYLE@@</style>
</head>
<body>
<header>
  <h1>@@TITLE@@</h1>
  <span id="summary"></span>
  <input id="search" type="search" placeholder="search workloads, services…" aria-label="search">
  <select id="ns" aria-label="namespace"><option value="">all namespaces</option></select>
  <label><input type="checkbox" id="only-problems"> only problems</label>
  <select id="level" aria-label="finding level">
    <option value="Info">Info and above</option><option value="Warning">Warning and above</option>
    <option value="Error">Errors only</option></select>
</header>
<main>
  <div id="graph" aria-label="mesh graph"></div>
  <aside id="panel"><div id="detail"></div></aside>
</main>
<footer id="legend"></footer>
<div id="errors" hidden></div>
<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " ")); orig.apply(console, arguments); }; })();
</script>
<script>@@CYTOSCAPE@@</script>
<script type="application/json" id="data">@@DATA@@</script>
<script>@@APP@@</script>
</body>
</html>
"""

_STYLE = """
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #222; display: flex; flex-direction: column; height: 100vh; }
header { display: flex; gap: .8em; align-items: center; padding: .4em .8em; border-bottom: 1px solid #ddd; flex-wrap: wrap; }
header h1 { font-size: 15px; margin: 0; }
#summary { color: #555; }
#search { width: 16em; }
main { flex: 1; display: flex; min-height: 0; }
#graph { flex: 1; min-width: 0; }
#panel { width: 40%; max-width: 720px; border-left: 1px solid #ddd; overflow: auto; padding: .6em .9em; }
#panel h2 { font-size: 14px; margin: .2em 0 .4em; }
#panel h3 { font-size: 13px; margin: .9em 0 .3em; }
pre { font: 11px/1.35 ui-monospace, monospace; background: #f7f7f7; padding: .5em; overflow: auto; white-space: pre; }
.finding { border-left: 4px solid #999; padding: .2em .5em; margin: .3em 0; background: #fafafa; }
.finding.Error { border-color: #d62728; } .finding.Warning { border-color: #ff7f0e; }
.finding .fix { color: #444; } .finding .where { color: #666; font-family: ui-monospace, monospace; font-size: 11px; }
.tag { display: inline-block; padding: 0 .4em; border-radius: 3px; color: #fff; font-size: 11px; margin-right: .3em; }
.new { outline: 2px solid #2ca02c; }
footer { border-top: 1px solid #ddd; padding: .3em .8em; display: flex; gap: 1em; flex-wrap: wrap; color: #444; }
footer span.sw { display: inline-block; width: 1.6em; height: .7em; margin-right: .3em; vertical-align: middle; }
table.kv td { padding: 0 .6em .1em 0; vertical-align: top; }
"""

_APP = r"""
(function () {
"use strict";
var D = JSON.parse(document.getElementById("data").textContent);
var FL = D.flags, F = D.findings;
var LEVELS = {Error: 0, Warning: 1, Info: 2};
var big = D.nodes.length > 400;
var unpacked = null;
function unpack() {
  if (unpacked) return unpacked;
  function one(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }
  unpacked = Promise.all([one(D.packed.panels), one(D.packed.services)]).then(function (r) {
    D.panels = r[0]; D.services = r[1];
  });
  return unpacked;
}
var expanded = {};

function esc(s) { return String(s == null ? "" : s).replace(/[&<>"]/g, function (c) {
  return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c]; }); }
function colour(item) {
  if (item.flag && FL[item.flag]) return FL[item.flag];
  if (item.level === "Error") return FL.other;
  return null;
}
function nodeColour(n) {
  var c = colour(n); if (c) return c;
  return {service: "#4e79a7", workload: "#59a14f", gateway: "#f28e2b", external: "#b07aa1",
          missing: "#d62728", namespace: "#eeeeee"}[n.kind] || "#999";
}
function edgeLabel(e) {
  var parts = [];
  if (e.protocol === "tcp") parts.push("tcp");
  if (e.subset) parts.push(e.subset);
  if (e.weight != null && e.weight !== 100) parts.push(e.weight + "%");
  if (e.change === "reweighted") parts.push("(was " + e.was_weight + "%)");
  if (e.flag && e.flag !== "other") parts.push("503 " + e.flag);
  return parts.join(" ");
}
function elementFor(n) {
  var d = {id: n.id, label: n.label || n.id, kind: n.kind, colour: nodeColour(n)};
  if (n.parent && !big) d.parent = n.parent;
  if (n.parent && big && expanded[n.parent]) d.parent = n.parent;
  return {group: "nodes", data: d, classes: (n.kind || "") + (n.change ? " " + n.change : "")};
}
function edgeFor(e, src, dst) {
  var c = colour(e) || ({added: "#2ca02c", removed: "#aaaaaa", reweighted: "#ff7f0e"}[e.change]) || "#888";
  var style = e.tls === "plaintext" ? "dotted" : (e.tls === "TLS origination" ? "dashed" : "solid");
  if (e.change === "removed") style = "dashed";
  return {group: "edges", data: {id: e.id, source: src || e.source, target: dst || e.target,
          label: edgeLabel(e), colour: c, lstyle: style, width: e.findings.length ? 3 : 1.5}};
}

var byId = {}; D.nodes.forEach(function (n) { byId[n.id] = n; });
var nsOf = function (id) { var n = byId[id]; return n ? (n.kind === "namespace" ? id : n.parent) : null; };

function elements() {
  var els = [], shown = {};
  var nsFilter = document.getElementById("ns").value;
  var onlyProblems = document.getElementById("only-problems").checked;
  var minLevel = LEVELS[document.getElementById("level").value];
  function problem(item) {
    return item.findings.some(function (i) { return LEVELS[F[i].level] <= minLevel; }) || !!item.flag;
  }
  D.nodes.forEach(function (n) {
    var ns = n.kind === "namespace" ? n.id : n.parent;
    if (nsFilter && ns && ns !== "ns:" + nsFilter) return;
    if (big && n.kind === "namespace" && !expanded[n.id]) {
      var members = D.nodes.filter(function (m) { return m.parent === n.id; });
      var worst = members.filter(function (m) { return m.flag || m.level === "Error"; }).length;
      var el = elementFor(n); el.data.label = n.label + " (" + members.length + (worst ? ", " + worst + " with problems" : "") + ")";
      el.data.colour = worst ? "#f4b6b6" : "#dddddd"; el.classes = "namespace collapsed";
      els.push(el); shown[n.id] = n.id; return;
    }
    if (big && n.parent && !expanded[n.parent]) { shown[n.id] = n.parent; return; }
    if (onlyProblems && n.kind !== "namespace" && !problem(n) &&
        !D.edges.some(function (e) { return (e.source === n.id || e.target === n.id) && problem(e); })) return;
    els.push(elementFor(n)); shown[n.id] = n.id;
  });
  var agg = {};
  D.edges.forEach(function (e) {
    var s = shown[e.source], t = shown[e.target];
    if (!s || !t) return;
    if (onlyProblems && !problem(e)) return;
    if (s !== e.source || t !== e.target) {
      if (s === t) return;
      var k = s + "->" + t; if (agg[k]) { agg[k].n++; return; }
      agg[k] = {n: 1}; els.push({group: "edges", data: {id: "agg:" + k, source: s, target: t, label: "",
        colour: "#bbb", lstyle: "solid", width: 1}});
      return;
    }
    els.push(edgeFor(e));
  });
  return els;
}

var cy = cytoscape({
  container: document.getElementById("graph"),
  wheelSensitivity: 0.3,
  style: [
    {selector: "node", style: {"background-color": "data(colour)", "label": "data(label)", "font-size": 10,
      "text-valign": "bottom", "text-margin-y": 3, "width": 22, "height": 22}},
    {selector: "node.service", style: {"shape": "round-rectangle"}},
    {selector: "node.gateway", style: {"shape": "diamond", "width": 30, "height": 30}},
    {selector: "node.external", style: {"shape": "hexagon"}},
    {selector: "node.missing", style: {"shape": "octagon", "border-width": 2, "border-color": "#900"}},
    {selector: "node.removed", style: {"opacity": 0.45}},
    {selector: ":parent", style: {"background-opacity": 0.06, "background-color": "#888", "text-valign": "top",
      "font-weight": "bold", "padding": 12}},
    {selector: "node.collapsed", style: {"shape": "round-rectangle", "width": 90, "height": 40, "text-valign": "center",
      "text-wrap": "wrap", "text-max-width": 90}},
    {selector: "edge", style: {"curve-style": "bezier", "target-arrow-shape": "triangle", "line-color": "data(colour)",
      "target-arrow-color": "data(colour)", "line-style": "data(lstyle)", "width": "data(width)", "label": "data(label)",
      "font-size": 9, "text-background-color": "#fff", "text-background-opacity": 0.8, "text-background-padding": 1}},
    {selector: ".dim", style: {"opacity": 0.15}},
    {selector: ":selected", style: {"border-width": 3, "border-color": "#000"}}
  ]
});

function layout() {
  var opts = big && !Object.keys(expanded).length ? {name: "grid", avoidOverlap: true}
    : (cy.nodes().length > 300 ? {name: "grid", avoidOverlap: true}
    : {name: "cose", animate: false, randomize: false, nodeRepulsion: 9000, idealEdgeLength: 90, padding: 20});
  cy.layout(opts).run();
}
function redraw() { cy.elements().remove(); cy.add(elements()); layout(); }

function findingHTML(i) {
  var f = F[i];
  var tag = f.flag ? "<span class='tag' style='background:" + (FL[f.flag] || FL.other) + "'>" +
    (f.flag === "403" ? "403" : "503 " + esc(f.flag)) + "</span>" : "";
  return "<div class='finding " + esc(f.level) + (f.change === "new" ? " new" : "") + "'>" + tag +
    "<b>" + esc(f.level) + " [" + esc(f.code) + "]</b> " + esc(f.message) +
    (f.fix ? "<div class='fix'>fix: " + esc(f.fix) + "</div>" : "") +
    "<div class='where'>" + esc(f.resource) + (f.file ? " " + esc(f.file) + ":" + f.line : "") + "</div></div>";
}
function overview() {
  var h = "<h2>" + esc(D.title) + "</h2><p>" + esc(D.summary.services) + " services, " + esc(D.summary.workloads) +
    " workloads, " + esc(D.summary.edges) + " routes drawn. Click a node or an edge.</p>";
  if (D.change) {
    h += "<h3>Change</h3><p>edges added " + D.change.edges_added + ", removed " + D.change.edges_removed +
      ", reweighted " + D.change.edges_reweighted + "; findings new " + D.change.findings_new.length +
      ", gone " + D.change.findings_gone.length + "</p>";
    D.change.findings_gone.forEach(function (f) { h += "<div class='finding'>gone: [" + esc(f.code) + "] " + esc(f.message) + "</div>"; });
  }
  h += "<h3>Findings</h3>";
  var minLevel = LEVELS[document.getElementById("level").value];
  F.forEach(function (f, i) { if (LEVELS[f.level] <= minLevel) h += findingHTML(i); });
  document.getElementById("detail").innerHTML = h;
}
function showNode(n) {
  if (!n) return;
  if (!D.panels) { unpack().then(function () { showNode(n); }, function (e) { window.__errors.push(String(e)); }); return; }
  var h = "<h2>" + esc(n.kind) + " " + esc(n.label) + "</h2><table class='kv'>";
  ["namespace", "proxy", "injected"].forEach(function (k) { if (n[k] != null) h += "<tr><td>" + k + "</td><td>" + esc(n[k]) + "</td></tr>"; });
  if (n.ports) h += "<tr><td>ports</td><td>" + esc(n.ports.join(", ")) + "</td></tr>";
  if (n.pods) h += "<tr><td>pods</td><td>" + esc(n.pods.join(", ")) + "</td></tr>";
  h += "</table>";
  if (n.findings.length) { h += "<h3>Findings</h3>"; n.findings.forEach(function (i) { h += findingHTML(i); }); }
  var s = D.services[n.id];
  if (s) {
    if (s.traces.length) {
      h += "<h3>Requests (traced from one sidecar)</h3>";
      s.traces.forEach(function (t) {
        h += "<div class='finding " + (t.verdict === "ok" ? "" : "Error") + "'><b>" + esc(t.verdict) +
          (t.status ? " " + esc(t.status) : "") + "</b> " + esc(t.request) + " <span class='where'>(" + esc(t.match) +
          ")</span><div class='where'>" + esc((t.clusters || []).join(", ")) + (t.reason ? " — " + esc(t.reason) : "") + "</div></div>";
      });
    }
    s.clusters.forEach(function (c) {
      h += "<h3>" + esc(c.cluster) + "</h3>" + (c.fields.length ? "<pre>" + esc(c.fields.join("\n")) + "</pre>"
        : "<p>no DestinationRule field: istiod defaults</p>");
    });
  }
  var p = D.panels[n.id];
  if (p && !p.sections) {
    h += "<p>Same outbound config as " + esc(p.group) + " (one compile serves both, as in istiod's cache); its tables:</p>";
    p = D.panels["wl:" + p.group];
  }
  if (p && p.sections) p.sections.forEach(function (sec) { h += "<h3>" + esc(sec.title) + "</h3><pre>" + esc(sec.text) + "</pre>"; });
  document.getElementById("detail").innerHTML = h;
}
function showEdge(e) {
  if (!e) return;
  var h = "<h2>route " + esc((byId[e.source] || {}).label) + " → " + esc((byId[e.target] || {}).label) + "</h2><table class='kv'>";
  [["protocol", e.protocol], ["cluster", e.cluster], ["subset", e.subset], ["weight", e.weight != null ? e.weight + "%" : null],
   ["TLS", e.tls], ["VirtualService", e.vs], ["change", e.change]].forEach(function (kv) {
    if (kv[1] != null && kv[1] !== "") h += "<tr><td>" + kv[0] + "</td><td>" + esc(kv[1]) + "</td></tr>"; });
  h += "<tr><td>matches</td><td>" + esc((e.matches || []).join(" | ") || "any") + "</td></tr></table>";
  if (e.findings.length) { h += "<h3>Findings</h3>"; e.findings.forEach(function (i) { h += findingHTML(i); }); }
  document.getElementById("detail").innerHTML = h;
}
var edgesById = {}; D.edges.forEach(function (e) { edgesById[e.id] = e; });
cy.on("tap", "node", function (ev) {
  var id = ev.target.id();
  if (big && byId[id] && byId[id].kind === "namespace" && !expanded[id]) { expanded[id] = true; redraw(); return; }
  showNode(byId[id]);
});
cy.on("tap", "edge", function (ev) { showEdge(edgesById[ev.target.id()]); });
cy.on("tap", function (ev) { if (ev.target === cy) overview(); });

var nsSel = document.getElementById("ns");
D.nodes.filter(function (n) { return n.kind === "namespace"; }).map(function (n) { return n.label; }).sort()
  .forEach(function (ns) { var o = document.createElement("option"); o.value = ns; o.textContent = ns; nsSel.appendChild(o); });
nsSel.addEventListener("change", function () { if (nsSel.value) expanded["ns:" + nsSel.value] = true; redraw(); });
document.getElementById("only-problems").addEventListener("change", redraw);
document.getElementById("level").addEventListener("change", function () { redraw(); overview(); });
document.getElementById("search").addEventListener("input", function (ev) {
  var q = ev.target.value.trim().toLowerCase();
  cy.elements().removeClass("dim");
  if (!q) return;
  var hit = cy.nodes().filter(function (n) { return String(n.data("label")).toLowerCase().indexOf(q) >= 0; });
  if (!hit.length && big) {
    var m = D.nodes.find(function (n) { return String(n.label || "").toLowerCase().indexOf(q) >= 0 && n.parent; });
    if (m) { expanded[m.parent] = true; redraw(); hit = cy.nodes().filter(function (n) { return String(n.data("label")).toLowerCase().indexOf(q) >= 0; }); }
  }
  cy.elements().not(hit).not(hit.connectedEdges()).addClass("dim");
  if (hit.length) cy.fit(hit, 60);
});

var legend = "<span><b>nodes</b>: ■ service ● workload ◆ gateway ⬢ external ⯃ missing</span>" +
  "<span><b>edges</b>: solid mTLS · dotted plaintext · dashed TLS origination; label: subset, weight, tcp</span>";
Object.keys(FL).forEach(function (k) { legend += "<span><span class='sw' style='background:" + FL[k] + "'></span>" +
  (k === "other" ? "other error" : (k === "403" ? "403 denied" : "503 " + k)) + "</span>"; });
if (D.change) legend += "<span><span class='sw' style='background:#2ca02c'></span>added <span class='sw' style='background:#aaa'></span>removed <span class='sw' style='background:#ff7f0e'></span>reweighted</span>";
document.getElementById("legend").innerHTML = legend;
var fs = D.summary.findings;
document.getElementById("summary").textContent = D.summary.services + " services · " + D.summary.workloads +
  " workloads · findings: " + fs.Error + " errors, " + fs.Warning + " warnings, " + fs.Info + " info";

var hashNs = /(?:^#|&)ns=([^&]+)/.exec(location.hash);
if (hashNs) { nsSel.value = decodeURIComponent(hashNs[1]); expanded["ns:" + nsSel.value] = true; }
redraw();
overview();
document.body.dataset.nodes = String(cy.nodes().length);
document.body.dataset.edges = String(cy.edges().length);
document.body.dataset.findings = String(F.length);
var flagged = {};
cy.edges().forEach(function (e) { var x = edgesById[e.id()]; if (x && x.flag) flagged[x.flag] = (flagged[x.flag] || 0) + 1; });
document.body.dataset.flagged = Object.keys(flagged).sort().map(function (k) { return k + ":" + flagged[k]; }).join(",");
function flushErrors() {
  if (window.__errors.length) { var el = document.getElementById("errors"); el.hidden = false; el.textContent = window.__errors.join("\n"); }
}
unpack().then(function () {
  document.body.dataset.panels = String(Object.keys(D.panels).length);
  flushErrors(); document.body.dataset.ready = "1";
}, function (e) { window.__errors.push("unpack: " + e); flushErrors(); document.body.dataset.ready = "1"; });

})();
"""
