// loadgen's report renderer: draws every chart of the page as inline SVG from one data object
// (ChartData, src/report/charts.rs). No library and no network: the page works offline.
// render(data) clears and redraws the whole page, so a live page calls it again with each
// new snapshot (window.loadgen.render).
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var W = 600, H = 290, M = { l: 62, r: 14, t: 40, b: 40 };
  // Colour-blind-safe palette (Okabe-Ito).
  var C = {
    blue: '#0072b2', orange: '#e69f00', green: '#009e73', red: '#d55e00',
    purple: '#cc79a7', sky: '#56b4e9', grey: '#777777', black: '#222222'
  };

  function el(ns, tag, attrs, parent, text) {
    var e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function s(tag, attrs, parent, text) { return el(NS, tag, attrs, parent, text); }
  function h(tag, attrs, parent, text) { return el(null, tag, attrs, parent, text); }

  function trim(x) {
    var a = Math.abs(x);
    var t = a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
    return t.indexOf('.') >= 0 ? t.replace(/\.?0+$/, '') : t;
  }
  function fmtUs(v) {
    if (v == null) return '-';
    if (v >= 1e6) return trim(v / 1e6) + 's';
    if (v >= 1e3) return trim(v / 1e3) + 'ms';
    return trim(v) + '\u00b5s';
  }
  function fmtNum(v) {
    if (v == null) return '-';
    var a = Math.abs(v);
    if (a >= 1e9) return trim(v / 1e9) + 'G';
    if (a >= 1e6) return trim(v / 1e6) + 'M';
    if (a >= 1e3) return trim(v / 1e3) + 'k';
    return trim(v);
  }
  // x on HdrHistogram's axis, log10(1/(1-p)), as a percentile label.
  function fmtPct(x) {
    var p = 100 * (1 - Math.pow(10, -x));
    if (x >= 2) return (100 - Math.pow(10, 2 - x)).toFixed(Math.round(x) - 2 + (Math.round(x) === x ? 0 : 1)) + '%';
    return trim(p) + '%';
  }

  function linTicks(lo, hi, n) {
    var span = hi - lo;
    if (!(span > 0)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var mult = [1, 2, 5, 10];
    for (var i = 0; i < mult.length; i++) {
      if (span / (step * mult[i]) <= n) { step *= mult[i]; break; }
    }
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function logTicks(lo, hi) {
    var out = [], decades = Math.log10(hi / lo);
    var mults = decades <= 2 ? [1, 2, 5] : [1];
    for (var d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
      for (var i = 0; i < mults.length; i++) {
        var v = mults[i] * Math.pow(10, d);
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
      }
    }
    return out;
  }

  // One chart. spec: {id, title, xlabel, ylabel, xfmt, yfmt, ylog, xticks, series: [{name,
  // color, pts: [[x, y] | null], dash, dots, labels}], hlines: [{y, label}]}.
  // Returns the figure; its svg carries data-points (the points drawn).
  function chart(parent, spec) {
    var fig = h('figure', { 'class': 'chart-box' }, parent);
    var svg = s('svg', {
      'class': 'chart', viewBox: '0 0 ' + W + ' ' + H, 'data-chart': spec.id,
      role: 'img', 'aria-label': spec.title
    }, fig);
    s('text', { x: M.l, y: 16, 'class': 'title' }, svg, spec.title);
    var all = [];
    spec.series.forEach(function (se) {
      se.pts.forEach(function (p) { if (p && p[1] != null && isFinite(p[1])) all.push(p); });
    });
    (spec.hlines || []).forEach(function (l) { all.push([null, l.y]); });
    var xs = all.filter(function (p) { return p[0] != null; }).map(function (p) { return p[0]; });
    var ys = all.map(function (p) { return p[1]; });
    var points = all.length - (spec.hlines || []).length;
    svg.setAttribute('data-points', String(points));
    if (points === 0) {
      s('text', { x: W / 2, y: H / 2, 'class': 'empty', 'text-anchor': 'middle' }, svg, 'no data');
      return fig;
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (spec.xmin != null) x0 = Math.min(x0, spec.xmin);
    if (x1 === x0) { var pad = Math.max(1, Math.abs(x0) * 0.25); x0 -= pad; x1 += pad; }
    var y0, y1, yt;
    if (spec.ylog) {
      var pos = ys.filter(function (v) { return v > 0; });
      var lo = pos.length ? Math.min.apply(null, pos) : 1, hi = pos.length ? Math.max.apply(null, pos) : 10;
      y0 = Math.pow(10, Math.floor(Math.log10(lo)));
      y1 = Math.pow(10, Math.ceil(Math.log10(hi)));
      if (y1 <= y0) y1 = y0 * 10;
      yt = logTicks(y0, y1);
    } else {
      y0 = 0;
      y1 = Math.max.apply(null, ys.concat([0]));
      if (!(y1 > 0)) y1 = 1;
      yt = linTicks(0, y1 * 1.05, 5);
      y1 = Math.max(y1 * 1.05, yt[yt.length - 1]);
    }
    var pw = W - M.l - M.r, ph = H - M.t - M.b;
    function X(v) { return M.l + (v - x0) / (x1 - x0) * pw; }
    function Y(v) {
      var f = spec.ylog ? (Math.log10(Math.max(v, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))
        : (v - y0) / (y1 - y0);
      return M.t + ph - f * ph;
    }
    var yfmt = spec.yfmt || fmtNum, xfmt = spec.xfmt || fmtNum;
    var g = s('g', { 'class': 'grid' }, svg);
    yt.forEach(function (v) {
      var y = Y(v).toFixed(1);
      s('line', { x1: M.l, x2: W - M.r, y1: y, y2: y }, g);
      s('text', { x: M.l - 6, y: +y + 4, 'text-anchor': 'end', 'class': 'tick' }, svg, yfmt(v));
    });
    var xt = spec.xticks ? spec.xticks(x0, x1) : linTicks(x0, x1, 8);
    xt.forEach(function (v) {
      var x = X(v).toFixed(1);
      s('line', { x1: x, x2: x, y1: M.t, y2: M.t + ph }, g);
      s('text', { x: x, y: M.t + ph + 16, 'text-anchor': 'middle', 'class': 'tick' }, svg, xfmt(v));
    });
    s('rect', { x: M.l, y: M.t, width: pw, height: ph, 'class': 'frame' }, svg);
    if (spec.xlabel) s('text', { x: M.l + pw / 2, y: H - 4, 'text-anchor': 'middle', 'class': 'label' }, svg, spec.xlabel);
    if (spec.ylabel) {
      s('text', { x: 12, y: M.t + ph / 2, 'text-anchor': 'middle', 'class': 'label',
        transform: 'rotate(-90 12 ' + (M.t + ph / 2) + ')' }, svg, spec.ylabel);
    }
    (spec.hlines || []).forEach(function (l) {
      var y = Y(l.y).toFixed(1);
      s('line', { x1: M.l, x2: W - M.r, y1: y, y2: y, 'class': 'limit' }, svg);
      s('text', { x: W - M.r - 4, y: +y - 4, 'text-anchor': 'end', 'class': 'limit-label' }, svg, l.label);
    });
    var legend = s('g', { 'class': 'legend' }, svg), lx = M.l;
    spec.series.forEach(function (se) {
      var d = '', pen = false, n = 0;
      se.pts.forEach(function (p) {
        if (!p || p[1] == null) { pen = false; return; }
        d += (pen ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1);
        pen = true; n++;
      });
      if (se.line !== false && d) {
        s('path', { d: d, stroke: se.color, 'class': 'line', 'stroke-dasharray': se.dash || 'none' }, svg);
      }
      if (se.dots || n <= 120) {
        se.pts.forEach(function (p, i) {
          if (!p || p[1] == null) return;
          var c = s('circle', { cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: se.dots ? 4 : 1.8,
            fill: (se.colors && se.colors[i]) || se.color, 'class': 'dot' }, svg);
          s('title', {}, c, se.name + ': ' + xfmt(p[0]) + ', ' + yfmt(p[1]) + (se.labels ? ' ' + se.labels[i] : ''));
          if (se.tags) s('text', { x: X(p[0]).toFixed(1), y: (Y(p[1]) - 7).toFixed(1), 'text-anchor': 'middle', 'class': 'tag' }, svg, se.tags[i]);
        });
      }
      s('rect', { x: lx, y: 24, width: 12, height: 4, fill: se.color }, legend);
      var t = s('text', { x: lx + 16, y: 30, 'class': 'legend-text' }, legend, se.name);
      lx += 26 + 7 * se.name.length;
    });
    return fig;
  }

  function pairs(xs, ys) {
    return ys.map(function (y, i) { return y == null ? null : [xs[i], y]; });
  }
  // Ticks at whole numbers only (seconds, step numbers).
  function intTicks(x0, x1) {
    var t = linTicks(x0, x1, 8).filter(function (v) { return v === Math.round(v); });
    return t.length ? t : [Math.round(x0)];
  }
  function spectrumTicks(x0, x1) {
    var out = [];
    for (var k = Math.ceil(x0); k <= Math.floor(x1); k++) out.push(k);
    return out;
  }

  function table(parent, head, rows, cls) {
    var t = h('table', { 'class': cls || '' }, parent);
    var tr = h('tr', {}, h('thead', {}, t));
    head.forEach(function (c) { h('th', {}, tr, c); });
    var tb = h('tbody', {}, t);
    rows.forEach(function (r) {
      var row = h('tr', {}, tb);
      r.forEach(function (c) {
        if (c && typeof c === 'object') h('td', { 'class': c.cls }, row, c.text);
        else h('td', {}, row, c);
      });
    });
    return t;
  }
  function verdict(pass) { return { text: pass ? 'pass' : 'fail', cls: pass ? 'pass' : 'fail' }; }

  function runCharts(box, d) {
    var se = d.series, x = se.x, n = 0;
    var rate = [{ name: 'achieved', color: C.blue, pts: pairs(x, se.achieved) }];
    if (se.planned) rate.push({ name: 'planned', color: C.grey, dash: '6 4', pts: pairs(x, se.planned) });
    chart(box, { id: 'rate', title: 'Requests per second: planned and achieved', xlabel: 'second of the run', xticks: intTicks,
      ylabel: 'req/s', series: rate }); n++;
    var limits = d.thresholds.filter(function (t) { return t.limit_us != null; })
      .map(function (t) { return { y: t.limit_us, label: t.expr }; });
    chart(box, { id: 'latency', title: 'Corrected latency per second', xlabel: 'second of the run', xticks: intTicks,
      ylabel: 'latency', ylog: true, yfmt: fmtUs, hlines: limits, series: [
        { name: 'p50', color: C.green, pts: pairs(x, se.p50) },
        { name: 'p90', color: C.sky, pts: pairs(x, se.p90) },
        { name: 'p99', color: C.orange, pts: pairs(x, se.p99) },
        { name: 'max', color: C.red, pts: pairs(x, se.max) }] }); n++;
    chart(box, { id: 'errors', title: 'Errors and dropped requests per second', xlabel: 'second of the run', xticks: intTicks,
      ylabel: 'count', series: [
        { name: 'errors', color: C.red, pts: pairs(x, se.errors) },
        { name: 'dropped', color: C.orange, dash: '4 3', pts: pairs(x, se.dropped) }] }); n++;
    var sp = d.spectrum;
    chart(box, { id: 'spectrum', title: 'Latency by percentile: corrected and uncorrected',
      xlabel: 'percentile (HdrHistogram axis: 1/(1\u2212p), log)', ylabel: 'latency', ylog: true,
      yfmt: fmtUs, xfmt: fmtPct, xticks: spectrumTicks, xmin: 0, hlines: limits, series: [
        { name: 'corrected', color: C.blue, pts: sp.corrected },
        { name: 'uncorrected', color: C.purple, dash: '5 3', pts: sp.uncorrected }] }); n++;
    chart(box, { id: 'send-lag', title: 'Send lag by percentile (the generator\u2019s own lateness)',
      xlabel: 'percentile (1/(1\u2212p), log)', ylabel: 'send lag', ylog: true, yfmt: fmtUs,
      xfmt: fmtPct, xticks: spectrumTicks, xmin: 0,
      series: [{ name: 'send lag', color: C.black, pts: sp.send_lag }] }); n++;
    return n;
  }

  function findCharts(box, d) {
    var vc = { pass: C.green, fail: C.red, invalid: C.grey };
    var st = d.steps;
    var limits = d.thresholds.filter(function (t) { return t.limit_us != null; })
      .map(function (t) { return { y: t.limit_us, label: t.expr }; });
    var pt = function (x) { return x.p99 == null ? null : [x.rate, x.p99]; };
    var order = { name: 'order', color: '#bbbbbb', dash: '2 3', pts: st.map(pt), tags: st.map(function (x) { return String(x.n); }) };
    var byVerdict = ['pass', 'fail', 'invalid'].map(function (v) {
      var these = st.filter(function (x) { return x.verdict === v; });
      return { name: v, color: vc[v], dots: true, line: false, pts: these.map(pt),
        labels: these.map(function (x) { return '(step ' + x.n + ', ' + x.kind + ')'; }) };
    }).filter(function (se) { return se.pts.length; });
    chart(box, { id: 'steps', title: 'Steps: rate tried and corrected p99', xlabel: 'rate tried (req/s)',
      ylabel: 'p99', ylog: true, yfmt: fmtUs, hlines: limits, series: [order].concat(byVerdict) });
    chart(box, { id: 'step-rates', title: 'Rate tried and achieved, step by step', xlabel: 'step', xticks: intTicks,
      ylabel: 'req/s', series: [
        { name: 'tried', color: C.grey, dash: '6 4', pts: st.map(function (x) { return [x.n, x.rate]; }) },
        { name: 'achieved', color: C.blue, pts: st.map(function (x) { return [x.n, x.achieved]; }),
          colors: st.map(function (x) { return vc[x.verdict] || C.grey; }) }] });
    return 2;
  }

  function render(d) {
    var app = document.getElementById('app');
    app.textContent = '';
    document.title = d.title;
    var top = h('header', {}, app);
    h('h1', {}, top, d.title);
    if (d.thresholds.length) {
      h('span', { 'class': 'badge ' + (d.passed ? 'pass' : 'fail'), id: 'verdict' }, top,
        d.passed ? 'all thresholds passed' : 'thresholds failed');
    }
    if (d.header.length) h('pre', { 'class': 'header' }, top, d.header.join('\n'));
    if (d.notes.length) {
      var ul = h('ul', { 'class': 'notes' }, top);
      d.notes.forEach(function (n) { h('li', {}, ul, n); });
    }
    var box = h('section', { id: 'charts' }, app);
    var n = d.kind === 'find' ? findCharts(box, d) : runCharts(box, d);
    var info = h('section', { id: 'tables' }, app);
    if (d.thresholds.length) {
      h('h2', {}, info, 'Thresholds');
      table(info, ['threshold', 'measured', 'verdict'], d.thresholds.map(function (t) {
        return [t.expr, t.detail, verdict(t.pass)];
      }), 'thresholds');
    }
    if (d.steps.length) {
      h('h2', {}, info, 'Steps');
      table(info, ['#', 'kind', 'rate tried', 'achieved', 'p99', 'verdict', 'reason'], d.steps.map(function (x) {
        return [String(x.n), x.kind, fmtNum(x.rate) + ' req/s', fmtNum(x.achieved) + ' req/s', fmtUs(x.p99),
          { text: x.verdict, cls: x.verdict }, x.reason];
      }), 'steps');
    }
    h('h2', {}, info, 'Configuration and totals');
    table(info, ['', ''], d.facts, 'facts');
    if (d.text) {
      var det = h('details', {}, info);
      h('summary', {}, det, 'Text report');
      h('pre', {}, det, d.text);
    }
    document.body.setAttribute('data-charts', String(n));
    return n;
  }

  window.loadgen = { render: render };
  render(JSON.parse(document.getElementById('loadgen-data').textContent));
})();
