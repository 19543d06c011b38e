// chainbus dashboard: four live charts for the home view.
//
//   import { renderCharts } from "./js/charts.js";
//   renderCharts(element);     // fills element with the charts (no heading)
//
// What each chart plots, all from the event stream (js/live.js), one point
// a second at most:
//   - transactions accepted per second: the mempool's heartbeat carries its
//     counter chainbus_mempool_txs_accepted_total; a point is the counter's
//     growth over the time between two heartbeats (a counter that goes
//     down is a restarted mempool: it starts a new baseline, no point);
//   - mempool size: chainbus_mempool_txs of the same heartbeat;
//   - hash rate: the sum of the live miners' hash_rate (each miner's
//     heartbeat carries its own; a miner silent for 3.5 s is dropped);
//   - block interval: the difference of the timestamps of consecutive
//     blocks (chain.block.connected; a disconnected block takes its point
//     away), one bar per height.
// Seeded once per page load at the first renderCharts: GET /metrics (the
// mempool size and the miners' rates now: first points) and GET
// /blocks?limit=31 (the last 30 intervals); the blocks again after each
// reconnection of the stream (blocks may have been missed). Nothing is
// fetched otherwise.
//
// The series live in this module from the time it is imported, so leaving
// the home view and coming back shows the history since the page opened.
// Each chart has a text alternative: its caption says the latest and the
// highest value of the window, and a table (in a <details>) lists the
// last values, newest first. Chart.js (vendor/chart.js, Debian's
// libjs-chart.js 3.9.1, its UMD build) is loaded on the first render; if
// it cannot be, the captions and tables still work.
"use strict";

import { h } from "./dom.js";
import { on, onOpen } from "./live.js";
import { useStyles } from "./network.js";

const WINDOW_POINTS = 120;          // 2 minutes of one-second points
const INTERVAL_POINTS = 30;         // block intervals shown
const TABLE_ROWS = 10;
const MINER_DEAD_MS = 3500;
const COUNTER_GAP_MS = 10000;       // longer between heartbeats: no rate point
const SEED_BLOCKS = INTERVAL_POINTS + 1;

const SERIES = [
  { id: "tx-rate", title: "Transactions accepted per second", unit: "tx/s", type: "line",
    column: "Time", digits: 1 },
  { id: "block-interval", title: "Block interval", unit: "s", type: "bar",
    column: "Block", digits: 1 },
  { id: "mempool", title: "Mempool size", unit: "transactions", type: "line",
    column: "Time", digits: 0 },
  { id: "hash-rate", title: "Hash rate", unit: "hashes/s", type: "line",
    column: "Time", digits: 1 },
];

const data = Object.fromEntries(SERIES.map((s) => [s.id, []]));   // [{x, y}]
const views = new Set();            // {root, charts: {id: Chart|null}, parts}
let seeded = false;
let counter = null;                 // {value, ms} of the last mempool heartbeat
const miners = new Map();           // source -> {rate, ms}
const blocks = new Map();           // height -> timestamp (seconds)

// ------------------------------------------------------------- the series

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

//  A point of a time series: one a second (a second point within the same
//  second replaces the first).
function addTimed(id, ms, y) {
  const points = data[id];
  const second = Math.floor(ms / 1000);
  const last = points[points.length - 1];
  if (last && last.second === second) last.y = y;
  else points.push({ second, x: clock(ms), y });
  if (points.length > WINDOW_POINTS) points.splice(0, points.length - WINDOW_POINTS);
  changed(id);
}

function heartbeat(event) {
  const now = Date.now();
  const metrics = event.metrics || {};
  if (event.source === "mempool") {
    if (typeof metrics.chainbus_mempool_txs === "number")
      addTimed("mempool", now, metrics.chainbus_mempool_txs);
    const value = metrics.chainbus_mempool_txs_accepted_total;
    if (typeof value === "number") {
      if (counter && value >= counter.value && now - counter.ms <= COUNTER_GAP_MS
          && now > counter.ms)
        addTimed("tx-rate", now, (value - counter.value) / ((now - counter.ms) / 1000));
      counter = { value, ms: now };
    }
  } else if (typeof event.source === "string" && event.source.startsWith("miner.")
             && typeof event.hash_rate === "number") {
    miners.set(event.source, { rate: event.hash_rate, ms: now });
    addTimed("hash-rate", now, minersTotal(now));
  }
}

