#!/usr/bin/env node
// Draws docs/dashboard/roleplay-server.json as a PNG, Grafana-like, from a
// Prometheus that scraped roleplay-server. It is NOT Grafana: it reads the
// dashboard's own panels (gridPos, title, unit, legendFormat, colour
// overrides), runs each target's PromQL through Prometheus's HTTP API
// (query_range over the given window), and draws the time series with uPlot
// in headless Chromium (the system's /usr/bin/chromium, never a download).
//
//   node render.mjs --prometheus http://127.0.0.1:9091 --start 1700000000 --end 1700000180 \
//     [--dashboard roleplay-server.json] [--out screenshot.png] [--scrape-interval 1] \
//     [--model '.*'] [--width 1600] [--subtitle 'text for the header'] [--html page.html]
//
// Grafana's variables are filled in as Grafana would: $model from --model
// (default: All, `.*`), $__interval from the step, and $__rate_interval as
// max($__interval + scrape interval, 4 × scrape interval).

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const args = {
    dashboard: join(here, 'roleplay-server.json'),
    out: join(here, 'screenshot.png'),
    scrapeInterval: 1,
    model: '.*',
    width: 1600,
    subtitle: '',
    html: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in args) && !['prometheus', 'start', 'end'].includes(key)) {
      throw new Error(`unknown option ${argv[i]}`);
    }
    args[key] = argv[++i];
  }
  for (const need of ['prometheus', 'start', 'end']) {
    if (!args[need]) throw new Error(`--${need} is required`);
  }
  args.start = Number(args.start);
  args.end = Number(args.end);
  args.scrapeInterval = Number(args.scrapeInterval);
  args.width = Number(args.width);
  if (!(args.end > args.start)) throw new Error('--end must be after --start');
  return args;
}

/// The panels in reading order, rows included; collapsed rows' panels are
/// not drawn (as in Grafana, where they are hidden until opened).
function flattenPanels(dashboard) {
  const out = [];
  for (const panel of dashboard.panels ?? []) {
    out.push(panel);
  }
  return out.sort((a, b) => a.gridPos.y - b.gridPos.y || a.gridPos.x - b.gridPos.x);
}

function interpolate(expr, vars) {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced, bare) => {
    const name = braced ?? bare;
    return name in vars ? vars[name] : whole;
  });
}

function legendName(format, metric) {
  if (format && format !== '__auto') {
    return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, label) => metric[label] ?? '');
  }
  const { __name__: name = '', ...labels } = metric;
  const inner = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');
  return inner ? `${name}{${inner}}` : name || 'value';
}

async function queryRange(base, expr, start, end, step) {
  const body = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(step) });
  const response = await fetch(`${base.replace(/\/$/, '')}/api/v1/query_range`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const json = await response.json();
  if (json.status !== 'success') {
    throw new Error(`${expr}: ${json.errorType ?? response.status}: ${json.error ?? 'query failed'}`);
  }
  return json.data.result;
}

