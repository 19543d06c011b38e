// chainbus dashboard wallet: Ed25519 keys, signatures and sealed data
// (scheme x25519-box:v1 of docs/transactions.md, "Sealed data").
//
// tweetnacl-js (vendored from Debian's node-tweetnacl) does Ed25519, X25519,
// SHA-512 and the box (nacl.box is libsodium's crypto_box_easy: the 16-byte
// tag, then the ciphertext; its key is crypto_box_beforenm's). What
// tweetnacl lacks is libsodium's Ed25519 -> X25519 conversion of a public
// key, done here with BigInt field arithmetic, including libsodium's checks
// (the key is a point of the curve's main subgroup, not of small order), so
// that the page refuses to seal to exactly the keys `chainbus` refuses.
import "../vendor/tweetnacl/nacl-fast.js";
import { hex, unhex } from "./wallet-canon.js";

const nacl = self.nacl;
export const SCHEME = "x25519-box:v1";

// ------------------------------------------------------------------ keys

// A keypair from a 32-byte seed (crypto_sign_seed_keypair).
export function keyFromSeed(seed) {
  const pair = nacl.sign.keyPair.fromSeed(seed);
  return { seed, secretKey: pair.secretKey, publicKey: pair.publicKey,
    public_key: hex(pair.publicKey) };
}

export function newKey() {
  return keyFromSeed(nacl.randomBytes(32));
}

export function sign(key, bytes) {
  return nacl.sign.detached(bytes, key.secretKey);
}

export function verify(publicKey, bytes, signature) {
  return nacl.sign.detached.verify(bytes, signature, publicKey);
}

// ------------------------------------------------------------------ field

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a) => ((a % P) + P) % P;
function power(base, exponent) {
  let result = 1n;
  base = mod(base);
  while (exponent > 0n) {
    if (exponent & 1n) result = (result * base) % P;
    base = (base * base) % P;
    exponent >>= 1n;
  }
  return result;
}
const invert = (a) => power(a, P - 2n);
const D = mod(-121665n * invert(121666n));
const SQRT_M1 = power(2n, (P - 1n) / 4n);

function leToBig(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

function bigToLe(n) {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) { out[i] = Number(n & 0xffn); n >>= 8n; }
  return out;
}

// Extended coordinates (X, Y, Z, T) on -x^2 + y^2 = 1 + d x^2 y^2.
function add(p, q) {
  const a = mod((p[1] - p[0]) * (q[1] - q[0])), b = mod((p[1] + p[0]) * (q[1] + q[0]));
  const c = mod(2n * D * p[3] * q[3]), d = mod(2n * p[2] * q[2]);
  const e = b - a, f = d - c, g = d + c, h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function multiply(point, scalar) {
  let result = [0n, 1n, 1n, 0n];
  for (let bit = BigInt(scalar.toString(2).length) - 1n; bit >= 0n; bit--) {
    result = add(result, result);
    if ((scalar >> bit) & 1n) result = add(result, point);
  }
  return result;
}

// crypto_sign_ed25519_pk_to_curve25519: the X25519 key of an Ed25519
// public key, or null when libsodium would refuse it.
export function edToX25519(publicKey) {
  if (!publicKey || publicKey.length !== 32) return null;
  const y = leToBig(publicKey) & ((1n << 255n) - 1n);
  if (y >= P) return null;
  const yy = (y * y) % P;
  const u = mod(yy - 1n), v = mod(D * yy + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  const check = mod(v * x * x);
  if (check !== u) {
    if (check !== mod(-u)) return null;     // not a point of the curve
    x = mod(x * SQRT_M1);
  }
  if ((x & 1n) !== BigInt(publicKey[31] >> 7)) x = mod(-x);
  const point = [x, y, 1n, mod(x * y)];
  const identity = (p) => mod(p[0]) === 0n && mod(p[1] - p[2]) === 0n;
  //  Small order (the identity included) or outside the main subgroup.
  if (identity(point) || !identity(multiply(point, L))) return null;
  return bigToLe(mod((1n + y) * invert(mod(1n - y))));
}

// crypto_sign_ed25519_sk_to_curve25519: SHA-512 of the seed, clamped.
export function secretToX25519(key) {
  const h = nacl.hash(key.seed).slice(0, 32);
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
  return h;
}

// ------------------------------------------------------------------ box

function base64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function unbase64(text) {
  // Padded standard base64 only, as sodium_base642bin ORIGINAL reads it.
  if (typeof text !== "string" || text.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text))
    return null;
  try {
    const binary = atob(text);
    if (base64(Uint8Array.from(binary, (c) => c.charCodeAt(0))) !== text) return null;
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch (e) {
    return null;
  }
}

// Seal plaintext bytes for an Ed25519 receiver key: { dh_parameters, sealed }
// (sealed: base64 of the box), or throws Error in words.
export function seal(receiverPublicKey, plaintext) {
  const receiver = edToX25519(receiverPublicKey);
  if (!receiver)
    throw new Error("The receiver's key is not a usable Ed25519 public key: it cannot be sealed to.");
  const ephemeral = nacl.box.keyPair();
  const nonce = nacl.randomBytes(24);
  const box = nacl.box(plaintext, nonce, receiver, ephemeral.secretKey);
  ephemeral.secretKey.fill(0);
  return { dh_parameters: SCHEME + ":" + hex(ephemeral.publicKey) + ":" + hex(nonce),
    sealed: base64(box) };
}

// Whether a transaction's data is sealed (any version of the scheme).
export function isSealedParameters(dh) {
  return typeof dh === "string" && dh.startsWith("x25519-box:");
}

// Read the sealing of (dh_parameters, data as the API gives it):
// { ephemeral, nonce, box } or throws Error in words.
export function readSealing(dh, data) {
  if (!isSealedParameters(dh)) throw new Error("This transaction's data is not sealed.");
  if (!dh.startsWith(SCHEME + ":"))
    throw new Error("It is sealed with a version this page does not know ("
      + dh.slice(0, 40) + "); this page reads " + SCHEME + ".");
  const parts = dh.slice(SCHEME.length + 1).split(":");
  const ephemeral = parts.length === 2 && /^[0-9a-f]{64}$/.test(parts[0]) ? unhex(parts[0], 32) : null;
  const nonce = parts.length === 2 && /^[0-9a-f]{48}$/.test(parts[1]) ? unhex(parts[1], 24) : null;
  if (!ephemeral || !nonce) throw new Error("Its sealing parameters are damaged.");
  const keys = data && typeof data === "object" && !Array.isArray(data) ? Object.keys(data) : [];
  const box = keys.length === 1 && keys[0] === "sealed" ? unbase64(data.sealed) : null;
  if (!box || box.length < 16) throw new Error("Its sealed data is damaged.");
  return { ephemeral, nonce, box };
}

// Open with one key: the plaintext bytes, or null if this key does not
// open it (not the receiver's, or changed: the two look the same).
export function open(sealing, key) {
  const secret = secretToX25519(key);
  const plaintext = nacl.box.open(sealing.box, sealing.nonce, sealing.ephemeral, secret);
  secret.fill(0);
  return plaintext;
}
