/* The usage page's charts, drawn with uPlot (vendor/uPlot.iife.min.js) from the page's JSON
   (#usage-data, apps/dashboard/views/usage.py usage_data). The same numbers are in the table
   beside each chart, so the page reads without scripts or sight. */
(function () {
  "use strict";
  var source = document.getElementById("usage-data");
  if (!source || typeof window.uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  var palette = ["#2b59c3", "#e8772e", "#1a7f37", "#b42318", "#7c3aed", "#0e7490", "#a16207", "#be185d"];
  var charts = [];

  function width(el) { return Math.max(280, el.clientWidth || 600); }
  function count(u, v) { return v == null ? "" : Math.round(v).toLocaleString(); }

  var DAY = 86400;
  function isoDay(ts) { return new Date(ts * 1000).toISOString().slice(0, 10); }

  // Tokens per day, one bar a day stacked by model. uPlot draws series in order, so each model's
  // bar is drawn to the top of its stack, tallest first, and the ones below paint over it.
  function tokensChart(el) {
    var xs = data.days.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
    var raw = data.models.map(function (m) { return m.tokens; });
    var stacks = [];
    var running = xs.map(function () { return 0; });
    raw.forEach(function (tokens) {
      running = running.map(function (v, j) { return v + tokens[j]; });
      stacks.push(running);
    });
    var series = [{ label: "Day", value: function (u, ts) { return ts == null ? "" : isoDay(ts); } }];
    var columns = [xs];
    var bars = window.uPlot.paths.bars({ size: [0.7, 48], align: 0 });
    for (var i = stacks.length - 1; i >= 0; i--) {
      (function (i) {
        var color = palette[i % palette.length];
        series.push({
          label: data.models[i].model, stroke: color, fill: color, width: 0, paths: bars, points: { show: false },
          value: function (u, v, si, idx) { return idx == null ? "" : raw[i][idx].toLocaleString(); },
        });
        columns.push(stacks[i]);
      })(i);
    }
    return new window.uPlot({
      width: width(el), height: 260, series: series,
      scales: {
        x: { time: true, range: function () { return [xs[0] - DAY / 2, xs[xs.length - 1] + DAY / 2]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
      },
      axes: [
        {
          // A label on whole days only, one per 56 px of plot at most.
          splits: function (u) {
            var room = Math.max(2, Math.floor(u.bbox.width / (window.devicePixelRatio || 1) / 56));
            var step = Math.ceil(xs.length / room);
            return xs.filter(function (_, i) { return i % step === 0; });
          },
          values: function (u, splits) { return splits.map(function (ts) { return isoDay(ts).slice(5); }); },
        },
        { label: "Tokens", size: 60, values: function (u, vals) { return vals.map(function (v) { return v.toLocaleString(); }); } },
      ],
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
    }, columns, el);
  }

  function keysChart(el) {
    var labels = data.keys.map(function (k) { return k.key; });
    var xs = labels.map(function (_, i) { return i; });
    var bars = window.uPlot.paths.bars;
    var size = [0.35, 48];
    return new window.uPlot({
      width: width(el), height: 260,
      series: [
        { label: "Key", value: function (u, i) { return i == null ? "" : labels[i]; } },
        { label: "Requests", stroke: palette[0], fill: palette[0], paths: bars({ size: size, align: -1 }), points: { show: false }, value: count },
        { label: "Tool calls", stroke: palette[1], fill: palette[1], paths: bars({ size: size, align: 1 }), points: { show: false }, value: count },
      ],
      scales: {
        x: { time: false, range: function () { return [-0.5, labels.length - 0.5]; } },
        y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
      },
      axes: [
        { splits: function () { return xs; }, values: function (u, splits) { return splits.map(function (i) { return labels[i] || ""; }); }, grid: { show: false } },
        { label: "Count", size: 60 },
      ],
    }, [xs, data.keys.map(function (k) { return k.requests; }), data.keys.map(function (k) { return k.tool_calls; })], el);
  }

  var makers = { tokens: tokensChart, keys: keysChart };
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var make = makers[el.getAttribute("data-chart")];
    if (make) charts.push({ el: el, chart: make(el) });
  });

  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) { c.chart.setSize({ width: width(c.el), height: 260 }); });
    }, 100);
  });
})();
