// chainbus dashboard wallet: the node's JSON rules and canonical msgpack.
//
// A transaction's identity is the canonical msgpack map the node makes from
// the JSON it is sent (libcommon/src/cbus_json.c, cbus_tx.c). The page signs
// those bytes, so it must make them exactly as the node does:
//   - JSON is read by our own parser, not JSON.parse: object keys keep the
//     order given (JS objects move integer-like keys first), `1` and `1.0`
//     stay an integer and a float64, integers are exact (BigInt, 64 bits
//     signed as jansson's json_int_t), duplicate keys are refused (jansson
//     JSON_REJECT_DUPLICATES), and a real must read back as given (the
//     node's exactness rule), so what is refused here is what the node
//     refuses;
//   - msgpack-c's choices: the smallest int format for its sign, str8/16/32,
//     float64 for every real;
//   - JSON written back as the node writes it (", " and ": ", C's %g
//     shortest text for reals, "1.0" kept real): the plaintext of a sealed
//     value and the body the page posts.
// A value is a tree of { type, ... }: object (entries [[key, value]]),
// array (items), string (value), int (value: BigInt), real (value:
// Number), bool (value), null.
"use strict";

export class CanonError extends Error {}

// libcommon/include/cbus_json.h CBUS_JSON_MAX_DEPTH, cbus_tx.h limits.
export const MAX_DEPTH = 32;
export const TX_MAX_BYTES = 256 * 1024;
export const MAX_USERS = 64;
export const MAX_USER_BYTES = 256;
export const MAX_FIELD_BYTES = 4096;
const INT64_MIN = -(2n ** 63n), INT64_MAX = 2n ** 63n - 1n;

const encoder = new TextEncoder();
export const utf8 = (text) => encoder.encode(text);

// ------------------------------------------------------------------ reading

// A JSON number's significant digits and exponent (value = 0.DIGITS x
// 10^exponent), as cbus_json.c's s_decimal: null beyond 17 digits.
function decimal(text) {
  let at = 0, negative = false;
  if (text[at] === "-" || text[at] === "+") negative = text[at++] === "-";
  let point = 0, leading = true, seenPoint = false, zeros = 0, digits = "";
  for (; at < text.length && /[0-9.]/.test(text[at]); at++) {
    const c = text[at];
    if (c === ".") { seenPoint = true; continue; }
    if (leading && c === "0") { if (seenPoint) point--; continue; }
    leading = false;
    if (!seenPoint) point++;
    if (c === "0") { zeros++; continue; }
    if (digits.length + zeros + 1 > 17) return null;
    digits += "0".repeat(zeros) + c;
    zeros = 0;
  }
  let exponent = 0;
  if (text[at] === "e" || text[at] === "E") {
    at++;
    const minus = text[at] === "-";
    if (text[at] === "-" || text[at] === "+") at++;
    for (; at < text.length; at++) if (exponent < 100000) exponent = exponent * 10 + Number(text[at]);
    if (minus) exponent = -exponent;
  }
  if (!digits) return { negative: false, digits, exponent: 0 };
  return { negative, digits, exponent: point + exponent };
}

// The node's rule for a number with a fraction or an exponent: it must be
// the double's shortest text (cbus_json.c s_real_exact).
function realExact(text, value) {
  const given = decimal(text);
  if (!given || !Number.isFinite(value)) return false;
  if (!given.digits) return value === 0;
  const same = (a, b) => a && a.negative === b.negative && a.digits === b.digits
    && a.exponent === b.exponent;
  if (!same(decimal(value.toExponential(given.digits.length - 1)), given)) return false;
  if (given.digits.length > 1 && Number(value.toExponential(given.digits.length - 2)) === value)
    return false;
  return true;
}

function where(text, at) {
  const before = text.slice(0, at).split("\n");
  return "line " + before.length + ", column " + (before[before.length - 1].length + 1);
}

