// chainbus dashboard: the page shell and its hash router.
//
// Views are routes "#/<path>" (back, forward and shared links work):
// the explorer's (js/explorer.js: #/, #/block/<height|hash>, #/tx/<txid>,
// #/pending, #/user/<name>, #/key/<key>), the wallet's (js/wallet.js:
// #/wallet) and the network's (js/network.js: #/network, with the charts of
// js/charts.js below its peers). A module exports
// `routes = [{path, title, render(el, params)}]`; a path segment ":name"
// is a parameter, and "?a=b" after the path gives params.query
// (URLSearchParams). Each navigation renders into a fresh element, so a
// view's late answers land in a detached element and show nowhere.
//
// Live updates come from js/live.js (one EventSource for the page); the
// header shows its state. Nothing here polls: /status is fetched at load,
// when the stream (re)opens, on the events that change it, after the
// page's own actions, and when a service's heartbeats stop.
"use strict";

import { api } from "./js/api.js";
import { h, say } from "./js/explorer-dom.js";
import { explorerRoutes } from "./js/explorer.js";
import { wireSearch } from "./js/explorer-search.js";

const $ = (id) => document.getElementById(id);

// A module of another part of the page; the page works (without that
// part) when it is missing or fails to load.
async function optional(path) {
  try {
    return await import(path);
  } catch (e) {
    console.warn("dashboard: " + path + " not loaded:", e);
    return null;
  }
}

// The live stream first (the views subscribe when they render); the other
// parts load meanwhile, and only their own views wait for them: the
// explorer shows without them.
const loading = {
  wallet: optional("./js/wallet.js"),
  network: optional("./js/network.js"),
  charts: optional("./js/charts.js"),
};
const live = await optional("./js/live.js");
let wallet = null;
loading.wallet.then((m) => { wallet = m; });

// ------------------------------------------------------------------ live

const noLive = {
  on: () => () => {},
  onOpen: () => () => {},
  connectionState: () => "offline",
};
const stream = live && typeof live.on === "function" ? live : noLive;

function showLiveState(state) {
  const element = $("live-state");
  const words = { live: "live", connecting: "connecting…", offline: "not live" };
  element.textContent = words[state] || String(state);
  element.className = "badge " + (state === "live" ? "up" : state === "offline" ? "down" : "");
}

// ---------------------------------------------------------------- status

// The latest GET /status, shared by the header and the home view.
const statusWatchers = new Set();
let lastStatus = null;
let statusRead = false;             // a read of /status has ended (ok or not)
let statusBusy = false;
let statusAgain = false;

async function refreshStatus() {
  if (statusBusy) {
    statusAgain = true;
    return;
  }
  statusBusy = true;
  try {
    lastStatus = await api("/status");
    showStatus(lastStatus);
  } catch (e) {
    lastStatus = null;
    say($("ok"), "unreachable", true);
    $("ok").className = "badge down";
  } finally {
    statusBusy = false;
    statusRead = true;
  }
  statusWatchers.forEach((watch) => watch(lastStatus));
  if (statusAgain) {
    statusAgain = false;
    refreshStatus();
  }
}

function showStatus(s) {
  say($("network"), "network " + s.network);
  say($("ok"), s.ok ? "all services up" : "degraded");
  $("ok").className = "badge " + (s.ok ? "up" : "down");
  $("ok").title = s.ok ? "" : (s.reasons || []).map((r) => r.message).join("; ");
}

// Heartbeats: the mempool's carries the pending count; a service whose
// heartbeats stop (4 s: the node calls it dead after 3.5 s) makes the page
// ask /status once, and again when it comes back.
const beats = new Map();

function heartbeat(event) {
  const source = event.source;
  if (!source) return;
  const known = beats.get(source);
  if (known && known.dead) refreshStatus();
  if (known) clearTimeout(known.timer);
  const entry = { dead: false };
  entry.timer = setTimeout(() => {
    entry.dead = true;
    refreshStatus();
  }, 4000);
  beats.set(source, entry);
  const metrics = event.metrics || {};
  if (source === "mempool" && typeof metrics.chainbus_mempool_txs === "number"
      && lastStatus && lastStatus.mempool
      && lastStatus.mempool.size !== metrics.chainbus_mempool_txs) {
    lastStatus.mempool.size = metrics.chainbus_mempool_txs;
    statusWatchers.forEach((watch) => watch(lastStatus));
  }
}

// ---------------------------------------------------------------- router

const context = {
  live: stream,
  // js/wallet.js once loaded (null before, or if it failed);
  // walletReady: a promise of it.
  get wallet() { return wallet; },
  walletReady: loading.wallet,
  refreshStatus,
  status: () => lastStatus,
  // watch(status) now (once a read has ended) and on every new status
  // (null: the node did not answer); returns off().
  onStatus(watch) {
    statusWatchers.add(watch);
    if (statusRead) watch(lastStatus);
    return () => statusWatchers.delete(watch);
  },
  // fn() when the view is left (live subscriptions, timers).
  onLeave(fn) {
    leaving.push(fn);
  },
  // A view calls it once its content is shown: <body data-view="name">
  // and a performance mark "chainbus:shown:<name>" (tests and the bench
  // wait for them).
  viewShown(name) {
    performance.mark("chainbus:shown:" + name);
    document.body.dataset.view = name;
  },
};

