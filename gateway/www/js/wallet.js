// chainbus dashboard: the wallet view (#/wallet). Keys made or imported in
// the page, transactions signed in the page over the node's canonical
// bytes, data sealed for the receiver and opened with the user's keys.
//
//   import { routes, walletKeys, knownKeys, openSealed, isSealed } from "./js/wallet.js";
//
// The secrets stay in this page's memory; a key is written to localStorage
// only when its owner ticks "Keep in this browser". Nothing secret is ever
// sent: the node gets the signed transaction only. What is signed is shown
// before it is sent, and a send that timed out or found the node busy can
// be repeated with the same signed bytes (the node answers duplicate).
import { api, post } from "./api.js";
import { h, visible } from "./dom.js";
import * as canon from "./wallet-canon.js";
import * as sealing from "./wallet-seal.js";

// A failure's words: this module's and api.js's errors are sentences for
// the user; an error of the browser itself (a TypeError, a DOMException,
// ...) is not, and is replaced by one.
function inWords(e) {
  const native = e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError
    || e instanceof ReferenceError || (typeof DOMException !== "undefined" && e instanceof DOMException);
  return native || !e || typeof e.message !== "string" || !e.message
    ? "Something went wrong in this page; nothing was sent or changed. Reload the page and try again."
    : e.message;
}

const STORE_KEYS = "chainbus.wallet.keys";      // kept keys: [{label, public_key, seed}]
const STORE_BOOK = "chainbus.wallet.book";      // remembered keys: [{label, public_key}]
const KEY_TYPE = "chainbus-ed25519";
const HEX64 = /^[0-9a-fA-F]{64}$/;

const keys = [];        // {label, public_key, key (wallet-seal keyFromSeed), kept}
const book = [];        // {label, public_key}: other people's public keys
let lastSigned = null;  // {body, txid, tx, bytes, plaintext}: kept across renders

// ------------------------------------------------------------------ storage

function readStore(name) {
  try {
    const value = JSON.parse(localStorage.getItem(name) || "[]");
    return Array.isArray(value) ? value : [];
  } catch (e) {
    return [];
  }
}

function writeStore(name, list) {
  try {
    if (list.length) localStorage.setItem(name, JSON.stringify(list));
    else localStorage.removeItem(name);
    return true;
  } catch (e) {
    return false;
  }
}

function load() {
  for (const item of readStore(STORE_KEYS)) {
    const seed = canon.unhex(item && item.seed, 32);
    if (!seed) continue;
    const key = sealing.keyFromSeed(seed);
    if (key.public_key !== item.public_key || keys.some((k) => k.public_key === key.public_key))
      continue;
    keys.push({ label: String(item.label || "key"), public_key: key.public_key, key, kept: true });
  }
  for (const item of readStore(STORE_BOOK))
    if (item && HEX64.test(item.public_key))
      book.push({ label: String(item.label || ""), public_key: item.public_key.toLowerCase() });
}

const saveKept = () => writeStore(STORE_KEYS, keys.filter((k) => k.kept).map((k) =>
  ({ label: k.label, public_key: k.public_key, seed: canon.hex(k.key.seed) })));
const saveBook = () => writeStore(STORE_BOOK, book);

load();

// ------------------------------------------------------------------ contract

// The user's keys, public parts.
export function walletKeys() {
  return keys.map((k) => ({ label: k.label, public_key: k.public_key }));
}

// The address book: the user's own keys, then the remembered ones.
export function knownKeys() {
  const known = walletKeys();
  for (const entry of book)
    if (!known.some((k) => k.public_key === entry.public_key))
      known.push({ label: entry.label, public_key: entry.public_key });
  return known;
}

export function isSealed(tx) {
  return !!tx && sealing.isSealedParameters(tx.dh_parameters);
}

function hasBigInteger(node) {
  if (node.type === "int") return !Number.isSafeInteger(Number(node.value));
  if (node.type === "object") return node.entries.some(([, v]) => hasBigInteger(v));
  if (node.type === "array") return node.items.some(hasBigInteger);
  return false;
}

