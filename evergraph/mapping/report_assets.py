"""The report page's own CSS and JavaScript, inlined so the file opens offline (no CDN).

The graph is drawn on a canvas by a small force layout (repulsion between all nodes, springs
along edges, a pull to the centre that keeps unlinked concepts in view; a few hundred
iterations at load, then static), which is enough for the few hundred concepts the report
shows. After drawing, the script writes what it drew into `#graph-status` (`data-nodes`,
`data-edges`, `data-painted` pixels), so a headless browser test can check that the graph
rendered; `#period=N` (and `&upto`) in the URL preselects the period filter.
"""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; font-size: 1.25em; }
.muted { color: #666; }
#graph { border: 1px solid #ccc; width: 100%; height: 640px; display: block; cursor: crosshair; }
#controls { margin: .6em 0; display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
#tip { position: fixed; pointer-events: none; background: #fff; border: 1px solid #999;
       padding: 2px 6px; font-size: 12px; display: none; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { border: 1px solid #eee; padding: 4px; }
.chart svg { display: block; }
.legend span { display: inline-block; margin-right: 10px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
            border-radius: 5px; }
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var canvas = document.getElementById("graph");
  var ctx = canvas.getContext("2d", { willReadFrequently: true });  // read back to count pixels
  var status = document.getElementById("graph-status");
  var tip = document.getElementById("tip");
  var palette = data.palette;
  var nodes = data.nodes, edges = data.edges;
  var maxDegree = Math.max.apply(null, nodes.map(function (n) { return n.d; }).concat([1]));
  var width = 0, height = 0;

  function colour(n) {
    return n.c >= 0 && n.c < palette.length ? palette[n.c] : "#9e9e9e";
  }

  function layout() {
    var k = Math.sqrt((900 * 600) / Math.max(nodes.length, 1));
    nodes.forEach(function (n, i) {
      var a = i * 2.399963, r = 10 * Math.sqrt(i + 1);
      n.x = 450 + r * Math.cos(a); n.y = 300 + r * Math.sin(a);
    });
    for (var it = 0; it < 300; it++) {
      var t = 8 * (1 - it / 300) + 0.5;
      nodes.forEach(function (n) { n.dx = 0; n.dy = 0; });
      for (var i = 0; i < nodes.length; i++) {
        for (var j = i + 1; j < nodes.length; j++) {
          var a = nodes[i], b = nodes[j];
          var dx = a.x - b.x, dy = a.y - b.y, d2 = dx * dx + dy * dy + 0.01;
          var f = (k * k) / d2;
          a.dx += dx * f; a.dy += dy * f; b.dx -= dx * f; b.dy -= dy * f;
        }
      }
      edges.forEach(function (e) {
        var a = nodes[e.s], b = nodes[e.t];
        var dx = a.x - b.x, dy = a.y - b.y, d = Math.sqrt(dx * dx + dy * dy) + 0.01;
        var f = d / k;
        a.dx -= dx * f; a.dy -= dy * f; b.dx += dx * f; b.dy += dy * f;
      });
      nodes.forEach(function (n) {
        var cx = 450 - n.x, cy = 300 - n.y, pull = (0.1 * Math.sqrt(cx * cx + cy * cy)) / k;
        n.dx += cx * pull; n.dy += cy * pull;
        var d = Math.sqrt(n.dx * n.dx + n.dy * n.dy) + 0.01;
        n.x += (n.dx / d) * Math.min(d, t); n.y += (n.dy / d) * Math.min(d, t);
      });
    }
  }

  function visible(periods) {
    var chosen = document.getElementById("period").value;
    if (chosen === "all") { return true; }
    var p = Number(chosen), upTo = document.getElementById("cumulative").checked;
    return periods.some(function (q) { return upTo ? q <= p : q === p; });
  }

  function project() {
    var xs = nodes.map(function (n) { return n.x; }), ys = nodes.map(function (n) { return n.y; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var s = Math.min((width - 40) / Math.max(x1 - x0, 1), (height - 40) / Math.max(y1 - y0, 1));
    nodes.forEach(function (n) {
      n.px = 20 + (n.x - x0) * s + (width - 40 - (x1 - x0) * s) / 2;
      n.py = 20 + (n.y - y0) * s + (height - 40 - (y1 - y0) * s) / 2;
    });
  }

  function draw() {
    var rect = canvas.getBoundingClientRect();
    width = Math.max(rect.width, 300); height = Math.max(rect.height, 300);
    canvas.width = width; canvas.height = height;
    project();
    ctx.clearRect(0, 0, width, height);
    var shown = nodes.map(function (n) { return visible(n.p); });
    var drawnEdges = 0, drawnNodes = 0;
    ctx.strokeStyle = "rgba(120,120,120,0.35)";
    edges.forEach(function (e) {
      if (!shown[e.s] || !shown[e.t] || !visible(e.p)) { return; }
      ctx.lineWidth = Math.min(1 + Math.log(e.w), 5);
      ctx.beginPath(); ctx.moveTo(nodes[e.s].px, nodes[e.s].py);
      ctx.lineTo(nodes[e.t].px, nodes[e.t].py); ctx.stroke();
      drawnEdges++;
    });
    nodes.forEach(function (n, i) {
      if (!shown[i]) { return; }
      n.r = 3 + 9 * Math.sqrt(n.d / maxDegree);
      ctx.fillStyle = colour(n);
      ctx.beginPath(); ctx.arc(n.px, n.py, n.r, 0, 2 * Math.PI); ctx.fill();
      drawnNodes++;
    });
    ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(255,255,255,0.85)"; ctx.fillStyle = "#222";
    nodes.forEach(function (n, i) {
      if (!shown[i] || !n.label) { return; }
      ctx.strokeText(n.name, n.px + n.r + 2, n.py + 4);
      ctx.fillText(n.name, n.px + n.r + 2, n.py + 4);
    });
    var pixels = ctx.getImageData(0, 0, width, height).data, painted = 0;
    for (var q = 3; q < pixels.length; q += 4) { if (pixels[q] > 0) { painted++; } }
    status.dataset.nodes = drawnNodes; status.dataset.edges = drawnEdges;
    status.dataset.painted = painted;
    status.textContent = drawnNodes + " concepts, " + drawnEdges + " links shown";
    canvas.shown = shown;
  }

  canvas.addEventListener("mousemove", function (ev) {
    var rect = canvas.getBoundingClientRect();
    var x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    var hit = null;
    nodes.forEach(function (n, i) {
      if (canvas.shown && canvas.shown[i] && Math.hypot(n.px - x, n.py - y) <= n.r + 2) { hit = n; }
    });
    if (!hit) { tip.style.display = "none"; return; }
    tip.textContent = hit.name + " (" + hit.type + ") — " + hit.d + " links, community " + hit.c;
    tip.style.left = ev.clientX + 12 + "px"; tip.style.top = ev.clientY + 12 + "px";
    tip.style.display = "block";
  });
  document.getElementById("period").addEventListener("change", draw);
  document.getElementById("cumulative").addEventListener("change", draw);
  window.addEventListener("resize", draw);
  var linked = /period=(\d+)/.exec(location.hash);  // e.g. report.html#period=3&upto
  if (linked) {
    document.getElementById("period").value = linked[1];
    document.getElementById("cumulative").checked = /upto/.test(location.hash);
  }
  layout();
  draw();
})();
"""