// Parse JSON text into a value tree, or throw CanonError in words.
export function parse(text) {
  let at = 0;
  const fail = (words) => { throw new CanonError(words + " (" + where(text, at) + ")"); };
  const space = () => { while (at < text.length && " \t\n\r".includes(text[at])) at++; };
  function string() {
    at++;                                           // the opening quote
    let out = "";
    for (;;) {
      if (at >= text.length) fail("A text in quotes is not closed");
      const c = text[at];
      if (c === "\"") { at++; break; }
      if (c < " ") fail("A line break or control character inside quotes must be written as an escape such as \\n");
      if (c !== "\\") { out += c; at++; continue; }
      const e = text[at + 1];
      const simple = { "\"": "\"", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e in simple) { out += simple[e]; at += 2; continue; }
      if (e !== "u" || !/^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6)))
        fail("Unknown escape in a text in quotes");
      const unit = parseInt(text.slice(at + 2, at + 6), 16);
      if (unit === 0) fail("A text cannot hold the character \\u0000");
      out += String.fromCharCode(unit);
      at += 6;
    }
    if (!out.isWellFormed()) fail("A text holds half of a \\u surrogate pair");
    return out;
  }
  function number() {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 2000));
    if (!m) fail("Not a number");
    const source = m[0];
    at += source.length;
    if (!m[2] && !m[3]) {
      const value = BigInt(source);
      if (value < INT64_MIN || value > INT64_MAX)
        fail("The integer " + source.slice(0, 40) + " is too large: integers must be between -2^63 and 2^63-1; send it as a text in quotes");
      return { type: "int", value };
    }
    const value = Number(source);
    if (!realExact(source, value))
      fail("The number " + source.slice(0, 40) + " cannot be kept exactly: a number with a fraction or an exponent is kept as a double (at most 17 significant digits, magnitude up to 1.8e308); send it as a text in quotes");
    return { type: "real", value };
  }
  function value(depth) {
    if (depth > 2000) fail("Nested too deep");
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const entries = [], seen = new Set();
      space();
      if (text[at] === "}") { at++; return { type: "object", entries }; }
      for (;;) {
        space();
        if (text[at] !== "\"") fail("Expected a name in quotes");
        const key = string();
        if (seen.has(key)) fail("The name \"" + key.slice(0, 40) + "\" is given twice in one object");
        seen.add(key);
        space();
        if (text[at] !== ":") fail("Expected ':' after a name");
        at++;
        entries.push([key, value(depth + 1)]);
        space();
        if (text[at] === ",") { at++; continue; }
        if (text[at] === "}") { at++; return { type: "object", entries }; }
        fail("Expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++;
      const items = [];
      space();
      if (text[at] === "]") { at++; return { type: "array", items }; }
      for (;;) {
        items.push(value(depth + 1));
        space();
        if (text[at] === ",") { at++; continue; }
        if (text[at] === "]") { at++; return { type: "array", items }; }
        fail("Expected ',' or ']'");
      }
    }
    if (c === "\"") return { type: "string", value: string() };
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, node] of [["true", { type: "bool", value: true }],
      ["false", { type: "bool", value: false }], ["null", { type: "null" }]])
      if (text.startsWith(word, at)) { at += word.length; return node; }
    if (at >= text.length) fail("The text ends where a value was expected");
    fail("Not JSON here: a text must be in double quotes, or choose \"plain text\"");
  }
  const result = value(0);
  space();
  if (at < text.length) fail("More after the end of the value");
  return result;
}

export function depth(node) {
  if (node.type === "object") return 1 + Math.max(-1, ...node.entries.map(([, v]) => depth(v)));
  if (node.type === "array") return 1 + Math.max(-1, ...node.items.map(depth));
  return 0;
}

// A plain JS value of a tree (integers beyond 2^53 as BigInt).
export function toPlain(node) {
  switch (node.type) {
    case "object": return Object.fromEntries(node.entries.map(([k, v]) => [k, toPlain(v)]));
    case "array": return node.items.map(toPlain);
    case "int": return Number.isSafeInteger(Number(node.value)) ? Number(node.value) : node.value;
    case "null": return null;
    default: return node.value;
  }
}

// ------------------------------------------------------------------ writing

// C's "%.*g" of value at precision p (glibc), which cbus_json.c writes.
function formatG(value, p) {
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const [mantissa, exp] = value.toExponential(p - 1).split("e");
  const x = Number(exp);
  const trim = (s) => s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  if (x < -4 || x >= p) {
    const e = Math.abs(x) < 10 ? "0" + Math.abs(x) : String(Math.abs(x));
    return trim(mantissa) + "e" + (x < 0 ? "-" : "+") + e;
  }
  return trim(value.toFixed(Math.max(0, p - 1 - x)));
}