// Open a sealed transaction (as the API gives it) with the user's keys:
// {ok: true, text, json, label} or {ok: false, message}.
export async function openSealed(tx) {
  if (!isSealed(tx)) return { ok: false, message: "This transaction's data is not sealed." };
  let box;
  try {
    box = sealing.readSealing(tx.dh_parameters, tx.data);
  } catch (e) {
    return { ok: false, message: inWords(e) };
  }
  if (!keys.length)
    return { ok: false, message: "There is no key in this page: create or import the receiver's key first." };
  //  The receiver's key first; the others too, in case the key field lies.
  const order = [...keys].sort((a, b) => (b.public_key === tx.receiver_public_key)
    - (a.public_key === tx.receiver_public_key));
  for (const k of order) {
    const plaintext = sealing.open(box, k.key);
    if (!plaintext) continue;
    try {
      const tree = canon.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext));
      plaintext.fill(0);
      //  json is a convenience (1.0 reads as 1 there); it is left out when
      //  an integer is beyond 2^53 (a BigInt that JSON.stringify refuses):
      //  text is the exact value, written as the node writes JSON.
      const opened = { ok: true, text: canon.write(tree), label: k.label };
      if (!hasBigInteger(tree)) opened.json = canon.toPlain(tree);
      return opened;
    } catch (e) {
      return { ok: false, message: "It opened with your key \"" + k.label
        + "\", but what was sealed is not JSON text." };
    }
  }
  return { ok: false, message: "It is not addressed to your keys (or the sealed data was changed): "
    + "none of the keys in this page opens it." };
}

// ------------------------------------------------------------------ key files

export function keyFileText(k) {
  return "{\"type\": \"" + KEY_TYPE + "\", \"public_key\": \"" + k.public_key
    + "\", \"seed\": \"" + canon.hex(k.key.seed) + "\"}\n";
}

// A key file's text as `chainbus` reads it (cbus_key_load), or throws
// Error in words.
export function readKeyFile(text) {
  let tree;
  try {
    tree = canon.parse(text.trim());
  } catch (e) {
    throw new Error("This is not a chainbus key file: it is not JSON.");
  }
  const fields = tree.type === "object" ? Object.fromEntries(tree.entries) : null;
  if (!fields || !fields.type || fields.type.value !== KEY_TYPE)
    throw new Error("This is not a chainbus key file (a JSON object with \"type\": \"" + KEY_TYPE + "\").");
  const unknown = tree.entries.find(([name]) => !["type", "public_key", "seed"].includes(name));
  if (unknown) throw new Error("This key file has an unknown field \"" + unknown[0].slice(0, 32) + "\".");
  const seed = fields.seed && canon.unhex(fields.seed.value, 32);
  if (!seed) throw new Error("This key file is damaged: \"seed\" must be 64 hex digits.");
  const publicKey = fields.public_key && canon.unhex(fields.public_key.value, 32);
  if (!publicKey) throw new Error("This key file is damaged: \"public_key\" must be 64 hex digits.");
  const key = sealing.keyFromSeed(seed);
  if (key.public_key !== canon.hex(publicKey))
    throw new Error("This key file is damaged: its public_key is not its seed's.");
  return key;
}

function addKey(key, label) {
  const known = keys.find((k) => k.public_key === key.public_key);
  if (known) return known;
  const entry = { label: label || "key " + (keys.length + 1), public_key: key.public_key, key, kept: false };
  keys.push(entry);
  return entry;
}

// ------------------------------------------------------------------ DOM

function field(id, labelText, control, hint) {
  control.id = id;
  const parts = [h("label", { for: id }, labelText), control];
  if (hint) {
    control.setAttribute("aria-describedby", id + "-hint");
    parts.push(h("small", { id: id + "-hint", class: "wallet-hint" }, hint));
  }
  return h("div", { class: "wallet-field" }, parts);
}

function say(node, text, kind) {
  node.textContent = visible(text);
  node.className = "wallet-message" + (kind ? " wallet-" + kind : "");
}