function missing(path, title, words) {
  return {
    path, title,
    render(el) {
      el.append(h("section", {}, h("h2", {}, title), h("p", { class: "error" }, words)));
    },
  };
}

// The charts (js/charts.js) go below the network view's peers: the
// node's activity beside its links. Either part shows without the other.
function chartsSection() {
  const box = h("div", { id: "charts" });
  const done = h("section", { class: "charts-view" }, h("h2", {}, "Charts"), box);
  loading.charts.then((charts) => {
    if (!charts || typeof charts.renderCharts !== "function") {
      box.append(h("p", { class: "muted" }, "The charts part of this page did not load."));
      return null;
    }
    return charts.renderCharts(box);
  }).catch((e) => {
    console.warn("dashboard: charts:", e);
    box.replaceChildren(h("p", { class: "error" }, "The charts failed to show."));
  });
  return done;
}

// The view `path` of a part still loading: its render waits for the part
// (the view's words say when it did not load).
function partRoute(load, path, title, around) {
  return { path, title, async render(el, params) {
    const part = await load;
    const found = part && Array.isArray(part.routes) && part.routes.find((r) => r.path === path);
    const view = found || missing(path, title, "The " + title.toLowerCase()
      + " part of this page did not load.");
    return around ? around(view, el, params) : view.render(el, params);
  } };
}

async function withCharts(view, el, params) {
  const peers = h("div");
  el.append(peers, chartsSection());
  await view.render(peers, params);
}

const routes = [
  ...explorerRoutes(context),
  partRoute(loading.wallet, "/wallet", "Wallet"),
  partRoute(loading.network, "/network", "Network", withCharts),
].map((r) => ({ ...r, parts: r.path.split("/").filter((part) => part) }));

function match(hash) {
  const text = hash.replace(/^#/, "") || "/";
  const [path, query = ""] = text.split("?", 2);
  const parts = path.split("/").filter((part) => part);
  for (const r of routes) {
    if (r.parts.length !== parts.length) continue;
    const params = { query: new URLSearchParams(query) };
    let ok = true;
    r.parts.forEach((part, index) => {
      if (!ok) return;
      let value;
      try {
        value = decodeURIComponent(parts[index]);
      } catch (e) {
        ok = false;
        return;
      }
      if (part.startsWith(":")) params[part.slice(1)] = value;
      else if (part !== value) ok = false;
    });
    if (ok) return { route: r, params };
  }
  return null;
}

let leaving = [];
let generation = 0;

async function navigate() {
  for (const fn of leaving) {
    try {
      fn();
    } catch (e) {
      console.warn("dashboard: leaving a view:", e);
    }
  }
  leaving = [];
  const mine = ++generation;
  delete document.body.dataset.view;
  const view = $("view");
  const el = h("div", { class: "view" });
  view.replaceChildren(el);
  const found = match(location.hash);
  document.querySelectorAll("nav a").forEach((a) => {
    const current = found && a.getAttribute("href") === "#" + found.route.path;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (!found) {
    document.title = "Not found · chainbus";
    el.append(h("section", {}, h("h2", {}, "No such page"),
      h("p", {}, "This address names no view of the dashboard. "),
      h("p", {}, h("a", { href: "#/" }, "Go to the home page"))));
    return;
  }
  document.title = found.route.title + " · chainbus";
  try {
    await found.route.render(el, found.params);
    //  Views of the other parts are "shown" once their render is done.
    if (mine === generation && !document.body.dataset.view)
      context.viewShown(found.route.path.replace(/^\/|\/.*$/g, "") || "home");
  } catch (e) {
    console.warn("dashboard: view " + found.route.path + ":", e);
    if (mine === generation)
      el.append(h("p", { class: "error" }, "This view failed to show; reloading may help."));
  }
}

// After a link or search (not at load), the view's heading takes the
// focus, so that keyboard and screen reader users land on what changed.
let moved = false;
window.addEventListener("hashchange", async () => {
  moved = true;
  await navigate();
  const heading = $("view").querySelector("h2");
  if (heading && moved && !$("view").contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
});

// ----------------------------------------------------------------- start

showLiveState(stream.connectionState());
window.addEventListener("live-state", (event) =>
  showLiveState((event.detail && event.detail.state) || stream.connectionState()));
stream.on("stream.", () => showLiveState(stream.connectionState()));
stream.onOpen(() => {
  showLiveState(stream.connectionState());
  refreshStatus();
});
stream.on("chain.", () => refreshStatus());
stream.on("peer.", () => refreshStatus());
stream.on("node.heartbeat", heartbeat);

wireSearch(context);
refreshStatus();
navigate();