function minersTotal(now) {
  let total = 0;
  for (const [source, miner] of miners) {
    if (now - miner.ms > MINER_DEAD_MS) miners.delete(source);
    else total += miner.rate;
  }
  return total;
}

function intervalsFromBlocks() {
  const heights = [...blocks.keys()].sort((a, b) => a - b);
  while (heights.length > SEED_BLOCKS + 10) blocks.delete(heights.shift());
  const points = [];
  for (const height of heights)
    if (blocks.has(height - 1))
      points.push({ x: "#" + height, y: blocks.get(height) - blocks.get(height - 1) });
  data["block-interval"] = points.slice(-INTERVAL_POINTS);
  changed("block-interval");
}

function blockConnected(event) {
  if (typeof event.index !== "number" || typeof event.timestamp !== "number") return;
  //  A block at a height we know replaces it (a reorganisation).
  for (const height of [...blocks.keys()]) if (height > event.index) blocks.delete(height);
  blocks.set(event.index, event.timestamp);
  intervalsFromBlocks();
}

function blockDisconnected(event) {
  if (typeof event.index !== "number") return;
  blocks.delete(event.index);
  intervalsFromBlocks();
}

on("node.heartbeat", heartbeat);
on("chain.block.connected", blockConnected);
on("chain.block.disconnected", blockDisconnected);
let opens = 0;
onOpen(() => {
  //  On a reconnection, blocks may have been missed while the stream was
  //  down, and a restarted mempool restarts its counter.
  if (++opens === 1) return;
  counter = null;
  if (seeded) seedBlocks();
});

// ---------------------------------------------------------------- seeding

//  The one value of a metric in Prometheus text (labelled series summed).
export function metricValue(text, name, labelFilter) {
  let total = null;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_:]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    if (labelFilter && !labelFilter(match[2] || "")) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

async function fetchText(path) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15000);
  try {
    const response = await fetch(path, { signal: controller.signal });
    return response.ok ? await response.text() : null;
  } catch (e) {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function seedMetrics() {
  const text = await fetchText("/metrics");
  if (!text) return;
  const now = Date.now();
  const size = metricValue(text, "chainbus_mempool_txs", (l) => l.includes('service="mempool"'));
  if (size !== null && !data.mempool.length) addTimed("mempool", now, size);
  const rate = metricValue(text, "chainbus_miner_hashes_per_second");
  if (rate !== null && !data["hash-rate"].length) addTimed("hash-rate", now, rate);
}

async function seedBlocks() {
  const text = await fetchText("/blocks?limit=" + SEED_BLOCKS);
  let page = null;
  try {
    page = text && JSON.parse(text);
  } catch (e) {
    page = null;
  }
  if (!page || !Array.isArray(page.blocks)) return;
  for (const b of page.blocks)
    if (typeof b.index === "number" && typeof b.timestamp === "number")
      blocks.set(b.index, b.timestamp);
  intervalsFromBlocks();
}

// ---------------------------------------------------------------- drawing

function format(value, digits) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "none";
  const abs = Math.abs(value);
  for (const [size, suffix] of [[1e12, " T"], [1e9, " G"], [1e6, " M"], [1e3, " k"]])
    if (abs >= size) return (value / size).toFixed(1) + suffix;
  return value.toFixed(Number.isInteger(value) ? 0 : digits);
}

function figure(series) {
  const latest = h("span", { className: "chart-latest", id: "chart-" + series.id + "-latest" });
  const canvas = h("canvas", { role: "img", "aria-label": series.title });
  const rows = h("tbody");
  const fallback = h("p", { className: "chart-fallback", hidden: "" });
  const details = h("details", {},
    h("summary", { text: "Values of " + series.title.toLowerCase() }),
    h("table", { className: "chart-table", id: "chart-" + series.id + "-table" },
      h("caption", { text: series.title + ", newest first" }),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: series.column }),
        h("th", { scope: "col", text: series.unit }))),
      rows));
  const root = h("figure", { className: "chart", id: "chart-" + series.id },
    h("figcaption", {}, h("span", { className: "chart-title", text: series.title }),
      " ", latest),
    h("div", { className: "chart-box" }, canvas), fallback, details);
  return { root, latest, canvas, rows, fallback, details };
}