function styleSheet() {
  if (document.querySelector("link[data-wallet-css]")) return;
  const url = new URL("../wallet.css", import.meta.url);
  document.head.append(h("link", { rel: "stylesheet", href: url.href, "data-wallet-css": "1" }));
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/octet-stream" }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ------------------------------------------------------------------ keys view

function keysSection(refresh) {
  const result = h("p", { id: "key-result", role: "status", class: "wallet-message" });
  const list = h("ul", { id: "key-list", class: "wallet-list" });
  const warning = "A key kept in this browser is stored unencrypted in its local storage: anyone "
    + "who uses this browser profile, or an extension in it, can copy it and sign as you. "
    + "Keep a key here only on a computer that is yours alone, and keep a key file as a backup.";

  function fill() {
    list.replaceChildren();
    if (!keys.length) list.append(h("li", {}, "No key yet: create one or import a key file."));
    keys.forEach((k, index) => {
      const keep = h("input", { type: "checkbox", id: "key-keep-" + index, "aria-describedby": "keep-warning" });
      keep.checked = k.kept;
      keep.addEventListener("change", () => {
        k.kept = keep.checked;
        if (!saveKept()) say(result, "This browser does not let the page store anything.", "error");
        else say(result, k.kept ? "\"" + k.label + "\" is kept in this browser."
          : "\"" + k.label + "\" is no longer kept in this browser: it is forgotten when the page closes.");
      });
      const name = k.label.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "chainbus";
      list.append(h("li", { class: "wallet-key" },
        h("strong", {}, k.label), " ",
        h("code", { class: "wallet-hex" }, k.public_key),
        h("div", { class: "wallet-row" },
          h("span", {}, keep, h("label", { for: "key-keep-" + index }, "Keep in this browser")),
          h("button", { type: "button", class: "key-export", onclick: () => {
            download(name + ".key", keyFileText(k));
            say(result, "Saved " + name + ".key. It holds your secret key in the clear: before "
              + "chainbus uses it, run chmod 600 " + name + ".key (chainbus refuses a key file "
              + "others may read).");
          } }, "Export key file"),
          h("button", { type: "button", onclick: () => {
            keys.splice(keys.indexOf(k), 1);
            saveKept();
            refresh();
          } }, "Forget"))));
    });
  }
  fill();

  const label = h("input", { name: "label", autocomplete: "off" });
  const create = h("form", { id: "key-new", class: "wallet-form", onsubmit: (event) => {
    event.preventDefault();
    const k = addKey(sealing.newKey(), label.value.trim());
    label.value = "";
    refresh();
    say(document.getElementById("key-result"), "Created \"" + k.label + "\": public key " + k.public_key
      + ". Export it as a key file to keep it.");
  } }, field("key-label", "Name for a new key", label), h("button", { type: "submit" }, "Create a key"));

  const file = h("input", { type: "file", name: "file" });
  const pasted = h("textarea", { name: "text", rows: 2, spellcheck: "false" });
  const importForm = h("form", { id: "key-import", class: "wallet-form", onsubmit: async (event) => {
    event.preventDefault();
    const out = document.getElementById("key-result");
    say(out, "Reading the key file…");
    let text = pasted.value;
    let name = "";
    if (file.files && file.files[0]) {
      if (file.files[0].size > 4096) return say(out, "That file is too large to be a chainbus key file.", "error");
      text = await file.files[0].text();
      name = file.files[0].name.replace(/\.key$/, "");
    }
    if (!text.trim()) return say(out, "Choose a key file, or paste its line.", "error");
    try {
      const k = addKey(readKeyFile(text), name);
      pasted.value = "";
      file.value = "";
      refresh();
      say(document.getElementById("key-result"), "Imported \"" + k.label + "\": public key " + k.public_key + ".");
    } catch (e) {
      say(out, inWords(e), "error");
    }
  } }, field("key-file", "Import a key file (made by chainbus key new)", file),
  field("key-text", "or paste the key file's line", pasted),
  h("button", { type: "submit" }, "Import"));

  return h("section", { class: "wallet-section", "aria-labelledby": "wallet-keys-title" },
    h("h2", { id: "wallet-keys-title" }, "Your keys"),
    h("p", {}, "Your secret keys stay in this page: they are never sent to the node. They are "
      + "forgotten when the page is closed or reloaded, unless you tick \"Keep in this browser\"."),
    h("p", { id: "keep-warning", class: "wallet-warning" }, "Warning: " + warning),
    list, result, create, importForm);
}

function bookSection(refresh) {
  const list = h("ul", { id: "book-list", class: "wallet-list" });
  for (const entry of book)
    list.append(h("li", {}, h("strong", {}, entry.label || "(no name)"), " ",
      h("code", { class: "wallet-hex" }, entry.public_key), " ",
      h("button", { type: "button", onclick: () => { book.splice(book.indexOf(entry), 1); saveBook(); refresh(); } },
        "Forget")));
  const label = h("input", { name: "label", autocomplete: "off" });
  const key = h("input", { name: "public_key", autocomplete: "off", spellcheck: "false" });
  const result = h("p", { id: "book-result", role: "status", class: "wallet-message" });
  const form = h("form", { id: "book-add", class: "wallet-form", onsubmit: (event) => {
    event.preventDefault();
    const hexKey = key.value.trim();
    if (!HEX64.test(hexKey)) return say(result, "A public key is 64 hex digits (chainbus key show FILE prints it).", "error");
    if (!book.some((b) => b.public_key === hexKey.toLowerCase()))
      book.push({ label: label.value.trim(), public_key: hexKey.toLowerCase() });
    saveBook();
    refresh();
  } }, field("book-label", "Name", label), field("book-key", "Their public key", key),
  h("button", { type: "submit" }, "Remember"));
  return h("section", { class: "wallet-section", "aria-labelledby": "wallet-book-title" },
    h("h2", { id: "wallet-book-title" }, "Address book"),
    h("p", {}, "Public keys of the people you send to (public, so kept in this browser)."),
    list, form, result);
}

// ------------------------------------------------------------------ sending

function nowMicros() {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

// Build, seal if asked and sign, from the form's values; throws Error in words.
function buildSigned(values) {
  const sender = keys.find((k) => k.public_key === values.sender);
  if (!sender) throw new Error("Choose the key to sign with (create or import one first).");
  const receiver = (values.pasted.trim() || values.receiver || "").toLowerCase();
  if (!HEX64.test(receiver))
    throw new Error("The receiver is a public key of 64 hex digits: choose one or paste it.");
  const named = values.users.split(",").map((u) => u.trim()).filter(Boolean);
  const users = named.length === 0 ? sender.public_key : named.length === 1 ? named[0] : named;
  let data;
  if (values.kind === "json") {
    if (!values.data.trim()) throw new Error("Write the data as JSON, or choose plain text.");
    data = canon.parse(values.data);
  } else {
    if (values.data.includes("\0") || !values.data.isWellFormed())
      throw new Error("The text holds a character that cannot be sent.");
    data = { type: "string", value: values.data };
  }
  if (canon.depth(data) > canon.MAX_DEPTH)
    throw new Error("The data is nested deeper than " + canon.MAX_DEPTH + " levels.");
  let dh = "", plaintext = null;
  if (values.seal) {
    plaintext = canon.write(data);
    const bytes = canon.utf8(plaintext);
    if (bytes.length > canon.TX_MAX_BYTES) throw new Error("The data is too large to seal.");
    const box = sealing.seal(canon.unhex(receiver, 32), bytes);
    data = { type: "object", entries: [["sealed", { type: "string", value: box.sealed }]] };
    dh = box.dh_parameters;
  }
  const tx = { users, data, dh_parameters: dh, server_public_key: values.server.trim(),
    receiver_public_key: receiver, sender_public_key: sender.public_key, timestamp: nowMicros() };
  const bytes = canon.canonicalBytes(tx);
  const signature = sealing.sign(sender.key, bytes);
  if (!sealing.verify(sender.key.publicKey, bytes, signature))
    throw new Error("The signature made in this page does not verify: nothing was sent.");
  tx.signature = canon.hex(signature);
  return { tx, bytes, plaintext, txid: canon.txid(bytes), body: canon.bodyText(tx, tx.signature),
    sent: false };
}

function signedView(signed) {
  const tx = signed.tx;
  const time = new Date(Number(tx.timestamp / 1000n)).toISOString();
  const rows = [
    ["users", typeof tx.users === "string" ? canon.writeString(tx.users)
      : "[" + tx.users.map(canon.writeString).join(", ") + "]"],
    ["data", canon.write(tx.data)],
    ["dh_parameters", canon.writeString(tx.dh_parameters)],
    ["server_public_key", canon.writeString(tx.server_public_key)],
    ["receiver_public_key", tx.receiver_public_key],
    ["sender_public_key", tx.sender_public_key],
    ["timestamp", tx.timestamp.toString() + " (" + time + ")"],
  ];
  return h("div", { id: "tx-signed", class: "wallet-signed" },
    h("h3", {}, "What you signed"),
    h("p", {}, "These seven fields, packed as the node packs them (canonical msgpack), are what "
      + "your key signed; the transaction id is the double SHA-256 of those bytes, computed in this page."),
    h("div", { class: "wallet-scroll" }, h("table", { id: "signed-fields" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Value"))),
      h("tbody", {}, rows.map(([name, value]) =>
        h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, h("code", { class: "wallet-hex" }, value))))))),
    signed.plaintext !== null ? h("p", {}, "Sealed for the receiver; what only they can read: ",
      h("code", { id: "signed-plaintext", class: "wallet-hex" }, signed.plaintext)) : null,
    h("p", {}, "Transaction id (txid): ", h("code", { id: "signed-txid", class: "wallet-hex" }, signed.txid)),
    h("p", {}, "Signature: ", h("code", { id: "signed-signature", class: "wallet-hex" }, tx.signature)),
    h("details", {}, h("summary", {}, "The " + signed.bytes.length + " signed bytes, in hex"),
      h("pre", { id: "signed-bytes", class: "wallet-pre" }, canon.hex(signed.bytes))),
    h("details", {}, h("summary", {}, "The JSON sent to the node"),
      h("pre", { id: "signed-body", class: "wallet-pre" }, signed.body)));
}

// Post the signed body; a timeout or 503 leaves it ready to send again.
async function send(signed, button, out) {
  button.disabled = true;
  say(out, "Sending…");
  try {
    const answer = await post("/transactions/new", signed.body);
    signed.sent = true;
    button.textContent = "Sent";
    const other = answer.txid && answer.txid !== signed.txid
      ? " Note: the node names it " + answer.txid + ", not the txid computed here." : "";
    if (answer.duplicate)
      say(out, (answer.confirmed ? "The node already has this transaction in its chain"
        : "The node already had this transaction (it is pending)") + ": it was sent before, and "
        + "it counts once. txid " + signed.txid + "." + other, "ok");
    else
      say(out, "Accepted: " + (answer.message || "the node took it") + ". txid " + signed.txid + "." + other, "ok");
  } catch (e) {
    const again = e.code === "timeout" || e.code === "unreachable" || e.status === 503 || e.status === 507
      || e.status === 502 || e.status === 500;
    if (again) {
      button.disabled = false;
      button.textContent = "Send the same transaction again";
      say(out, inWords(e) + " You can send it again: it is the same signed transaction, so if the "
        + "node did take it the first time it answers that it already has it, and it counts once.", "error");
    } else {
      say(out, "The node refused it: " + inWords(e), "error");
      button.textContent = "Refused";
    }
  }
}

function sendSection() {
  const sender = h("select", { name: "sender" },
    keys.map((k) => h("option", { value: k.public_key }, k.label + " (" + k.public_key.slice(0, 12) + "…)")));
  const receiver = h("select", { name: "receiver" },
    knownKeys().map((k) => h("option", { value: k.public_key }, (k.label || "(no name)") + " (" + k.public_key.slice(0, 12) + "…)")),
    h("option", { value: "" }, "(paste a key below)"));
  const pasted = h("input", { name: "receiver_pasted", autocomplete: "off", spellcheck: "false" });
  const users = h("input", { name: "users", autocomplete: "off" });
  const kindText = h("input", { type: "radio", name: "data_kind", value: "text", id: "data-kind-text", checked: true });
  const kindJson = h("input", { type: "radio", name: "data_kind", value: "json", id: "data-kind-json" });
  const data = h("textarea", { name: "data", rows: 4, spellcheck: "false" });
  const sealBox = h("input", { type: "checkbox", name: "seal", id: "tx-seal" });
  const server = h("input", { name: "server_key", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { id: "tx-error", role: "alert", class: "wallet-message" });
  const preview = h("div", { id: "tx-preview" });
  const result = h("p", { id: "tx-result", role: "status", class: "wallet-message" });
  const sendButton = h("button", { type: "button", id: "tx-send", hidden: true }, "Send to the node");

  function showSigned(signed) {
    preview.replaceChildren(signedView(signed));
    sendButton.hidden = false;
    sendButton.disabled = signed.sent;
    sendButton.textContent = signed.sent ? "Sent" : "Send to the node";
  }
  sendButton.addEventListener("click", () => lastSigned && send(lastSigned, sendButton, result));
  if (lastSigned) showSigned(lastSigned);

  const form = h("form", { id: "tx-sign", class: "wallet-form", onsubmit: (event) => {
    event.preventDefault();
    say(error, "");
    say(result, "");
    try {
      lastSigned = buildSigned({ sender: sender.value, receiver: receiver.value, pasted: pasted.value,
        users: users.value, kind: kindJson.checked ? "json" : "text", data: data.value,
        seal: sealBox.checked, server: server.value });
      showSigned(lastSigned);
      say(result, "Signed in this page; nothing is sent until you press \"Send to the node\".");
    } catch (e) {
      say(error, inWords(e), "error");
    }
  } },
  keys.length ? null : h("p", { class: "wallet-warning" }, "Create or import a key above to sign with."),
  field("tx-sender", "Sign with (sender)", sender),
  field("tx-receiver", "Receiver", receiver),
  field("tx-receiver-pasted", "or paste the receiver's public key", pasted, "64 hex digits; it takes the place of the choice above."),
  field("tx-users", "Users", users, "Comma-separated names the transaction is listed under; empty: your public key, as chainbus tx send does."),
  h("fieldset", { class: "wallet-kind" }, h("legend", {}, "The data is"),
    h("span", {}, kindText, h("label", { for: "data-kind-text" }, "plain text (sent as a JSON string)")),
    h("span", {}, kindJson, h("label", { for: "data-kind-json" }, "JSON"))),
  field("tx-data", "Data", data),
  h("div", { class: "wallet-field" }, h("span", {}, sealBox,
    h("label", { for: "tx-seal" }, "Seal the data for the receiver (only the receiver's secret key opens it; not even you, afterwards)"))),
  field("tx-server", "Server public key (optional)", server),
  h("button", { type: "submit" }, "Sign"), error);

  return h("section", { class: "wallet-section", "aria-labelledby": "wallet-send-title" },
    h("h2", { id: "wallet-send-title" }, "Send a transaction"), form, preview, sendButton, result);
}

function openSection() {
  const txid = h("input", { name: "txid", autocomplete: "off", spellcheck: "false" });
  const result = h("p", { id: "open-result", role: "status", class: "wallet-message" });
  const text = h("pre", { id: "open-text", class: "wallet-pre", hidden: true });
  const form = h("form", { id: "tx-open", class: "wallet-form", onsubmit: async (event) => {
    event.preventDefault();
    text.hidden = true;
    const id = txid.value.trim().toLowerCase();
    if (!HEX64.test(id)) return say(result, "A transaction id is 64 hex digits.", "error");
    say(result, "Fetching…");
    try {
      const answer = await api("/transactions/" + id);
      const opened = await openSealed(answer.transaction);
      if (!opened.ok) return say(result, opened.message, "error");
      say(result, "Opened with your key \"" + opened.label + "\":", "ok");
      text.textContent = visible(opened.text);
      text.hidden = false;
    } catch (e) {
      say(result, inWords(e), "error");
    }
  } }, field("open-txid", "Transaction id (txid)", txid), h("button", { type: "submit" }, "Open"));
  return h("section", { class: "wallet-section", "aria-labelledby": "wallet-open-title" },
    h("h2", { id: "wallet-open-title" }, "Open sealed data"),
    h("p", {}, "Read data sealed for one of your keys."), form, result, text);
}

// Whether a field holds other than what it was made with.
function changedByUser(field) {
  if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
  if (field.tagName === "SELECT") {
    const made = [...field.options].find((o) => o.defaultSelected) || field.options[0];
    return !!made && field.value !== made.value;
  }
  return field.value !== field.defaultValue;
}

async function render(el) {
  styleSheet();
  const view = h("div", { class: "wallet" });
  //  The sections are made afresh when the keys or the address book
  //  change; what the user typed or chose in the forms is kept (not a
  //  file choice, which a page cannot set; not the keys' own boxes, which
  //  show each key's state).
  const refresh = () => {
    const focused = document.activeElement && document.activeElement.id;
    const typed = [...view.querySelectorAll("form input[id], form textarea[id], form select[id]")]
      .filter((field) => field.type !== "file" && changedByUser(field))
      .map((field) => [field.id, field.value, field.checked]);
    view.replaceChildren(keysSection(refresh), bookSection(refresh), sendSection(), openSection());
    for (const [id, value, checked] of typed) {
      const field = document.getElementById(id);
      if (!field || !view.contains(field)) continue;
      if (field.type === "checkbox" || field.type === "radio") field.checked = checked;
      else if (field.tagName !== "SELECT" || [...field.options].some((o) => o.value === value))
        field.value = value;
    }
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  };
  refresh();
  el.replaceChildren(h("h1", { class: "wallet-title" }, "Wallet"), view);
}

export const routes = [{ path: "/wallet", title: "Wallet", render }];
