// chainbus dashboard: small DOM helpers of the explorer views.
//
// Data from the node or a user only ever reaches the page through
// textContent and DOM nodes made with dom.js's h (never innerHTML).
"use strict";

import { h, visible } from "./dom.js";

// The views make their elements with dom.js's h (re-exported here).
export { h, visible };

// The hash route of a view, its parts encoded.
export function route(kind, id, query) {
  let path = "#/" + kind + (id === undefined ? "" : "/" + encodeURIComponent(id));
  if (query) {
    const q = new URLSearchParams(query).toString();
    if (q) path += "?" + q;
  }
  return path;
}

// A link to a view.
export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export const HEX64 = /^[0-9a-f]{64}$/i;
// A height the page takes (longer digits are no height of any chain).
export const HEIGHT = /^[0-9]{1,15}$/;

// 0003a1b2…ef1f: a hash short enough for a table cell (the full one is
// the link's title and what a screen reader says).
export function short(hash) {
  const s = String(hash);
  return s.length > 20 ? s.slice(0, 10) + "…" + s.slice(-6) : s;
}

// A hash or txid as a link: shortened in tables, full in detail views.
export function hashLink(href, hash, full) {
  return h("a", { href, class: "hash", title: full ? null : hash,
    "aria-label": full ? null : hash }, full ? hash : short(hash));
}

export function blockLink(idOrHash, text) {
  return link(route("block", idOrHash), text === undefined ? String(idOrHash) : text);
}

export function txLink(txid, full) {
  return hashLink(route("tx", txid), txid, full);
}

// The users of a transaction as links, at most `max` (then "+N more").
export function userLinks(users, max = 3) {
  const list = [].concat(users);
  const out = [];
  list.slice(0, max).forEach((user, index) => {
    if (index) out.push(", ");
    out.push(link(route("user", user), String(user), { class: "user" }));
  });
  if (list.length > max) out.push(" +" + (list.length - max) + " more");
  return out;
}

// A key as a link to its history (keys are any string in unsigned
// transactions; 64 hex digits when signed).
export function keyLink(key, full) {
  if (key === "" || key === undefined || key === null) return h("span", { class: "muted" }, "none");
  return HEX64.test(key) ? hashLink(route("key", key), key, full)
                         : link(route("key", key), String(key));
}

// Seconds (blocks) or microseconds (transactions) since 1970 as a date.
export function when(seconds) {
  if (typeof seconds !== "number") return "?";
  return new Date(seconds * 1000).toLocaleString();
}

export function whenMicros(micros) {
  return typeof micros === "number" ? when(micros / 1e6) : "?";
}

// An output line: words, red when an error.
export function say(element, words, error) {
  element.textContent = visible(words);
  element.classList.toggle("error", !!error);
}

// Words for any failure: ApiError's message is for users; anything else
// (a bug of ours) gets a sentence, not the exception's text.
export function words(error) {
  if (error && error.name === "ApiError") return error.message;
  if (error && typeof error.status === "number" && typeof error.message === "string")
    return error.message;
  return "Something went wrong in this page; reloading it may help.";
}

// A table in its own scrolling box (wide tables never widen the page).
export function table(caption, headers, id) {
  const body = h("tbody", { id });
  const box = h("div", { class: "table-box" },
    h("table", {}, caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      body));
  return { box, body };
}

export function row(...cells) {
  return h("tr", {}, cells.map((cell) =>
    cell instanceof HTMLTableCellElement ? cell : h("td", {}, cell)));
}

// A definition list from [term, value] pairs (value: text or nodes).
export function fields(pairs, id) {
  const list = h("dl", { id, class: "fields" });
  for (const [term, value, valueId] of pairs) {
    list.append(h("dt", {}, term), h("dd", { id: valueId }, value));
  }
  return list;
}

// A section of a view with its heading.
export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

// A data value as the node gives it: JSON text, bounded for table cells.
export function dataPreview(data, max = 60) {
  let text;
  try {
    text = JSON.stringify(data);
  } catch (e) {
    text = "?";
  }
  if (text === undefined) text = "null";
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