// cbus_json_write_double: the shortest %g that reads back, kept real.
export function writeDouble(value) {
  let text = "";
  for (let p = 1; p <= 17; p++) {
    text = formatG(value, p);
    if (Number(text) === value) break;
  }
  return /[.eE]/.test(text) ? text : text + ".0";
}

// cbus_json_write_string: only what JSON must escape; UTF-8 kept as is.
export function writeString(text) {
  let out = "\"";
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c === "\"") out += "\\\"";
    else if (c === "\\") out += "\\\\";
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "\b") out += "\\b";
    else if (c === "\f") out += "\\f";
    else if (code < 0x20) out += "\\u00" + code.toString(16).padStart(2, "0");
    else out += c;
  }
  return out + "\"";
}

// A tree as the node writes JSON.
export function write(node) {
  switch (node.type) {
    case "object":
      return "{" + node.entries.map(([k, v]) => writeString(k) + ": " + write(v)).join(", ") + "}";
    case "array": return "[" + node.items.map(write).join(", ") + "]";
    case "string": return writeString(node.value);
    case "int": return node.value.toString();
    case "real": return writeDouble(node.value);
    case "bool": return node.value ? "true" : "false";
    default: return "null";
  }
}

// ------------------------------------------------------------------ msgpack

class Packer {
  constructor() { this.bytes = []; }
  byte(...b) { for (const x of b) this.bytes.push(x); }
  big(value, count) {                       // count bytes, big-endian
    for (let i = count - 1; i >= 0; i--) this.bytes.push(Number((value >> BigInt(8 * i)) & 0xffn));
  }
  head(small, base, code16, code32, n) {
    if (n < small) this.byte(base | n);
    else if (n < 65536) { this.byte(code16); this.big(BigInt(n), 2); }
    else { this.byte(code32); this.big(BigInt(n), 4); }
  }
  str(text) {
    const b = utf8(text);
    if (b.length < 32) this.byte(0xa0 | b.length);
    else if (b.length < 256) this.byte(0xd9, b.length);
    else if (b.length < 65536) { this.byte(0xda); this.big(BigInt(b.length), 2); }
    else { this.byte(0xdb); this.big(BigInt(b.length), 4); }
    for (const x of b) this.bytes.push(x);
  }
  // msgpack-c's msgpack_pack_int64 / _uint64: the smallest format.
  int(d) {
    if (d < -32n) {
      if (d < -32768n) {
        if (d < -2147483648n) { this.byte(0xd3); this.big(BigInt.asUintN(64, d), 8); }
        else { this.byte(0xd2); this.big(BigInt.asUintN(32, d), 4); }
      } else if (d < -128n) { this.byte(0xd1); this.big(BigInt.asUintN(16, d), 2); }
      else { this.byte(0xd0); this.big(BigInt.asUintN(8, d), 1); }
    } else if (d < 128n) this.byte(Number(BigInt.asUintN(8, d)));
    else if (d < 65536n) {
      if (d < 256n) this.byte(0xcc, Number(d));
      else { this.byte(0xcd); this.big(d, 2); }
    } else if (d < 4294967296n) { this.byte(0xce); this.big(d, 4); }
    else { this.byte(0xcf); this.big(d, 8); }
  }
  double(value) {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value);
    this.byte(...new Uint8Array(view.buffer));
  }
  value(node, level) {
    if (level > MAX_DEPTH)
      throw new CanonError("The data is nested deeper than " + MAX_DEPTH + " levels");
    switch (node.type) {
      case "object":
        this.head(16, 0x80, 0xde, 0xdf, node.entries.length);
        for (const [k, v] of node.entries) { this.str(k); this.value(v, level + 1); }
        return;
      case "array":
        this.head(16, 0x90, 0xdc, 0xdd, node.items.length);
        for (const v of node.items) this.value(v, level + 1);
        return;
      case "string": this.str(node.value); return;
      case "int": this.int(node.value); return;
      case "real": this.byte(0xcb); this.double(node.value); return;
      case "bool": this.byte(node.value ? 0xc3 : 0xc2); return;
      default: this.byte(0xc0);
    }
  }
}

