// chainbus dashboard: the explorer's routes, the home view and the
// pending transactions.
//
//   import { explorerRoutes } from "./js/explorer.js";
//   routes.push(...explorerRoutes(context));
//
// context (made by app.js): live (js/live.js: on, onOpen,
// connectionState), wallet (js/wallet.js once loaded, else null), walletReady
// (a promise of it), refreshStatus(),
// onStatus(watch) -> off, onLeave(fn), viewShown(name).
//
// Live: Latest blocks takes new blocks from chain.block.connected events
// (no fetch per block); the pending list from mempool.tx.added/removed.
"use strict";

import { api } from "./api.js";
import { h, route, link, hashLink, blockLink, txLink, userLinks, when, say, words,
  table, row, fields, section } from "./explorer-dom.js";
import { blockView, txView, historyView } from "./explorer-views.js";

export const LATEST_BLOCKS = 10;
export const PENDING_HOME = 10;
export const PENDING_PAGE = 20;

export function explorerRoutes(context) {
  return [
    { path: "/", title: "Home", render: (el) => homeView(el, context) },
    { path: "/block/:id", title: "Block", render: (el, p) => blockView(el, p, context) },
    { path: "/tx/:txid", title: "Transaction", render: (el, p) => txView(el, p, context) },
    { path: "/pending", title: "Pending transactions",
      render: (el, p) => pendingView(el, p, context) },
    { path: "/user/:name", title: "User",
      render: (el, p) => historyView(el, "user", p.name, context) },
    { path: "/key/:key", title: "Key",
      render: (el, p) => historyView(el, "key", p.key, context) },
  ];
}

// ------------------------------------------------------------------ home

function homeView(el, context) {
  const summary = fields([
    ["Height", "…", "height"],
    ["Tip", "…", "tip"],
    ["Pending transactions", "…", "pending"],
    ["Peers linked", "…", "peers"],
    ["Sync", "…", "sync"],
    ["Mining", "…", "mining"],
    ["Services", "…", "services"],
  ], "node");
  const token = h("input", { id: "admin-token", type: "password", autocomplete: "off" });
  const mineResult = h("output", { id: "mine-result", "aria-live": "polite" });
  const mine = h("button", { id: "mine", type: "submit" }, "Mine a block");
  let reloadBlocks = () => {};
  //  A form (Enter in the token field mines too; a password field
  //  belongs in one).
  const mineForm = h("form", { id: "mine-form", onsubmit: (event) => {
    event.preventDefault();
    mineBlock(token, mineResult, context, reloadBlocks);
  } }, h("label", {}, "Admin token (only if this node asks for one) ", token),
  h("div", { class: "actions" }, mine, mineResult));
  const node = section("Node", summary, mineForm);

  const blocks = table("The ten latest blocks, newest first",
    ["Height", "Time", "Hash", "Transactions"], "blocks");
  const latest = section("Latest blocks", blocks.box);
  const pending = h("div", { id: "home-pending" });
  const pendingSection = section("Pending transactions", pending,
    h("p", {}, link(route("pending"), "All pending transactions")));
  el.append(h("div", { class: "home" }, node, latest, pendingSection,
    section("Charts", h("p", {}, "Transactions per second, block interval, mempool size and "
      + "hash rate are charted live in the ", link(route("network"), "network view"), "."))));

  context.onLeave(context.onStatus((status) => showSummary(status)));
  reloadBlocks = latestBlocks(blocks.body, context);
  pendingList(pending, { limit: PENDING_HOME, after: null, paged: false }, context);
  context.viewShown("home");
}

function showSummary(s) {
  const set = (id, value) => {
    const element = document.getElementById(id);
    if (element) element.replaceChildren(...[].concat(value));
  };
  if (!s) {
    //  The last read of /status failed: nothing shown is known now.
    for (const id of ["height", "tip", "pending", "peers", "sync", "mining", "services"])
      set(id, "unknown: the node does not answer");
    return;
  }
  set("height", s.height === null || s.height === undefined ? "?" : String(s.height));
  set("tip", s.tip ? hashLink(route("block", s.tip), s.tip, true) : "?");
  set("pending", s.mempool ? link(route("pending"), String(s.mempool.size)) : "?");
  set("peers", s.peers_linked === null || s.peers_linked === undefined
    ? "?" : link(route("network"), String(s.peers_linked)));
  set("sync", !s.sync ? "?" : s.sync.syncing
    ? `syncing from ${s.sync.peer}: ${s.sync.blocks_left} blocks left` : "in step");
  const m = s.mining || {};
  set("mining", (m.mode || "?") + ", " + ((s.services && s.services.miners) || []).length
    + " miner(s)" + (m.hash_rate ? ", " + rate(m.hash_rate) : ""));
  const services = Object.entries(s.services || {})
    .filter(([name]) => name !== "miners")
    .map(([name, v]) => name + (v.up ? " ✓" : " ✗"));
  set("services", services.join(", "));
}

function rate(hashes) {
  const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s"];
  let value = hashes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0) + " " + units[unit];
}

async function mineBlock(token, out, context, reloadBlocks) {
  say(out, "mining…");
  try {
    //  A node with gateway/admin_token_file set asks for its token.
    const value = token.value.trim();
    const b = await api("/mine", value ? { headers: { Authorization: "Bearer " + value } } : {});
    out.replaceChildren(`${b.message}: `, blockLink(b.index, "block " + b.index),
      ` with ${b.transactions.length} transaction(s)`);
    out.classList.remove("error");
    context.refreshStatus();
    //  Live, the block's event shows it; else the list is read again.
    if (context.live.connectionState() !== "live") reloadBlocks();
  } catch (e) {
    say(out, words(e), true);
  }
}

