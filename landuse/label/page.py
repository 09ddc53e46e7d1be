"""The labelling page: one HTML + JS template for both ways of using it.

* served (``mode = "serve"``): the page fetches the session and the images from the label
  server and posts every label / skip / undo at once (the server writes the dataset);
* written (``mode = "static"``): everything is inlined (images as data URLs), answers are kept
  in the browser's localStorage and "Export labels" downloads a labels file for
  ``landuse label --import``.

No external script, stylesheet, font or tile server: the mini-map is an SVG over the run's class
map (one pixel per plot).
"""

from __future__ import annotations

import json
from typing import Any

TITLE = "landuse label"

CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.35 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; background: #eef1f4; }
header { display: flex; align-items: center; gap: 16px; padding: 8px 16px; background: #1f2d3a; color: #fff; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
#progress { flex: 1; display: flex; align-items: center; gap: 10px; }
#bar { flex: 1; max-width: 420px; height: 8px; background: #44576a; border-radius: 4px; overflow: hidden; }
#bar > div { height: 100%; background: #6fcf97; width: 0; }
main { display: flex; gap: 16px; padding: 12px 16px; align-items: flex-start; }
#views { display: flex; gap: 12px; flex-wrap: wrap; }
.view { position: relative; background: #fff; padding: 8px; border-radius: 6px; box-shadow: 0 1px 3px #0002; }
.view.target { outline: 3px solid #2f80ed; }
.view img { display: block; width: min(520px, 36vw, calc(100vh - 200px)); height: auto; aspect-ratio: 1; background: #222; }
.views-1 .view img { width: min(640px, 60vw, calc(100vh - 200px)); }
#left { display: flex; flex-direction: column; gap: 12px; }
.view .cap { margin-top: 6px; display: flex; justify-content: space-between; color: #444; }
.frame { position: relative; }
.outline { position: absolute; border: 2px dashed #ffd400; box-shadow: 0 0 0 1px #0008; pointer-events: none; }
body.no-outline .outline { display: none; }
aside { width: 300px; flex: none; display: flex; flex-direction: column; gap: 12px; }
.card { background: #fff; border-radius: 6px; padding: 10px 12px; box-shadow: 0 1px 3px #0002; }
.card h2 { font-size: 13px; margin: 0 0 6px; color: #5a6570; text-transform: uppercase; letter-spacing: .04em; }
.prob { display: flex; align-items: center; gap: 6px; margin: 2px 0; font-size: 13px; }
.prob span.t { width: 86px; overflow: hidden; text-overflow: ellipsis; }
.prob .pb { flex: 1; height: 8px; background: #e4e8ec; border-radius: 4px; overflow: hidden; }
.prob .pb div { height: 100%; }
#guess-main { font-size: 18px; font-weight: 600; }
.reason { display: inline-block; padding: 1px 8px; border-radius: 9px; background: #e8eefc; color: #2f5bd3; font-size: 12px; }
#buttons { display: flex; flex-wrap: wrap; gap: 8px; }
#buttons button { font: inherit; font-size: 15px; padding: 10px 16px; border-radius: 6px; border: 1px solid #b8c2cc;
  background: #fff; cursor: pointer; display: flex; align-items: center; gap: 8px; }
#buttons button:hover { background: #f3f6f9; }
#buttons button kbd { font: 12px ui-monospace, monospace; background: #eef1f4; border: 1px solid #cfd6dd; border-radius: 3px; padding: 0 5px; }
#buttons .swatch { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
#buttons button.aux { color: #555; }
#minimap svg { width: 100%; height: auto; background: #f7f8fa; border: 1px solid #dde2e7; }
#minimap image { image-rendering: pixelated; image-rendering: crisp-edges; }
#where { font-size: 12px; color: #5a6570; word-break: break-all; }
#finished { display: none; padding: 40px; text-align: center; font-size: 16px; }
body.finished main { display: none; }
body.finished #finished { display: block; }
#finished code { background: #fff; padding: 4px 8px; border-radius: 4px; }
#toast { position: fixed; bottom: 16px; right: 16px; background: #1f2d3a; color: #fff; padding: 8px 14px; border-radius: 6px; opacity: 0; transition: opacity .3s; }
#toast.on { opacity: .95; }
#error { display: none; background: #fde2e1; color: #8a1c13; padding: 8px 16px; }
"""

BODY = """
<header>
  <h1>landuse label</h1>
  <div id="progress"><div id="bar"><div></div></div><span id="count">-</span></div>
  <span id="periodinfo"></span>
  <button id="export" style="display:none">Export labels</button>
</header>
<div id="error"></div>
<main>
  <div id="left"><div id="views"></div><div id="buttons"></div></div>
  <aside>
    <div class="card" id="guess"><h2>Model's guess</h2><div id="guess-main"></div><div id="probs"></div>
      <div style="margin-top:6px">asked because: <span class="reason" id="reason"></span></div></div>
    <div class="card" id="minimap"><h2>Where is this</h2><div id="map"></div><div id="where"></div></div>
    <div class="card" style="font-size:12px;color:#5a6570">Keys: <b>1-9</b> tags, <b>u</b> unknown, <b>s</b>/space skip,
      <b>z</b>/Backspace undo, <b>o</b> plot outline on/off. Every answer is saved at once.</div>
  </aside>
</main>
<div id="finished"></div>
<div id="toast"></div>
"""

JS = r"""
(function () {
  "use strict";
  var CFG = window.LABEL_CONFIG;
  var S = null, state = null, current = null, busy = false;
  var key = null;
  function $(id) { return document.getElementById(id); }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; }); }
  function toast(msg) { var t = $("toast"); t.textContent = msg; t.className = "on"; clearTimeout(t._h); t._h = setTimeout(function () { t.className = ""; }, 1400); }
  function fail(msg) { var e = $("error"); e.textContent = msg; e.style.display = "block"; }

  // -- back ends: the label server, or localStorage for the written page ------------------
  function api(method, path, body) {
    return fetch(path, {method: method, headers: {"X-Landuse-Key": key, "Content-Type": "application/json"},
                        body: body ? JSON.stringify(body) : undefined})
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.detail || r.statusText); return j; }); });
  }
  var local = {
    storeKey: function () { return "landuse-label:" + S.session; },
    load: function () { var d = null; try { d = JSON.parse(localStorage.getItem(local.storeKey())); } catch (e) { d = null; }
      return d || {labels: {}, labelled_at: {}, skipped: [], history: []}; },
    save: function (d) { localStorage.setItem(local.storeKey(), JSON.stringify(d)); },
    state: function (d) {
      var nxt = null, done = 0;
      S.items.forEach(function (it, i) { var isDone = (it.key in d.labels) || d.skipped.indexOf(it.key) >= 0; if (isDone) done++; else if (nxt === null) nxt = i; });
      return {labels: d.labels, skipped: d.skipped.slice(), next: nxt, done: done, total: S.items.length, can_undo: d.history.length > 0};
    },
    act: function (action, k, label) {
      var d = local.load();
      if (action === "label") { d.labels[k] = label; d.labelled_at[k] = new Date().toISOString(); d.skipped = d.skipped.filter(function (x) { return x !== k; }); d.history.push({key: k, action: "label", label: label}); }
      else if (action === "skip") { if (d.skipped.indexOf(k) < 0) d.skipped.push(k); d.history.push({key: k, action: "skip"}); }
      else if (action === "undo") { var last = d.history.pop(); if (last) { if (last.action === "skip") d.skipped = d.skipped.filter(function (x) { return x !== last.key; }); else { delete d.labels[last.key]; delete d.labelled_at[last.key]; } } }
      local.save(d);
      return Promise.resolve(local.state(d));
    }
  };
  function act(action, label) {
    if (busy || !current) return;
    if (action === "undo" && !(state && state.can_undo)) { toast("nothing to undo"); return; }
    busy = true;
    var item = current;
    var p = CFG.mode === "static" ? local.act(action, item.key, label)
      : api("POST", "api/" + action, action === "undo" ? {} : {key: item.key, label: label});
    p.then(function (st) {
      busy = false; state = st;
      if (action === "label") toast(label + " \u2713"); else if (action === "skip") toast("skipped"); else toast("undone");
      show();
    }).catch(function (e) { busy = false; fail("could not save: " + e.message); });
  }
  window.landuseLabel = {act: act, state: function () { return state; }, current: function () { return current; }};

  // -- drawing ----------------------------------------------------------------------------
  function tagColour(t) { return (S.colours && S.colours[t]) || "#8896a4"; }
  function buildButtons() {
    var b = $("buttons"), html = "";
    S.tags.forEach(function (t, i) {
      var k = t === "unknown" ? "u" : (i < 9 ? String(i + 1) : "");
      html += '<button data-label="' + esc(t) + '" id="btn-' + esc(t) + '">' + (k ? "<kbd>" + k + "</kbd>" : "") +
        '<span class="swatch" style="background:' + tagColour(t) + '"></span>' + esc(t) + "</button>";
    });
    html += '<button class="aux" data-action="skip" id="btn-skip"><kbd>s</kbd>skip</button>';
    html += '<button class="aux" data-action="undo" id="btn-undo"><kbd>z</kbd>undo</button>';
    b.innerHTML = html;
    b.addEventListener("click", function (ev) {
      var el = ev.target.closest("button"); if (!el) return;
      if (el.dataset.label) act("label", el.dataset.label); else act(el.dataset.action);
    });
  }
  var fetched = {};  // "item:period" -> promise of a blob URL (the next plot is fetched ahead)
  function imageUrl(item, k) {
    if (CFG.mode === "static") return Promise.resolve(S.views[item.index][k]);
    var id = item.index + ":" + k;
    if (!fetched[id]) fetched[id] = fetch("api/view/" + item.index + "/" + k, {headers: {"X-Landuse-Key": key}}).then(function (r) {
      if (!r.ok) throw new Error("image " + r.status); return r.blob(); }).then(function (b) { return URL.createObjectURL(b); })
      .catch(function (e) { delete fetched[id]; throw e; });
    return fetched[id];
  }
  function prefetch(after) {
    var nxt = S.items.find(function (it) { return it.index > after && !(it.key in state.labels) && state.skipped.indexOf(it.key) < 0; });
    if (nxt && CFG.mode !== "static") nxt.periods.forEach(function (_, k) { imageUrl(nxt, k).catch(function () {}); });
  }
  function drawViews(item) {
    var v = $("views"); v.className = "views-" + item.periods.length; v.innerHTML = "";
    var pct = 100 * S.context / (1 + 2 * S.context), size = 100 / (1 + 2 * S.context);
    item.periods.forEach(function (period, k) {
      var d = document.createElement("div");
      d.className = "view" + (k === item.run_index ? " target" : "");
      d.innerHTML = '<div class="frame"><img alt="plot ' + esc(item.plot_id) + " " + esc(period) + '"><div class="outline" style="left:' +
        pct + "%;top:" + pct + "%;width:" + size + "%;height:" + size + '%"></div></div>' +
        '<div class="cap"><span>' + esc(period) + (k === item.run_index && item.periods.length > 1 ? " <b>(label this)</b>" : "") +
        "</span><span>" + (S.context > 0 ? "dashed: the 224 m plot" : "") + "</span></div>";
      v.appendChild(d);
      var img = d.querySelector("img");
      img.onload = function () { img.dataset.loaded = "1"; };
      imageUrl(item, k).then(function (u) { if (current === item) img.src = u; }).catch(function (e) { fail(e.message); });
    });
  }
  function drawGuess(item) {
    var g = $("guess");
    if (S.blind || !item.guesses) { g.style.display = "none"; return; }
    var guess = item.guesses[item.run_index];
    if (!guess) { $("guess-main").textContent = "no answer for this period"; $("probs").innerHTML = ""; return; }
    $("guess-main").innerHTML = '<span class="swatch" style="display:inline-block;width:12px;height:12px;background:' +
      tagColour(guess.predicted) + '"></span> ' + esc(guess.predicted) +
      (guess.confidence !== null ? " <small>" + Math.round(100 * guess.confidence) + " %</small>" : "");
    var html = "";
    Object.keys(guess.probs).forEach(function (t) { var p = guess.probs[t];
      html += '<div class="prob"><span class="t">' + esc(t) + '</span><span class="pb"><div style="width:' + (100 * p).toFixed(1) +
        "%;background:" + tagColour(t) + '"></div></span><span>' + Math.round(100 * p) + "</span></div>"; });
    if (guess.unknown_score !== null) html += '<div class="prob">unknown score ' + guess.unknown_score.toFixed(3) + "</div>";
    $("probs").innerHTML = html;
    $("reason").textContent = item.reason;
  }
  function drawMap(item) {
    var m = S.minimap, w = m.width, h = m.height, r = Math.max(0.9, Math.max(w, h) / 40);
    var marks = "";
    S.items.forEach(function (it) { if (it.run_index === 0 && it.index !== item.index && it.key in state.labels)
      marks += '<rect x="' + it.col + '" y="' + it.row + '" width="1" height="1" fill="none" stroke="#2f80ed" stroke-width="' + (r / 4) + '"/>'; });
    $("map").innerHTML = '<svg viewBox="' + (-r) + " " + (-r) + " " + (w + 2 * r) + " " + (h + 2 * r) + '" xmlns="http://www.w3.org/2000/svg">' +
      '<rect x="0" y="0" width="' + w + '" height="' + h + '" fill="#fff" stroke="#889" stroke-width="' + (r / 5) + '"/>' +
      '<image href="' + m.png + '" x="0" y="0" width="' + w + '" height="' + h + '" opacity="0.55" preserveAspectRatio="none"/>' + marks +
      '<circle id="here" cx="' + (item.col + 0.5) + '" cy="' + (item.row + 0.5) + '" r="' + r + '" fill="none" stroke="#e00" stroke-width="' + (r / 2.5) + '"/>' +
      '<rect x="' + item.col + '" y="' + item.row + '" width="1" height="1" fill="#e00"/></svg>';
    $("where").textContent = item.plot_id + " \u00b7 " + item.lat.toFixed(5) + ", " + item.lon.toFixed(5) +
      " \u00b7 plot " + (item.row + 1) + "/" + h + " down, " + (item.col + 1) + "/" + w + " across";
  }
  function show() {
    $("count").textContent = state.done + " / " + state.total + " done";
    $("bar").firstChild.style.width = (100 * state.done / Math.max(1, state.total)) + "%";
    $("btn-undo").disabled = !state.can_undo;
    if (state.next === null) {
      current = null; document.body.classList.add("finished");
      $("finished").innerHTML = "All " + state.total + " plots done: " + Object.keys(state.labels).length + " labels" +
        (CFG.mode === "static" ? ' (press "Export labels").' : " in <code>" + esc(S.dataset) + "</code>.") +
        "<p>Next: <code>landuse train " + esc(S.dataset) + " --init default --out MODEL</code></p>";
      return;
    }
    document.body.classList.remove("finished");
    var item = S.items[state.next];
    var same = current && current.index === item.index;
    current = item;
    document.body.dataset.current = item.key;
    if (!same) { drawViews(item); }
    drawGuess(item); drawMap(item); prefetch(item.index);
    $("periodinfo").textContent = item.period + (S.blind ? " \u00b7 blind" : "");
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !S) return;
    var k = ev.key;
    if (k >= "1" && k <= "9") { var t = S.tags.filter(function (x) { return x !== "unknown"; })[Number(k) - 1]; if (t) { act("label", t); ev.preventDefault(); } }
    else if (k === "u" || k === "0") { act("label", "unknown"); ev.preventDefault(); }
    else if (k === "s" || k === " ") { act("skip"); ev.preventDefault(); }
    else if (k === "z" || k === "Backspace") { act("undo"); ev.preventDefault(); }
    else if (k === "o") { document.body.classList.toggle("no-outline"); }
  });
  function start(data) {
    S = data; state = data.state;
    buildButtons(); show();
    document.body.dataset.ready = "1";
  }
  if (CFG.mode === "static") {
    S = CFG.data; state = local.state(local.load()); start(Object.assign(S, {state: state}));
    var ex = $("export"); ex.style.display = "inline-block";
    ex.addEventListener("click", function () {
      var d = local.load(), labels = [];
      S.items.forEach(function (it) { if (it.key in d.labels) labels.push({key: it.key, plot_id: it.plot_id, period: it.period,
        label: d.labels[it.key], labelled_at: d.labelled_at[it.key] || null}); });
      var doc = Object.assign({}, S.export, {labels: labels, skipped: d.skipped});
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 1)], {type: "application/json"}));
      a.download = "labels-" + S.session + ".json"; document.body.appendChild(a); a.click(); a.remove();
      toast("exported " + labels.length + " labels");
    });
  } else {
    var m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
    if (m) { key = decodeURIComponent(m[1]); sessionStorage.setItem("landuse-label-key", key); history.replaceState(null, "", location.pathname); }
    else key = sessionStorage.getItem("landuse-label-key");
    if (!key) { fail("no key: open the address `landuse label` printed (it ends in #key=...)"); return; }
    api("GET", "api/session").then(start).catch(function (e) { fail("cannot load the session: " + e.message); });
  }
})();
"""


def render_page(config: dict[str, Any]) -> str:
    """The page's HTML; ``config`` is ``{"mode": "serve"}`` or ``{"mode": "static", "data": ...}``."""
    blob = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{TITLE}</title><style>{CSS}</style></head><body>{BODY}"
        f"<script>window.LABEL_CONFIG = {blob};</script><script>{JS}</script></body></html>\n"
    )
