// chainbus dashboard: the block, transaction and history views.
//
//   #/block/<height|hash>[?start=I]  header fields and a page of its
//                                    transactions (GET /blocks/{id}/transactions)
//   #/tx/<txid>                      pending or confirmed (GET /transactions/{txid})
//   #/user/<name>, #/key/<key>       confirmed history, newest first
//                                    (GET /transactions?user=|key=, "Older")
"use strict";

import { api, blockTransactions } from "./api.js";
import { h, route, link, hashLink, blockLink, txLink, userLinks, keyLink, when, whenMicros,
  say, words, table, row, fields, section, dataPreview, HEX64, HEIGHT } from "./explorer-dom.js";

export const BLOCK_PAGE = 50;
export const HISTORY_PAGE = 20;
const ZERO_HASH = "0".repeat(64);

function failed(el, title, error) {
  el.append(section(title, h("p", { id: "view-error", class: "error" },
    typeof error === "string" ? error : words(error))));
}

// Whether data is sealed (docs/transactions.md "Sealed data"): the
// wallet's test when it is loaded, else the format's marks.
function sealed(tx, context) {
  const wallet = context.wallet;
  if (wallet && typeof wallet.isSealed === "function") {
    try {
      return !!wallet.isSealed(tx);
    } catch (e) {
      return false;
    }
  }
  return typeof tx.dh_parameters === "string" && tx.dh_parameters.startsWith("x25519-box:v1:")
    && tx.data !== null && typeof tx.data === "object" && !Array.isArray(tx.data)
    && Object.keys(tx.data).length === 1 && typeof tx.data.sealed === "string";
}

function dataCell(tx, context) {
  return sealed(tx, context) ? h("span", { class: "sealed" }, "sealed")
    : h("span", { class: "data" }, dataPreview(tx.data));
}

// ----------------------------------------------------------------- block