// ---------------------------------------------------------- latest blocks

function blockRow(b) {
  const tr = row(blockLink(b.index), when(b.timestamp),
    hashLink(route("block", b.hash), b.hash),
    String(b.transaction_count ?? (b.transactions ? b.transactions.length : "?")));
  tr.dataset.hash = b.hash;
  tr.dataset.height = b.index;
  return tr;
}

function latestBlocks(body, context) {
  let busy = null;
  const load = async () => {
    try {
      const page = await api("/blocks?limit=" + LATEST_BLOCKS);
      body.replaceChildren(...page.blocks.map(blockRow));
      if (!page.blocks.length)
        body.append(h("tr", {}, h("td", { colspan: 4 }, "no blocks")));
    } catch (e) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "error" }, words(e))));
    }
  };
  const reload = () => {
    if (!busy) busy = load().finally(() => { busy = null; });
    return busy;
  };
  reload();
  context.onLeave(context.live.onOpen(reload));
  //  A block that extends the shown tip is shown from its event alone;
  //  anything else (a reorganisation, a gap) reloads the list.
  context.onLeave(context.live.on("chain.block.connected", (event) => {
    const top = body.querySelector("tr[data-height]");
    const topHeight = top ? Number(top.dataset.height) : -1;
    if (top && event.index === topHeight + 1 && event.previous_hash === top.dataset.hash) {
      body.prepend(blockRow(event));
      while (body.children.length > LATEST_BLOCKS) body.lastElementChild.remove();
    } else if (!body.querySelector(`tr[data-hash="${CSS.escape(String(event.hash))}"]`)) {
      reload();
    }
  }));
  context.onLeave(context.live.on("chain.block.disconnected", () => reload()));
  return reload;
}

// ---------------------------------------------------------------- pending

// When the node received a pending transaction: the time today, else the
// date and time (a transaction pending since yesterday says so).
function receivedWhen(ms) {
  const at = new Date(ms);
  return at.toDateString() === new Date().toDateString()
    ? at.toLocaleTimeString() : at.toLocaleString();
}

function pendingRow(entry) {
  const t = entry.transaction || entry;
  const received = entry.received_ms ? receivedWhen(entry.received_ms) : "";
  const tr = row(txLink(t.txid), h("span", { class: "users" }, userLinks(t.users)), received);
  tr.dataset.txid = t.txid;
  return tr;
}

// The pending transactions, oldest first, a page at a time; live: new
// ones are added at the end of the last page, those that leave (mined,
// dropped) are taken out, and the page is read again once they stop.
function pendingList(el, { limit, after, paged }, context) {
  const list = table(null, ["Txid", "Users", "Received"], paged ? "pending-rows" : null);
  const note = h("p", { id: paged ? "pending-result" : "home-pending-result",
    "aria-live": "polite" });
  const pager = h("p", { class: "pager" });
  el.append(note, list.box, pager);
  let next = null;
  let timer = null;

  const load = async () => {
    try {
      const q = new URLSearchParams({ limit: String(limit) });
      if (after) q.set("after", after);
      const page = await api("/transactions/pending?" + q);
      list.body.replaceChildren(...page.transactions.map(pendingRow));
      next = page.next;
      showCount();
    } catch (e) {
      //  A gateway without the route takes "pending" for a txid.
      say(note, e.status === 400 && /transaction id/i.test(e.message)
        ? "This node does not list its pending transactions (its gateway predates "
          + "GET /transactions/pending)." : words(e), true);
    }
  };
  const showCount = () => {
    const count = list.body.children.length;
    say(note, count ? `${count} pending transaction(s) shown, oldest first`
      + (next ? "; more on the next page" : "")
      : after ? "No more pending transactions." : "No pending transactions.");
    pager.replaceChildren();
    if (paged && after) pager.append(link(route("pending"), "First page"), " ");
    if (next)
      pager.append(link(route("pending", undefined, { after: next }),
        paged ? "Next page" : "More", { id: paged ? "pending-next" : null }));
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 300);
  };
  context.onLeave(() => clearTimeout(timer));
  context.onLeave(context.live.onOpen(load));
  context.onLeave(context.live.on("mempool.tx.added", (event) => {
    if (next) return;
    if (list.body.children.length < limit) {
      if (!list.body.querySelector(`tr[data-txid="${CSS.escape(String(event.txid))}"]`))
        list.body.append(pendingRow({ transaction: event,
          received_ms: typeof event.received_ms === "number" ? event.received_ms : Date.now() }));
      showCount();
    } else {
      later();
    }
  }));
  context.onLeave(context.live.on("mempool.tx.removed", (event) => {
    const tr = list.body.querySelector(`tr[data-txid="${CSS.escape(String(event.txid))}"]`);
    if (tr) {
      tr.remove();
      later();
    }
  }));
  return load();
}

async function pendingView(el, params, context) {
  const after = params.query.get("after");
  const box = h("div");
  el.append(section("Pending transactions", h("p", { class: "muted" },
    "Transactions the node has accepted that are not in a block yet, oldest first."), box));
  await pendingList(box, { limit: PENDING_PAGE, after, paged: true }, context);
  context.viewShown("pending");
}