// The seven canonical fields, in their canonical order.
export const FIELDS = ["users", "data", "dh_parameters", "server_public_key",
  "receiver_public_key", "sender_public_key", "timestamp"];

// Check a transaction's fields as cbus_tx_new_from_json does; throws
// CanonError. tx: { users: string | [string], data: tree, the four key
// fields: strings, timestamp: BigInt }.
export function check(tx) {
  const users = typeof tx.users === "string" ? [tx.users] : tx.users;
  if (!Array.isArray(users) || users.length === 0)
    throw new CanonError("Users: name at least one user");
  if (users.length > MAX_USERS) throw new CanonError("Users: at most " + MAX_USERS + " users");
  for (const user of users) {
    const size = utf8(user).length;
    if (size === 0 || size > MAX_USER_BYTES)
      throw new CanonError("Users: each user must be 1 to " + MAX_USER_BYTES + " bytes");
    if (!user.isWellFormed() || user.includes("\0"))
      throw new CanonError("Users: a user name holds a character that cannot be sent");
  }
  for (const field of FIELDS.slice(2, 6))
    if (utf8(tx[field]).length > MAX_FIELD_BYTES)
      throw new CanonError(field + ": at most " + MAX_FIELD_BYTES + " bytes");
  if (tx.timestamp < 1n || tx.timestamp > 9007199254740991n)
    throw new CanonError("The timestamp must be a positive integer of microseconds");
}

// The canonical bytes (what is signed; the txid is their double SHA-256).
export function canonicalBytes(tx) {
  check(tx);
  const pk = new Packer();
  pk.byte(0x87);                            // fixmap of the seven keys
  pk.str("users");
  if (typeof tx.users === "string") pk.str(tx.users);
  else { pk.head(16, 0x90, 0xdc, 0xdd, tx.users.length); tx.users.forEach((u) => pk.str(u)); }
  pk.str("data");
  pk.value(tx.data, 0);
  for (const field of FIELDS.slice(2, 6)) { pk.str(field); pk.str(tx[field]); }
  pk.str("timestamp");
  pk.int(tx.timestamp);
  if (pk.bytes.length + 64 + 16 > TX_MAX_BYTES)
    throw new CanonError("The transaction is too large: " + pk.bytes.length
      + " bytes encoded, at most " + (TX_MAX_BYTES - 80));
  return new Uint8Array(pk.bytes);
}

// The JSON body to post: the seven fields, then the signature, written
// as the node writes them (so it reads back to the same bytes).
export function bodyText(tx, signatureHex) {
  const users = typeof tx.users === "string" ? writeString(tx.users)
    : "[" + tx.users.map(writeString).join(", ") + "]";
  const parts = ["\"users\": " + users, "\"data\": " + write(tx.data)];
  for (const field of FIELDS.slice(2, 6)) parts.push(writeString(field) + ": " + writeString(tx[field]));
  parts.push("\"timestamp\": " + tx.timestamp.toString());
  if (signatureHex) parts.push("\"signature\": " + writeString(signatureHex));
  return "{" + parts.join(", ") + "}";
}

// ------------------------------------------------------------------ bytes

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function unhex(text, size) {
  if (typeof text !== "string" || text.length !== 2 * size || !/^[0-9a-fA-F]*$/.test(text))
    return null;
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  return out;
}

// SHA-256 (FIPS 180-4). Written here because WebCrypto's digest exists
// only in a secure context (https or localhost), and a node's dashboard is
// often opened over plain http from another machine; Debian ships no
// browser-ready SHA-256 module (node-hash.js is CommonJS over several
// files). Checked against known vectors and the node's txids in the tests.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

export function sha256(message) {
  const length = message.length;
  const padded = new Uint8Array(((length + 9 + 63) >> 6) << 6);
  padded.set(message);
  padded[length] = 0x80;
  const bits = new DataView(padded.buffer);
  bits.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  bits.setUint32(padded.length - 4, (length * 8) >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = bits.getUint32(block + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  h.forEach((x, i) => view.setUint32(4 * i, x));
  return out;
}

// The txid: double SHA-256 of the canonical bytes, as hex.
export function txid(bytes) {
  return hex(sha256(sha256(bytes)));
}
