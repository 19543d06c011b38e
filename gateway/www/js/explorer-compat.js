// chainbus dashboard: the explorer's paged reads, with a stand-in for a
// node whose gateway does not have the paged routes yet.
//
//   blocksPage(limit)                 -> GET /blocks?limit=N
//   blockTransactions(id, start, n)   -> GET /blocks/{id}/transactions?start=&limit=
//
// A gateway without a route answers its static-file 404 ("Not found"),
// where a route that exists says what is missing ("Block not found"). On
// that 404 only, these fall back to the routes every node has:
// GET /status and GET /blocks/<h> (whole blocks: slow for big blocks, as
// the page before issue 12 was), shaped as the paged routes answer.
// Remove once every node serves the paged routes.
"use strict";

import { api } from "./api.js";

function missingRoute(e) {
  return e && e.status === 404 && e.body && e.body.message === "Not found";
}

function summary(b, tip) {
  const { transactions, ...rest } = b;
  return { ...rest, transaction_count: transactions.length,
    confirmations: tip === null ? b.confirmations : tip - b.index + 1 };
}

export async function blocksPage(limit) {
  try {
    return await api("/blocks?limit=" + limit);
  } catch (e) {
    if (!missingRoute(e)) throw e;
  }
  const status = await api("/status");
  const tip = status.height;
  const blocks = [];
  for (let height = tip; height !== null && height >= 0 && height > tip - limit; height--)
    blocks.push(summary(await api("/blocks/" + height), tip));
  const last = blocks[blocks.length - 1];
  return { blocks, next: last && last.index > 0 ? last.index : null };
}

export async function blockTransactions(id, start, limit) {
  const q = new URLSearchParams({ start: String(start), limit: String(limit) });
  try {
    return await api("/blocks/" + encodeURIComponent(id) + "/transactions?" + q);
  } catch (e) {
    if (!missingRoute(e)) throw e;
  }
  const b = await api("/blocks/" + encodeURIComponent(id));
  const end = start + limit;
  return { block: summary(b, null), transactions: b.transactions.slice(start, end),
    start, next: end < b.transactions.length ? end : null };
}