function describe(series) {
  const points = data[series.id];
  if (!points.length) return "no data yet";
  const last = points[points.length - 1].y;
  const high = Math.max(...points.map((p) => p.y));
  const span = series.id === "block-interval" ? "the last " + points.length + " blocks"
    : "the last " + points.length + " s";
  return "latest " + format(last, series.digits) + " " + series.unit + ", highest "
    + format(high, series.digits) + " over " + span;
}

function drawText(parts, series) {
  const text = describe(series);
  parts.latest.textContent = "(" + text + ")";
  parts.canvas.setAttribute("aria-label", series.title + ": " + text);
  const points = data[series.id].slice(-TABLE_ROWS).reverse();
  parts.rows.replaceChildren(...points.map((p) => h("tr", {},
    h("td", { text: p.x }), h("td", { className: "num", text: format(p.y, series.digits) }))));
}

function drawChart(chart, series) {
  if (!chart) return;
  const points = data[series.id];
  chart.data.labels = points.map((p) => p.x);
  chart.data.datasets[0].data = points.map((p) => p.y);
  chart.update("none");
}

function changed(id) {
  const series = SERIES.find((s) => s.id === id);
  for (const v of views) {
    if (!v.root.isConnected) {
      for (const chart of Object.values(v.charts)) if (chart) chart.destroy();
      views.delete(v);
      continue;
    }
    drawText(v.parts[id], series);
    drawChart(v.charts[id], series);
  }
}

let chartLibrary = null;
function loadChartJs() {
  if (!chartLibrary)
    chartLibrary = import("../vendor/chart.js/chart.min.js")
      .then(() => globalThis.Chart || null)
      .catch(() => null);
  return chartLibrary;
}

function makeChart(Chart, canvas, series) {
  const style = getComputedStyle(canvas);
  const colour = style.getPropertyValue("--chart-colour").trim() || "#2b6cb0";
  return new Chart(canvas, {
    type: series.type,
    data: { labels: [], datasets: [{ label: series.title + " (" + series.unit + ")", data: [],
      borderColor: colour, backgroundColor: colour, pointRadius: 0, borderWidth: 2 }] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: false }, tooltip: { intersect: false, mode: "index" } },
      scales: {
        x: { ticks: { maxTicksLimit: 5, maxRotation: 0, autoSkip: true } },
        y: { beginAtZero: true, ticks: { maxTicksLimit: 5, precision: series.digits,
          callback: (value) => format(value, series.digits) } },
      },
    },
  });
}

export async function renderCharts(el) {
  useStyles();
  const parts = {};
  const grid = h("div", { className: "charts" });
  for (const series of SERIES) {
    parts[series.id] = figure(series);
    grid.append(parts[series.id].root);
  }
  el.replaceChildren(grid,
    h("p", { className: "charts-note", text: "Since this page was opened, updated live." }));
  const v = { root: grid, parts, charts: {} };
  views.add(v);
  for (const series of SERIES) drawText(parts[series.id], series);
  if (!seeded) {
    seeded = true;
    seedMetrics();
    seedBlocks();
  }
  const Chart = await loadChartJs();
  for (const series of SERIES) {
    const p = parts[series.id];
    if (!Chart) {
      p.fallback.textContent = "The chart cannot be drawn in this browser; its values are in the table.";
      p.fallback.hidden = false;
      p.details.open = true;
      continue;
    }
    try {
      v.charts[series.id] = makeChart(Chart, p.canvas, series);
      drawChart(v.charts[series.id], series);
    } catch (e) {
      p.fallback.textContent = "The chart could not be drawn; its values are in the table.";
      p.fallback.hidden = false;
      p.details.open = true;
    }
  }
}
