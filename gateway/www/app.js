// chainbus dashboard: reads the node's JSON API and refreshes every 2 s.
"use strict";

const $ = (id) => document.getElementById(id);

function text(element, value, error) {
  element.textContent = value;
  element.classList.toggle("error", !!error);
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function row(cells, hashColumn) {
  const tr = document.createElement("tr");
  cells.forEach((cell, index) => {
    const td = document.createElement("td");
    td.textContent = cell;
    if (index === hashColumn) td.className = "hash";
    tr.appendChild(td);
  });
  return tr;
}

async function refreshStatus() {
  try {
    const s = await api("/status");
    text($("network"), "network " + s.network);
    text($("ok"), s.ok ? "all services up" : "degraded");
    $("ok").className = "badge " + (s.ok ? "up" : "down");
    text($("height"), s.height ?? "?");
    text($("tip"), s.tip ?? "?");
    text($("pending"), s.mempool ? s.mempool.size : "?");
    text($("peers"), s.peers_linked ?? "?");
    text($("sync"), !s.sync ? "?" : s.sync.syncing
      ? `syncing from ${s.sync.peer}: ${s.sync.blocks_left} blocks left` : "in step");
    const services = Object.entries(s.services)
      .filter(([name]) => name !== "miners")
      .map(([name, v]) => name + (v.up ? " ✓" : " ✗"));
    services.push(s.services.miners.length + " miner(s)");
    text($("services"), services.join(", "));
    await refreshBlocks(s.height);
  } catch (e) {
    text($("ok"), "unreachable", true);
    $("ok").className = "badge down";
  }
  try {
    const n = await api("/nodes");
    const body = $("nodes");
    body.replaceChildren(...n.nodes.map((p) =>
      row([p.address + " (" + p.direction + ")",
           p.state + (p.redundant ? " (second link, no gossip)" : "")
                   + (p.reason ? " (" + p.reason + ")" : ""), p.height, p.score])));
  } catch (e) { /* shown by the status badge */ }
}

let shownTip = null;
async function refreshBlocks(height) {
  if (height == null || height === shownTip) return;
  shownTip = height;
  const rows = [];
  for (let h = height; h >= 0 && h > height - 10; h--) {
    const b = await api("/blocks/" + h);
    const when = new Date(b.timestamp * 1000).toLocaleString();
    const users = b.transactions.map((t) => [].concat(t.users).join("+"));
    rows.push(row([b.index, when, b.hash,
      b.transactions.length ? b.transactions.length + ": " + users.join(", ") : "none"], 2));
  }
  $("blocks").replaceChildren(...rows);
}

$("tx").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const out = $("tx-result");
  let data;
  try {
    data = JSON.parse(form.get("data") || "null");
  } catch (e) {
    text(out, "Data is not valid JSON: " + e.message, true);
    return;
  }
  const users = form.get("users").split(",").map((u) => u.trim()).filter((u) => u);
  const tx = {
    users: users.length === 1 ? users[0] : users,
    data,
    dh_parameters: form.get("dh_parameters"),
    server_public_key: form.get("server_public_key"),
    receiver_public_key: form.get("receiver_public_key"),
    sender_public_key: form.get("sender_public_key"),
  };
  try {
    const r = await api("/transactions/new", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(tx),
    });
    text(out, r.message + " (txid " + r.txid + ")");
    refreshStatus();
  } catch (e) {
    text(out, e.message, true);
  }
});

$("mine").addEventListener("click", async () => {
  text($("mine-result"), "mining…");
  try {
    //  A node with gateway/admin_token_file set asks for its token.
    const token = $("admin-token").value.trim();
    const b = await api("/mine", token ? { headers: { Authorization: "Bearer " + token } } : {});
    text($("mine-result"), `${b.message}: block ${b.index} with ${b.transactions.length} transaction(s)`);
    refreshStatus();
  } catch (e) {
    text($("mine-result"), e.message, true);
  }
});

//  History: confirmed transactions of a user or key, newest first, a page
//  at a time (GET /transactions?user= or ?key=, with the next cursor).
let history = null;

async function showHistory(more) {
  const out = $("history-result");
  const query = new URLSearchParams({ [history.kind]: history.who, limit: "20" });
  if (more) query.set("before", history.next);
  try {
    const page = await api("/transactions?" + query);
    const rows = page.transactions.map((entry) => {
      const t = entry.transaction;
      return row([entry.block_height, entry.confirmations, t.txid,
        [].concat(t.users).join(", "), JSON.stringify(t.data)], 2);
    });
    if (more) $("history-rows").append(...rows);
    else $("history-rows").replaceChildren(...rows);
    history.next = page.next;
    $("history-more").hidden = !page.next;
    const shown = $("history-rows").children.length;
    text(out, shown ? `${shown} confirmed transaction(s) of ${history.who}`
                    : `no confirmed transaction of ${history.who}`);
  } catch (e) {
    text(out, e.message, true);
  }
}

$("history").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  history = { who: form.get("who").trim(), kind: form.get("kind"), next: null };
  showHistory(false);
});

$("history-more").addEventListener("click", () => showHistory(true));

refreshStatus();
setInterval(refreshStatus, 2000);
