// chainbus dashboard: the Network view (#/network): this node's peers, one
// row per peer NODE, and its sync progress.
//
//   import { routes } from "./js/network.js";   // [{path: "/network", title, render}]
//
// GET /nodes lists one entry per link: a node that registered us while we
// registered it appears twice (direction "out" and "in", one of them
// "redundant"), and while a peer is down its two links can say different
// things ("connecting" on one, "refused" on the other). groupPeers() makes
// one row per node: entries with the same node_id are one node (an entry
// whose peer has not said its id yet, "fetching", is keyed by its address);
// its state is the most advanced of its links' (linked, then connecting,
// fetching, refused, banned), with that link's reason; its height the
// highest its links report; its score the worst (lowest) of them, the
// misbehaviour that counts towards a ban. The view refetches GET /nodes and
// GET /status (sync progress) when it renders, on each reconnection of the
// event stream, and on peer.* and chain.block.* events (at most once a
// second): no polling.
"use strict";

import { api } from "./api.js";
import { h } from "./dom.js";
import { on, onOpen } from "./live.js";

//  Most advanced first: the state a node shows is its best link's.
const STATE_ORDER = ["linked", "connecting", "fetching", "refused", "banned"];
const REFRESH_GAP_MS = 1000;

function rank(state) {
  const index = STATE_ORDER.indexOf(state);
  return index < 0 ? STATE_ORDER.length : index;
}

// [{key, node_id, state, reason, height, score, links: [entry...], last_seen_ms,
//   banned_for_ms}], best state first, then by key.
export function groupPeers(entries) {
  const byKey = new Map();
  for (const entry of entries || []) {
    const key = entry.node_id ? "id:" + entry.node_id : "address:" + entry.address;
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(entry);
  }
  const peers = [];
  for (const [key, links] of byKey) {
    //  The best link: most advanced state, the one that carries gossip
    //  before the redundant one.
    const best = links.slice().sort((a, b) =>
      rank(a.state) - rank(b.state) || Number(!!a.redundant) - Number(!!b.redundant))[0];
    const numbers = (field) => links.map((l) => l[field]).filter((v) => typeof v === "number");
    const heights = numbers("height");
    const scores = numbers("score");
    const seen = numbers("last_seen_ms");
    peers.push({
      key,
      node_id: best.node_id || null,
      state: best.state,
      reason: best.state === "linked" ? "" : (best.reason || ""),
      height: heights.length ? Math.max(...heights) : null,
      score: scores.length ? Math.min(...scores) : null,
      last_seen_ms: seen.length ? Math.max(...seen) : null,
      banned_for_ms: best.banned_for_ms || 0,
      links,
    });
  }
  return peers.sort((a, b) => rank(a.state) - rank(b.state) || a.key.localeCompare(b.key));
}

function linksText(links) {
  const parts = links.map((l) => (l.direction || "?") + " " + l.address
    + (l.redundant ? " (second link, no gossip)" : ""));
  return parts.join("; ");
}

function stateText(peer) {
  let text = peer.state;
  if (peer.state === "banned" && peer.banned_for_ms > 0)
    text += " for " + Math.ceil(peer.banned_for_ms / 60000) + " min";
  return text;
}

function timeText(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "never";
}

export function syncText(status) {
  const sync = status && status.sync;
  if (!sync) return "Sync: unknown (peersync did not answer)";
  if (!sync.syncing) return "Sync: in step with its peers";
  const done = sync.blocks_done || 0;
  const total = done + (sync.blocks_left || 0);
  const percent = total > 0 ? Math.floor((100 * done) / total) : 0;
  return "Sync: catching up from " + sync.peer + ": " + done + " of " + total
    + " blocks (" + percent + " %), to height " + sync.target_height;
}

function peerRow(peer) {
  const state = h("td", { className: "net-state net-" + peer.state, text: stateText(peer) });
  if (peer.reason) state.append(h("span", { className: "net-reason", text: " (" + peer.reason + ")" }));
  return h("tr", { "data-peer": peer.key },
    h("td", { className: "hash", text: peer.node_id || "not known yet" }),
    state,
    h("td", { className: "num", text: peer.height ?? "?" }),
    h("td", { className: "num", text: peer.score ?? "?" }),
    h("td", { className: "net-links", text: linksText(peer.links) }),
    h("td", { text: timeText(peer.last_seen_ms) }));
}

function view() {
  const summary = h("p", { id: "network-summary", role: "status" }, "Loading the peers…");
  const sync = h("p", { id: "network-sync" }, "");
  const error = h("p", { id: "network-error", className: "error", hidden: "" });
  const body = h("tbody", { id: "network-peers" });
  const table = h("table", { className: "net-peers" },
    h("caption", { text: "Peers, one row per node (a node linked both ways has two links)" }),
    h("thead", {}, h("tr", {},
      ...["Node", "State", "Height", "Score", "Links", "Last seen"].map((name) =>
        h("th", { scope: "col", text: name })))),
    body);
  const root = h("section", { className: "net-view", "aria-labelledby": "network-title" },
    h("h2", { id: "network-title", text: "Network" }), summary, sync, error,
    h("div", { className: "table-scroll", tabindex: "0", "aria-label": "Peers table" }, table));
  return { root, summary, sync, error, body };
}

function show(parts, nodes, status) {
  const peers = groupPeers(nodes);
  parts.body.replaceChildren(...peers.map(peerRow));
  const linked = peers.filter((p) => p.state === "linked").length;
  const here = status && status.height != null
    ? "; this node is at height " + status.height + "." : ".";
  parts.summary.textContent = peers.length
    ? peers.length + (peers.length === 1 ? " peer" : " peers") + ", " + linked + " linked" + here
    : "No peers: this node is on its own (add one with POST /nodes/register)" + here;
  parts.sync.textContent = syncText(status);
}

async function render(el_) {
  const parts = view();
  el_.replaceChildren(parts.root);
  let busy = false;
  let again = false;
  let last = 0;
  let timer = null;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    last = Date.now();
    try {
      const [nodes, status] = await Promise.all([
        api("/nodes"),
        api("/status").catch(() => null),
      ]);
      show(parts, nodes.nodes, status);
      parts.error.hidden = true;
    } catch (e) {
      //  The node's words (api.js); a fault of this page is not shown as
      //  the browser's text.
      parts.error.textContent = e && e.name === "ApiError" || (e && typeof e.status === "number")
        ? e.message : "This page could not show the peers; reload it to try again.";
      parts.error.hidden = false;
    } finally {
      busy = false;
      if (again) { again = false; later(); }
    }
  }

  //  At most one refresh a second however many events arrive.
  function later() {
    if (timer || !parts.root.isConnected) return;
    const wait = Math.max(0, last + REFRESH_GAP_MS - Date.now());
    timer = setTimeout(() => { timer = null; refresh(); }, wait);
  }

  on("peer.", later, parts.root);
  on("chain.block.", later, parts.root);
  onOpen(later, parts.root);
  await refresh();
}

export const routes = [{ path: "/network", title: "Network", render }];

// network.css (this view's and the charts' rules), linked once by whichever
// of network.js and charts.js loads first: the page shell need not know.
export function useStyles() {
  if (typeof document === "undefined" || document.getElementById("cb-network-css")) return;
  const link = document.createElement("link");
  link.id = "cb-network-css";
  link.rel = "stylesheet";
  link.href = new URL("../network.css", import.meta.url).href;
  document.head.append(link);
}

useStyles();