async function collect(args, dashboard) {
  const window = args.end - args.start;
  // About one point per 2 px of a full-width panel, never finer than a scrape.
  const step = Math.max(args.scrapeInterval, Math.ceil(window / 600));
  const rateInterval = Math.max(step + args.scrapeInterval, 4 * args.scrapeInterval);
  const vars = {
    model: args.model,
    __interval: `${step}s`,
    __rate_interval: `${rateInterval}s`,
    __range: `${window}s`,
  };
  const times = [];
  for (let t = args.start; t <= args.end; t += step) times.push(t);
  const panels = [];
  for (const panel of flattenPanels(dashboard)) {
    if (panel.type === 'row') {
      panels.push({ type: 'row', title: panel.title, gridPos: panel.gridPos });
      continue;
    }
    const series = [];
    const errors = [];
    for (const target of panel.targets ?? []) {
      if (target.hide) continue;
      const expr = interpolate(target.expr, vars);
      let result = [];
      try {
        result = await queryRange(args.prometheus, expr, args.start, args.end, step);
      } catch (err) {
        errors.push(String(err.message ?? err));
      }
      for (const s of result) {
        const byTime = new Map(s.values.map(([t, v]) => [Math.round(t), Number(v)]));
        const values = times.map((t) => {
          const v = byTime.get(t);
          return v === undefined || !Number.isFinite(v) ? null : v;
        });
        series.push({ name: legendName(target.legendFormat, s.metric), values });
      }
    }
    const defaults = panel.fieldConfig?.defaults ?? {};
    const colours = {};
    for (const override of panel.fieldConfig?.overrides ?? []) {
      if (override.matcher?.id !== 'byName') continue;
      for (const prop of override.properties ?? []) {
        if (prop.id === 'color' && prop.value?.fixedColor) colours[override.matcher.options] = prop.value.fixedColor;
      }
    }
    panels.push({
      type: panel.type,
      title: interpolate(panel.title, { model: args.model === '.*' ? 'All' : args.model }),
      gridPos: panel.gridPos,
      unit: defaults.unit ?? 'short',
      decimals: defaults.decimals,
      min: defaults.min,
      max: defaults.max,
      fillOpacity: defaults.custom?.fillOpacity ?? 0,
      lineWidth: defaults.custom?.lineWidth ?? 1,
      colours,
      series,
      errors,
    });
  }
  return { times, step, rateInterval, panels };
}