export async function blockView(el, params, context) {
  if (!HEIGHT.test(params.id) && !HEX64.test(params.id)) {
    failed(el, "Block", "That names no block: a block is named by its height or its "
      + "64-digit hash.");
    return;
  }
  const start = Math.max(0, parseInt(params.query.get("start") || "0", 10) || 0);
  let page;
  try {
    page = await blockTransactions(params.id, start, BLOCK_PAGE);
  } catch (e) {
    failed(el, "Block " + params.id, e);
    return;
  }
  const b = page.block;
  //  A block of a side branch (opened by its hash): stale, no
  //  confirmations, its neighbours by hash, not by height.
  const stale = b.in_active_chain === false;
  const confirmations = h("span", { id: "block-confirmations" },
    stale ? "none: not in the active chain" : String(b.confirmations));
  const neighbours = h("p", { class: "pager" },
    b.index > 0 ? link(route("block", stale ? b.previous_hash : b.index - 1),
      "← Block " + (b.index - 1), { id: "block-previous" }) : null,
    " ",
    stale ? null : link(route("block", b.index + 1), "Block " + (b.index + 1) + " →",
      { id: "block-next", hidden: b.confirmations > 1 ? null : true }));
  const staleNote = stale ? h("p", { id: "block-stale", class: "error" },
    "This block is stale: it is not in the active chain, because a branch with more work "
    + "replaced it. Its transactions count only where they are in the active chain (a "
    + "transaction's own page says where).") : null;
  const header = fields([
    ["Height", String(b.index), "block-height"],
    ["Hash", hashLink(route("block", b.hash), b.hash, true), "block-hash"],
    ["Previous block", b.previous_hash === ZERO_HASH || b.index === 0 ? "none (genesis)"
      : hashLink(route("block", b.previous_hash), b.previous_hash, true)],
    ["Time", when(b.timestamp)],
    ["Confirmations", confirmations],
    ["Transactions", String(b.transaction_count), "block-tx-count"],
    ["Size", b.size === undefined ? "?" : b.size.toLocaleString() + " bytes"],
    ["Merkle root", h("span", { class: "hash" }, b.merkle_root)],
    ["Target", h("span", { class: "hash" }, b.target)],
    ["Bits", b.bits],
    ["Proof (nonce)", String(b.proof)],
    ["Miner", String(b.miner)],
    ["Version", String(b.version)],
  ], "block");
  const txs = table(null, ["#", "Txid", "Users", "Data"], "block-txs");
  page.transactions.forEach((tx, index) => {
    txs.body.append(row(String(start + index), txLink(tx.txid),
      h("span", { class: "users" }, userLinks(tx.users)), dataCell(tx, context)));
  });
  const count = b.transaction_count;
  const shownTo = start + page.transactions.length;
  //  Pages of this very block: by hash for a stale one (its height names
  //  the active block there).
  const self = stale ? b.hash : b.index;
  const last = count > 0 ? Math.floor((count - 1) / BLOCK_PAGE) * BLOCK_PAGE : 0;
  const more = page.next !== null && page.next !== undefined;
  const pager = h("p", { class: "pager", id: "block-pager" },
    start > 0 ? link(route("block", self), "First", { id: "block-txs-first" }) : null,
    " ",
    start > 0 ? link(route("block", self, { start: Math.max(0, start - BLOCK_PAGE) }),
      "Previous " + BLOCK_PAGE, { id: "block-txs-previous" }) : null,
    " ",
    more ? link(route("block", self, { start: page.next }), "Next " + BLOCK_PAGE,
      { id: "block-txs-next" }) : null,
    " ",
    more && last > page.next ? link(route("block", self, { start: last }), "Last",
      { id: "block-txs-last" }) : null);
  el.append(section((stale ? "Stale block " : "Block ") + b.index, staleNote, neighbours, header),
    section("Transactions",
      h("p", { id: "block-txs-result" }, count === 0 ? "This block has no transactions."
        : page.transactions.length === 0 ? `No transactions from #${start}: the block has ${count}.`
          : `Transactions ${start + 1} to ${shownTo} of ${count}`),
      txs.box, pager));
  context.viewShown("block");

  //  Live: confirmations grow with the tip; a reorganisation reloads.
  let tip = b.index + b.confirmations - 1;
  const reload = () => {
    if (el.isConnected) window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  context.onLeave(context.live.on("chain.block.connected", (event) => {
    //  A stale block back in the active chain (a reorganisation back).
    if (stale) {
      if (event.hash === b.hash) reload();
      return;
    }
    if (typeof event.index !== "number" || event.index <= tip) return;
    tip = event.index;
    confirmations.textContent = String(tip - b.index + 1);
    document.getElementById("block-next")?.removeAttribute("hidden");
  }));
  context.onLeave(context.live.on("chain.block.disconnected", (event) => {
    if (!stale && event.index <= b.index) reload();
  }));
}

// ----------------------------------------------------------- transaction

export async function txView(el, params, context) {
  if (!HEX64.test(params.txid)) {
    failed(el, "Transaction", "That is not a transaction id: a txid is 64 hexadecimal digits.");
    return;
  }
  let answer;
  try {
    answer = await api("/transactions/" + encodeURIComponent(params.txid));
  } catch (e) {
    failed(el, "Transaction", e);
    return;
  }
  //  Sealed data is opened with the wallet's keys: its part first.
  if (context.walletReady) await context.walletReady;
  showTx(el, answer, context);
  context.viewShown("tx");
  //  Live: a pending one gets its block; a confirmed one its confirmations.
  let busy = false;
  const again = async () => {
    if (busy) return;
    busy = true;
    try {
      const fresh = await api("/transactions/" + encodeURIComponent(params.txid));
      if (!el.isConnected) return;
      el.replaceChildren();
      showTx(el, fresh, context);
    } catch (e) {
      //  Keep what is shown; the next event tries again.
    } finally {
      busy = false;
    }
  };
  context.onLeave(context.live.on("chain.block.", again));
}

function showTx(el, answer, context) {
  const t = answer.transaction;
  const confirmed = answer.status === "confirmed";
  const status = confirmed ? `confirmed (${answer.confirmations} confirmation(s))`
    : "pending: not in a block yet";
  const rows = [
    ["Txid", txLink(t.txid, true), "tx-txid"],
    ["Status", status, "tx-status"],
  ];
  if (confirmed) {
    rows.push(["Block", [blockLink(answer.block_height, "Block " + answer.block_height), " ",
      hashLink(route("block", answer.block_hash), answer.block_hash)], "tx-block"]);
    rows.push(["Confirmations", String(answer.confirmations), "tx-confirmations"]);
  } else if (typeof answer.received_ms === "number") {
    rows.push(["Received by this node", new Date(answer.received_ms).toLocaleString(),
      "tx-received"]);
  }
  rows.push(
    ["Time", whenMicros(t.timestamp)],
    ["Users", h("span", { class: "users" }, userLinks(t.users, Infinity)), "tx-users"],
    ["Sender key", keyLink(t.sender_public_key, true), "tx-sender"],
    ["Receiver key", keyLink(t.receiver_public_key, true), "tx-receiver"],
    ["Server key", t.server_public_key === "" ? h("span", { class: "muted" }, "none")
      : h("span", { class: "hash" }, t.server_public_key)],
    ["DH parameters", t.dh_parameters === "" ? h("span", { class: "muted" }, "none")
      : h("span", { class: "hash" }, t.dh_parameters)],
    ["Signature", t.signature ? h("span", { class: "hash" }, t.signature)
      : h("span", { class: "muted" }, "unsigned")],
  );
  const data = h("pre", { id: "tx-data", class: "json", tabindex: "0",
    "aria-label": "The transaction's data as JSON" }, JSON.stringify(t.data, null, 2));
  const dataSection = section("Data", data);
  if (sealed(t, context)) dataSection.insertBefore(sealedBox(t, context), data);
  el.append(section("Transaction", fields(rows, "tx")), dataSection);
}

function sealedBox(tx, context) {
  const out = h("output", { id: "tx-opened", "aria-live": "polite" });
  const wallet = context.wallet;
  const canOpen = wallet && typeof wallet.openSealed === "function";
  const button = h("button", { id: "tx-open-sealed", type: "button", disabled: canOpen ? null : true },
    "Open");
  button.addEventListener("click", async () => {
    say(out, "opening…");
    try {
      const opened = await wallet.openSealed(tx);
      if (!opened || !opened.ok) {
        say(out, (opened && opened.message) || "It could not be opened.", true);
        return;
      }
      const shown = opened.json !== undefined ? JSON.stringify(opened.json, null, 2) : opened.text;
      out.replaceChildren(h("span", {}, "Opened with your key:"),
        h("pre", { class: "json", id: "tx-plaintext" }, shown));
      out.classList.remove("error");
    } catch (e) {
      say(out, words(e), true);
    }
  });
  return h("div", { class: "sealed-box" },
    h("p", { id: "tx-sealed" }, h("strong", {}, "Sealed: "),
      "only the holder of the receiver key's secret can read this data. ",
      canOpen ? "If it is one of your wallet's keys, open it here."
        : "The wallet part of this page did not load, so it cannot be opened here."),
    button, out);
}

// --------------------------------------------------------------- history

export async function historyView(el, kind, who, context) {
  const title = kind === "user" ? "Transactions of the user " + who
    : "Transactions of the key " + who;
  const note = h("p", { id: "history-result", "aria-live": "polite" }, "…");
  const list = table(null, ["Block", "Confirmations", "Txid", "Users", "Data"], "history-rows");
  const more = h("button", { id: "history-more", type: "button", hidden: true }, "Older");
  const heading = h("h2", { class: kind === "key" ? "hash" : null }, title);
  el.append(h("section", {}, heading,
    h("p", { class: "muted" }, kind === "user"
      ? "Confirmed transactions that name this user, newest first."
      : "Confirmed transactions with this key as sender or receiver, newest first."),
    note, list.box, more));
  let next = null;
  let tip = null;

  const load = async (older) => {
    const q = new URLSearchParams({ [kind]: who, limit: String(HISTORY_PAGE) });
    if (older) q.set("before", next);
    try {
      const page = await api("/transactions?" + q);
      const rows = page.transactions.map((entry) => {
        const t = entry.transaction;
        const confirmations = h("td", { class: "confirmations" }, String(entry.confirmations));
        confirmations.dataset.height = entry.block_height;
        if (tip === null) tip = entry.block_height + entry.confirmations - 1;
        return row(blockLink(entry.block_height), confirmations, txLink(t.txid),
          h("span", { class: "users" }, userLinks(t.users)), dataCell(t, context));
      });
      if (older) list.body.append(...rows);
      else list.body.replaceChildren(...rows);
      next = page.next;
      more.hidden = !next;
      const shown = list.body.children.length;
      say(note, shown ? `${shown} confirmed transaction(s) of ${who}`
        : `no confirmed transaction of ${who}`);
    } catch (e) {
      say(note, words(e), true);
    }
  };
  more.addEventListener("click", () => load(true));
  await load(false);
  context.viewShown(kind);
  context.onLeave(context.live.on("chain.block.connected", (event) => {
    if (typeof event.index !== "number") return;
    tip = event.index;
    list.body.querySelectorAll("td.confirmations").forEach((td) => {
      td.textContent = String(tip - Number(td.dataset.height) + 1);
    });
  }));
}
