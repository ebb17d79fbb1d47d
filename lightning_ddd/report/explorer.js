// The sample explorer of a lightning-ddd report: filters and sorts every sample of explorer/samples.js,
// shows one page at a time, loads thumbnails (sprite sheets) and trajectories (explorer/r-<n>.js) only for the
// samples on that page. Plain DOM, no network, works from file://.
(function () {
  "use strict";
  var D = window.DDD && window.DDD.data;
  var root = document.getElementById("explorer-app");
  if (!root) return;
  if (!D) {
    root.textContent = "The explorer's data (explorer/samples.js) did not load.";
    return;
  }
  var C = D.columns, M = D.meta, N = C.id.length;
  var PAGE = 50;
  var rasterData = {}, rasterWaiting = {};
  var state = {group: "all", cls: "all", sort: "id", dir: "asc", page: 0, only: null};

  window.DDD.raster = function (chunk, b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    rasterData[chunk] = bytes;
    (rasterWaiting[chunk] || []).forEach(function (f) { f(); });
    delete rasterWaiting[chunk];
  };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function className(t) {
    if (t < 0) return "?";
    return M.classes && t < M.classes.length ? M.classes[t] : String(t);
  }
  function forgetting(i) {  // Toneva et al.: a never-learned sample is forgotten infinitely often
    return M.category[C.category[i]] === "never_learned" ? Infinity : C.forgetting[i];
  }
  var KEYS = {
    id: function (i) { return C.id[i]; },
    k: function (i) { return C.k[i] < 0 ? null : C.k[i]; },
    forgetting: forgetting,
    first_learned: function (i) { return C.first_learned[i]; },
    confidence: function (i) { return C.confidence[i]; },
    aum: function (i) { return C.aum[i]; }
  };

  // ---------------------------------------------------------------- controls
  var bar = el("div", {"class": "explorer-controls"});
  function select(id, label, options) {
    var s = el("select", {id: id});
    options.forEach(function (o) { s.appendChild(el("option", {value: o[0]}, o[1])); });
    var l = el("label", {}, label + " ");
    l.appendChild(s);
    bar.appendChild(l);
    return s;
  }
  var dyn = M.dynamics !== false;  // models evaluated once have no training dynamics
  var unit = dyn ? "runs" : "models";
  var groups = [["all", "all samples"]];
  ["trivial", "in_between", "impossible"].forEach(function (g) {
    groups.push(["difficulty:" + g, g.replace("_", "-") + " (across " + unit + ")"]);
  });
  if (dyn) ["always_learned", "never_learned", "flip_flopping"].forEach(function (g) {
    groups.push(["category:" + g, g.replace("_", " ") + " (base run)"]);
  });
  var counts = {};
  for (var i = 0; i < N; i++) counts[C.target[i]] = (counts[C.target[i]] || 0) + 1;
  var classes = Object.keys(counts).map(Number).sort(function (a, b) { return a - b; });
  var gSel = select("explorer-group", "Show", groups);
  var cSel = select("explorer-class", "class", [["all", "all classes"]].concat(classes.map(function (t) {
    return [String(t), className(t) + " (" + counts[t] + ")"];
  })));
  var sSel = select("explorer-sort", "sort by", [["id", "id"], ["k", "k (" + unit + " correct)"]].concat(dyn ? [
    ["forgetting", "forgetting events"], ["first_learned", "first-learned epoch"], ["confidence", "confidence"],
    ["aum", "AUM"]] : []));
  var dSel = select("explorer-dir", "", [["asc", "ascending"], ["desc", "descending"]]);
  var search = el("input", {id: "explorer-search", type: "search", placeholder: "sample id", size: "10"});
  var sl = el("label", {}, "go to ");
  sl.appendChild(search);
  bar.appendChild(sl);
  var prev = el("button", {id: "explorer-prev", type: "button"}, "\u2190 previous");
  var next = el("button", {id: "explorer-next", type: "button"}, "next \u2192");
  var info = el("span", {id: "explorer-info"});
  bar.appendChild(prev); bar.appendChild(next); bar.appendChild(info);
  root.appendChild(bar);
  var list = el("table", {id: "explorer-list", "class": "explorer-list"});
  root.appendChild(list);

  // ---------------------------------------------------------------- filtering and sorting
  function selected() {
    var out = [], g = state.group.split(":"), cls = state.cls === "all" ? null : Number(state.cls);
    for (var i = 0; i < N; i++) {
      if (state.only !== null && C.id[i] !== state.only) continue;
      if (g[0] === "difficulty" && M.difficulty[C.difficulty[i]] !== g[1]) continue;
      if (g[0] === "category" && M.category[C.category[i]] !== g[1]) continue;
      if (cls !== null && C.target[i] !== cls) continue;
      out.push(i);
    }
    var key = KEYS[state.sort], sign = state.dir === "desc" ? -1 : 1;
    // missing values (null) last whatever the direction; ties by id, ascending
    out.sort(function (a, b) {
      var x = key(a), y = key(b);
      var xn = x === null || x === undefined, yn = y === null || y === undefined;
      if (xn !== yn) return xn ? 1 : -1;
      if (!xn && x !== y) return x < y ? -sign : sign;
      return C.id[a] - C.id[b];
    });
    return out;
  }

  // ---------------------------------------------------------------- drawing
  function thumb(i) {
    var sp = M.sprites, box = el("div", {"class": "thumb"});
    if (!sp || !C.thumb[i]) { box.textContent = "\u2013"; return box; }
    var per = sp.side * sp.side, sheet = Math.floor(i / per), pos = i % per, scale = 64 / Math.max(sp.h, sp.w);
    var w = Math.round(sp.w * scale), h = Math.round(sp.h * scale);
    var name = "explorer/s-" + String(sheet).padStart(4, "0") + "." + sp.ext;
    box.style.width = w + "px"; box.style.height = h + "px";
    box.style.backgroundImage = "url('" + name + "')";
    box.style.backgroundSize = (sp.side * w) + "px auto";
    box.style.backgroundPosition = (-(pos % sp.side) * w) + "px " + (-Math.floor(pos / sp.side) * h) + "px";
    box.setAttribute("data-sheet", name);
    return box;
  }
  function drawRaster(canvas, i) {
    var R = M.raster, chunk = Math.floor(i / R.chunk), bytes = rasterData[chunk];
    var off = (i % R.chunk) * R.bytes, ctx = canvas.getContext("2d"), cw = canvas.width / R.rows,
      ch = canvas.height / R.runs;
    var cells = R.runs * R.rows;
    function bitAt(b) { return (bytes[off + (b >> 3)] >> (7 - (b & 7))) & 1; }
    for (var r = 0; r < R.runs; r++) {
      for (var e = 0; e < R.rows; e++) {
        var b = r * R.rows + e, bit = bitAt(b), seen = R.planes === 2 ? bitAt(cells + b) : 1;
        ctx.fillStyle = !seen ? "#bdbdbd" : bit ? "#2b8cbe" : "#d7301f";
        ctx.fillRect(e * cw, r * ch, Math.ceil(cw), Math.ceil(ch));
      }
    }
    canvas.setAttribute("data-drawn", "1");
  }
  function raster(i) {
    var R = M.raster;
    if (!R) return el("span", {}, "\u2013");
    var canvas = el("canvas", {width: String(Math.min(360, Math.max(90, R.rows * 4))),
      height: String(Math.min(60, Math.max(6, R.runs * 6))), "class": "raster",
      title: "rows: runs (" + M.runs.join(", ") + "); columns: epochs " + R.epochs[0] + " to " +
        R.epochs[R.epochs.length - 1] + "; blue correct, red wrong, grey not evaluated"});
    var chunk = Math.floor(i / R.chunk);
    if (rasterData[chunk]) { drawRaster(canvas, i); return canvas; }
    if (!rasterWaiting[chunk]) {
      rasterWaiting[chunk] = [];
      var s = el("script", {src: "explorer/r-" + String(chunk).padStart(4, "0") + ".js"});
      document.body.appendChild(s);
    }
    rasterWaiting[chunk].push(function () { drawRaster(canvas, i); });
    return canvas;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return "\u2013";
    if (v === Infinity) return "\u221e";
    return typeof v === "number" && digits !== undefined ? v.toFixed(digits) : String(v);
  }
  function render() {
    var rows = selected(), pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var shown = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
    list.innerHTML = "";
    var head = el("tr");
    ["image", "id", "label", "prediction", "k"].concat(dyn ? ["forgetting", "first learned", "confidence", "AUM",
      "decisions (runs \u00d7 epochs)"] : ["decisions (models)"]).forEach(function (h) {
      head.appendChild(el("th", {}, h));
    });
    list.appendChild(head);
    shown.forEach(function (i) {
      var tr = el("tr", {"data-id": String(C.id[i]), id: "sample-" + C.id[i]});
      var td = el("td"); td.appendChild(thumb(i)); tr.appendChild(td);
      var link = el("a", {href: "#sample=" + C.id[i]}, String(C.id[i]));
      td = el("td"); td.appendChild(link); tr.appendChild(td);
      tr.appendChild(el("td", {}, className(C.target[i]) + (C.label_error[i] ? " \u26a0" : "")));
      tr.appendChild(el("td", {}, C.pred[i] < 0 ? "\u2013" : className(C.pred[i])));
      tr.appendChild(el("td", {}, C.k[i] < 0 ? "\u2013" : C.k[i] + (M.of ? " of " + M.of : "")));
      if (dyn) {
        tr.appendChild(el("td", {}, fmt(forgetting(i))));
        tr.appendChild(el("td", {}, fmt(C.first_learned[i])));
        tr.appendChild(el("td", {}, fmt(C.confidence[i], 3)));
        tr.appendChild(el("td", {}, fmt(C.aum[i], 3)));
      }
      td = el("td"); td.appendChild(raster(i)); tr.appendChild(td);
      list.appendChild(tr);
    });
    info.textContent = rows.length ? (state.page * PAGE + 1) + "\u2013" + (state.page * PAGE + shown.length) +
      " of " + rows.length + " samples" : "no sample matches";
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
  }

  // ---------------------------------------------------------------- events
  function change() {
    state.group = gSel.value; state.cls = cSel.value; state.sort = sSel.value; state.dir = dSel.value;
    state.page = 0; render();
  }
  [gSel, cSel, sSel, dSel].forEach(function (s) { s.addEventListener("change", change); });
  prev.addEventListener("click", function () { state.page -= 1; render(); });
  next.addEventListener("click", function () { state.page += 1; render(); });
  search.addEventListener("change", function () {
    var v = search.value.trim();
    state.only = v === "" ? null : Number(v);
    state.page = 0; render();
  });
  function fromHash() {
    var m = /sample=(\d+)/.exec(location.hash);
    if (!m) return;
    state.only = Number(m[1]); search.value = m[1]; state.page = 0; render();
    var row = document.getElementById("explorer-app");
    if (row && row.scrollIntoView) row.scrollIntoView();
  }
  window.addEventListener("hashchange", fromHash);
  render();
  fromHash();
})();