function page(args, dashboard, data) {
  const uplotJs = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  const iso = (t) => new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const header = {
    title: dashboard.title,
    range: `${iso(args.start)} → ${iso(args.end)}`,
    vars: [
      ['Data source', 'Prometheus'],
      ['Model', args.model === '.*' ? 'All' : args.model],
    ],
    note: `Rendered by docs/dashboard/render.mjs from the dashboard's own PromQL (Prometheus query_range, step ${data.step}s, $__rate_interval ${data.rateInterval}s) — not a Grafana screenshot.`,
    subtitle: args.subtitle,
  };
  return `<!doctype html>
<html><head><meta charset="utf-8">
<style>${uplotCss}</style>
<style>
  :root { --bg: #111217; --panel: #181b1f; --border: rgba(204,204,220,0.12); --text: #ccccdc; --muted: rgba(204,204,220,0.65); }
  html, body { margin: 0; background: var(--bg); color: var(--text);
    font-family: Inter, "Liberation Sans", "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 12px; }
  #header { display: flex; align-items: center; gap: 12px; padding: 10px 8px 6px; }
  #header h1 { font-size: 18px; font-weight: 500; margin: 0 12px 0 0; }
  .chip { border: 1px solid var(--border); background: #0b0c0e; border-radius: 2px; padding: 4px 8px; font-size: 12px; }
  .chip b { color: var(--muted); font-weight: 500; margin-right: 6px; }
  .grow { flex: 1; }
  #note { padding: 0 8px 6px; color: var(--muted); font-size: 12px; }
  #grid { position: relative; margin: 0 8px; }
  .row { position: absolute; display: flex; align-items: center; font-size: 15px; font-weight: 500; }
  .row::before { content: "⌄"; margin-right: 8px; color: var(--muted); position: relative; top: -3px; }
  .panel { position: absolute; box-sizing: border-box; background: var(--panel); border: 1px solid var(--border);
    border-radius: 2px; display: flex; flex-direction: column; overflow: hidden; }
  .title { height: 30px; line-height: 30px; padding: 0 8px; font-size: 14px; font-weight: 500; white-space: nowrap;
    overflow: hidden; text-overflow: ellipsis; flex: none; }
  .chart { flex: 1; position: relative; min-height: 0; }
  .nodata { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 16px; }
  .legend { flex: none; display: flex; flex-wrap: wrap; gap: 2px 14px; padding: 4px 8px 6px; font-size: 12px; }
  .legend span { white-space: nowrap; display: inline-flex; align-items: center; }
  .legend i { display: inline-block; width: 14px; height: 4px; border-radius: 2px; margin-right: 6px; }
  .err { color: #f2495c; font-size: 11px; padding: 0 8px 4px; }
</style></head>
<body>
<div id="header"><h1>${escapeHtml(header.title)}</h1>
${header.vars.map(([k, v]) => `<span class="chip"><b>${escapeHtml(k)}</b>${escapeHtml(v)}</span>`).join('')}
<span class="grow"></span><span class="chip">${escapeHtml(header.range)}</span></div>
<div id="note">${escapeHtml(header.note)}${header.subtitle ? ' ' + escapeHtml(header.subtitle) : ''}</div>
<div id="grid"></div>
<script>${uplotJs}</script>
<script>
const DATA = ${JSON.stringify(data)};
const WIDTH = ${args.width};
${browserCode.toString()}
browserCode(DATA, WIDTH);
</script>
</body></html>`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

// Runs in the page: lays out the grid and draws every panel.
function browserCode(DATA, WIDTH) {
  const CELL_H = 30;
  const MARGIN = 8;
  const grid = document.getElementById('grid');
  const gridWidth = WIDTH - 16;
  const colW = (gridWidth + MARGIN) / 24;
  const named = {
    green: '#73BF69', 'dark-green': '#37872D', yellow: '#FADE2A', red: '#F2495C', orange: '#FF9830',
    blue: '#5794F2', purple: '#B877D9', 'dark-red': '#C4162A', 'light-blue': '#8AB8FF',
  };
  const classic = ['#7EB26D', '#EAB839', '#6ED0E0', '#EF843C', '#E24D42', '#1F78C1', '#BA43A6', '#705DA0',
    '#508642', '#CCA300', '#447EBC', '#C15C17', '#890F02', '#0A437C', '#6D1F62', '#584477', '#B7DBAB',
    '#F4D598', '#70DBED', '#F9BA8F', '#F29191', '#82B5D8', '#E5A8E2', '#AEA2E0'];
  const font = '11px Inter, "Liberation Sans", "DejaVu Sans", sans-serif';
  const measure = document.createElement('canvas').getContext('2d');
  measure.font = font;

  function hexA(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
  }
  function fixed(v, dec) {
    return v.toFixed(Math.max(0, Math.min(dec, 6)));
  }
  // Grafana-like value formatting; `incr` is the tick step, for decimals.
  function scaled(v, incr, steps, decimals) {
    if (v === 0) return '0' + steps[0][1];
    let i = 0;
    const a = Math.max(Math.abs(v), Math.abs(incr) || 0);
    while (i < steps.length - 1 && a >= steps[i + 1][0]) i++;
    const [div, suffix] = steps[i];
    const dec = decimals ?? autoDec(incr / div, v / div);
    return fixed(v / div, dec) + suffix;
  }
  // Enough decimals to tell ticks `incr` apart (0.25 needs two).
  function autoDec(incr, v) {
    if (!incr) {
      if (v === 0) return 0;
      const mag = Math.floor(Math.log10(Math.abs(v)));
      return Math.max(0, 2 - mag);
    }
    for (let d = 0; d < 6; d++) {
      const scaledIncr = Math.abs(incr) * Math.pow(10, d);
      if (Math.abs(scaledIncr - Math.round(scaledIncr)) < 1e-6 * Math.max(1, scaledIncr)) return d;
    }
    return 6;
  }
  function fmt(v, unit, incr, decimals) {
    if (v == null || !Number.isFinite(v)) return '';
    const short = [[1, ''], [1e3, ' K'], [1e6, ' Mil'], [1e9, ' Bil'], [1e12, ' Tri']];
    if (unit === 'ms') return scaled(v, incr, [[1, ' ms'], [1e3, ' s'], [6e4, ' min'], [3.6e6, ' hour']], decimals);
    if (unit === 's') {
      if (Math.max(Math.abs(v), Math.abs(incr || 0)) < 1 && v !== 0) return scaled(v * 1000, (incr || 0) * 1000, [[1, ' ms']], decimals);
      return scaled(v, incr, [[1, ' s'], [60, ' min'], [3600, ' hour'], [86400, ' day']], decimals);
    }
    if (unit === 'bytes') return scaled(v, incr, [[1, ' B'], [1024, ' KiB'], [1048576, ' MiB'], [1073741824, ' GiB']], decimals);
    if (unit === 'reqps') return scaled(v, incr, short, decimals) + ' req/s';
    if (unit === 'ops') return scaled(v, incr, short, decimals) + ' ops/s';
    if (unit === 'percentunit') return fixed(v * 100, decimals ?? autoDec(incr * 100, v * 100)) + '%';
    if (unit === 'currencyUSD') return '$' + scaled(v, incr, short, decimals);
    if (unit && unit.startsWith('suffix:')) return fixed(v, decimals ?? autoDec(incr, v)) + unit.slice(7);
    return scaled(v, incr, short, decimals);
  }
  function pad2(n) { return String(n).padStart(2, '0'); }
  function clock(t, withSeconds) {
    const d = new Date(t * 1000);
    const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
    return withSeconds ? `${hm}:${pad2(d.getUTCSeconds())}` : hm;
  }
  function yRange(panel) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of panel.series) for (const v of s.values) if (v != null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) { lo = 0; hi = 1; }
    if (panel.min != null) lo = Math.min(lo, panel.min);
    if (panel.max != null) hi = panel.max;
    if (hi <= lo) hi = lo + 1;
    return [lo, hi];
  }

  // Headroom above the highest point, rounded to a half power of ten.
  function niceRange(lo, hi, unit) {
    const top = hi + (hi - lo) * 0.05;
    const base = unit === 'bytes' ? Math.pow(1024, Math.max(0, Math.floor(Math.log(top - lo) / Math.log(1024)))) : 1;
    const half = (Math.pow(10, Math.floor(Math.log10((top - lo) / base))) / 2) * base;
    return [lo, Math.ceil(top / half) * half];
  }
  // Tick steps for bytes: 1, 2, 5 … times a power of 1024, as Grafana does.
  const byteIncrs = [
    ...new Set(
      [1, 1024, 1048576, 1073741824].flatMap((p) => [0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500].map((m) => m * p)),
    ),
  ]
    .filter((v) => v >= 1 && Number.isInteger(v))
    .sort((a, b) => a - b);

  const span = DATA.times[DATA.times.length - 1] - DATA.times[0];
  let colour = 0;
  for (const panel of DATA.panels) {
    const g = panel.gridPos;
    const left = g.x * colW;
    const top = g.y * (CELL_H + MARGIN);
    const width = g.w * colW - MARGIN;
    const height = g.h * (CELL_H + MARGIN) - MARGIN;
    if (panel.type === 'row') {
      const row = document.createElement('div');
      row.className = 'row';
      Object.assign(row.style, { left: `${left}px`, top: `${top}px`, width: `${width}px`, height: `${CELL_H}px` });
      row.textContent = panel.title;
      grid.appendChild(row);
      continue;
    }
    const el = document.createElement('div');
    el.className = 'panel';
    Object.assign(el.style, { left: `${left}px`, top: `${top}px`, width: `${width}px`, height: `${height}px` });
    el.innerHTML = `<div class="title"></div><div class="chart"></div><div class="legend"></div>`;
    el.querySelector('.title').textContent = panel.title;
    grid.appendChild(el);
    const chart = el.querySelector('.chart');
    const legend = el.querySelector('.legend');
    for (const e of panel.errors) {
      const d = document.createElement('div');
      d.className = 'err';
      d.textContent = e;
      el.appendChild(d);
    }
    if (panel.series.length === 0) {
      legend.remove();
      chart.innerHTML = '<div class="nodata">No data</div>';
      continue;
    }
    const colours = panel.series.map((s) => {
      const c = panel.colours[s.name];
      return c ? named[c] ?? c : classic[colour++ % classic.length];
    });
    panel.series.forEach((s, i) => {
      const item = document.createElement('span');
      item.innerHTML = `<i style="background:${colours[i]}"></i>`;
      item.appendChild(document.createTextNode(s.name));
      legend.appendChild(item);
    });
    const [lo, hi] = yRange(panel);
    const unit = panel.unit;
    const plot = new uPlot(
      {
        width: chart.clientWidth,
        height: chart.clientHeight,
        legend: { show: false },
        cursor: { show: false },
        padding: [6, 12, 0, 0],
        scales: {
          x: { time: true, range: [DATA.times[0], DATA.times[DATA.times.length - 1]] },
          y: {
            range: () => niceRange(lo, hi, unit),
          },
        },
        axes: [
          {
            stroke: 'rgba(204,204,220,0.65)',
            font,
            grid: { stroke: 'rgba(204,204,220,0.07)', width: 1 },
            ticks: { stroke: 'rgba(204,204,220,0.07)', width: 1, size: 4 },
            space: 70,
            values: (u, splits) => splits.map((t) => clock(t, span < 900)),
          },
          {
            stroke: 'rgba(204,204,220,0.65)',
            font,
            grid: { stroke: 'rgba(204,204,220,0.07)', width: 1 },
            ticks: { show: false },
            space: 28,
            ...(unit === 'bytes' ? { incrs: byteIncrs } : {}),
            values: (u, splits) => {
              const incr = splits.length > 1 ? splits[1] - splits[0] : 0;
              return splits.map((v) => fmt(v, unit, incr, panel.decimals));
            },
            size: (u, values) => {
              if (!values) return 40;
              return Math.ceil(Math.max(...values.map((v) => measure.measureText(v).width))) + 14;
            },
          },
        ],
        series: [
          {},
          ...panel.series.map((s, i) => ({
            label: s.name,
            stroke: colours[i],
            width: panel.lineWidth,
            fill: panel.fillOpacity > 0 ? hexA(colours[i], panel.fillOpacity / 100) : undefined,
            // A value between two gaps would draw nothing: a dot, as Grafana's showPoints "auto" does.
            points: {
              show: false,
              size: 4,
              stroke: colours[i],
              fill: colours[i],
              filter: () => {
                const v = s.values;
                const lone = [];
                for (let k = 0; k < v.length; k++) if (v[k] != null && v[k - 1] == null && v[k + 1] == null) lone.push(k);
                return lone.length ? lone : null;
              },
            },
            spanGaps: false,
          })),
        ],
      },
      [DATA.times, ...panel.series.map((s) => s.values)],
      chart,
    );
    plot.root.style.position = 'absolute';
  }
  const bottom = Math.max(...DATA.panels.map((p) => (p.gridPos.y + p.gridPos.h) * (CELL_H + MARGIN)));
  grid.style.height = `${bottom}px`;
  window.__rendered = true;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dashboard = JSON.parse(readFileSync(args.dashboard, 'utf8'));
  const data = await collect(args, dashboard);
  for (const p of data.panels) {
    if (p.type === 'row') continue;
    const peak = Math.max(0, ...p.series.flatMap((s) => s.values.filter((v) => v != null)));
    const state = p.series.length === 0 ? 'NO DATA' : `${p.series.length} series, peak ${+peak.toPrecision(4)}`;
    console.log(`  ${p.title}: ${state}${p.errors.length ? ` (errors: ${p.errors.join('; ')})` : ''}`);
  }
  const html = page(args, dashboard, data);
  if (args.html) writeFileSync(args.html, html);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: args.width, height: 900 }, deviceScaleFactor: 1 });
    const tab = await context.newPage();
    // Nothing leaves the machine: the page is inline and makes no requests.
    await tab.route('**/*', (route) => route.abort());
    await tab.setContent(html, { waitUntil: 'load' });
    await tab.waitForFunction(() => window.__rendered === true, null, { timeout: 30_000 });
    await tab.screenshot({ path: resolve(args.out), fullPage: true });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${args.out}`);
}

main().catch((err) => {
  console.error(`render.mjs: ${err.message ?? err}`);
  process.exit(1);
});
