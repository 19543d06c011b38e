// chainbus dashboard: the one search box (header form #search).
//
// What a term is, tried in this order, and said in words (#search-result):
//   64 hex digits   -> a block hash, else a txid (pending or confirmed),
//                      else a key with history, else a key with none yet
//                      (also when all 64 are decimal digits)
//   1-15 digits     -> a height: #/block/<h> (a user of that name is
//                      offered as a link too)
//   anything else   -> a user with history, else a key with history,
//                      else the user (an empty history)
"use strict";

import { api, blockTransactions } from "./api.js";
import { route, link, HEX64, HEIGHT, say, words, visible } from "./explorer-dom.js";

// The answer for 200; false for 404 (not that); throws for any other
// failure. path: a route, or a function that reads.
async function exists(path) {
  try {
    return await (typeof path === "function" ? path() : api(path));
  } catch (e) {
    if (e.status === 404) return false;
    throw e;
  }
}

async function hasHistory(kind, who) {
  const q = new URLSearchParams({ [kind]: who, limit: "1" });
  const page = await api("/transactions?" + q);
  return page.transactions.length > 0;
}

// {href, words, also?}: where the term leads and what it was.
export async function resolve(term) {
  if (HEX64.test(term)) {
    const hex = term.toLowerCase();
    if (await exists(() => blockTransactions(hex, 0, 1)))
      return { href: route("block", hex), words: "That is a block hash." };
    const tx = await exists("/transactions/" + hex);
    if (tx)
      return { href: route("tx", hex), words: `That is a transaction (${tx.status}).` };
    if (await hasHistory("key", hex))
      return { href: route("key", hex), words: "That is a key: its transactions." };
    return { href: route("key", hex),
      words: "No block or transaction has that hash; as a key it has no transactions yet." };
  }
  //  Digits that could be a height (64 digits are a hash, above): a
  //  longer number is no height of any chain, only a name.
  if (HEIGHT.test(term)) {
    const height = term.replace(/^0+(?=.)/, "");
    const found = await exists(() => blockTransactions(height, 0, 1));
    return {
      href: route("block", height),
      words: found ? `“${term}” is a height: block ${height}.`
        : `“${term}” is a height, but this chain has no block ${height}.`,
      also: link(route("user", term), `the user “${term}”`),
    };
  }
  if (await hasHistory("user", term))
    return { href: route("user", term), words: `“${term}” is a user: their transactions.` };
  if (await hasHistory("key", term))
    return { href: route("key", term), words: `“${term}” is a key: its transactions.` };
  return { href: route("user", term),
    words: `Nothing found for “${term}”: no block, transaction, user or key with it.` };
}

export function wireSearch() {
  const form = document.getElementById("search");
  const out = document.getElementById("search-result");
  let searching = 0;
  let shownFor = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const term = form.elements.q.value.trim();
    if (!term) return;
    const mine = ++searching;
    say(out, "searching…");
    try {
      const found = await resolve(term);
      if (mine !== searching) return;
      out.replaceChildren(visible(found.words));
      if (found.also) out.append(" Or ", found.also, ".");
      out.classList.remove("error");
      shownFor = found.href;
      if (location.hash === found.href) window.dispatchEvent(new HashChangeEvent("hashchange"));
      else location.hash = found.href;
    } catch (e) {
      if (mine === searching) say(out, words(e), true);
    }
  });
  //  The words stay with the view they led to.
  window.addEventListener("hashchange", () => {
    if (shownFor !== null && location.hash !== shownFor) {
      shownFor = null;
      out.replaceChildren();
    }
  });
}
