// chainbus dashboard: the node's JSON API, with every failure in words.
//
//   import { api, post, ApiError } from "./api.js";
//   const status = await api("/status");
//   const answer = await post("/transactions/new", bodyText);
//   const page = await blockTransactions(idOrHash, start, limit);
//
// A failure throws ApiError: .message is a sentence a user can read (the
// node's own message for a refusal it explains, else one of ours: never a
// browser's or a library's wording), .status the HTTP status (0: no
// answer), .code the node's code ("invalid", "unavailable", ...; "timeout"
// or "unreachable" when the node did not answer), .body the JSON answer.
"use strict";

// How long a request may take before the page gives up on it.
export const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(message, status, code, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

// What a user reads for an answer whose body says nothing usable.
function wordsFor(status) {
  if (status === 404) return "Not found on this node.";
  if (status === 401 || status === 403) return "This needs the node's admin token.";
  if (status === 413) return "That is too large for this node.";
  if (status === 429) return "The node is busy; try again in a moment.";
  if (status === 503) return "The node cannot do this now: one of its services is not answering.";
  if (status >= 500) return "The node failed to answer this (HTTP " + status + ").";
  return "The node refused this (HTTP " + status + ").";
}

// fetch with a deadline; the answer's JSON, or ApiError.
export async function api(path, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs || TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, { ...options, signal: controller.signal });
  } catch (e) {
    clearTimeout(timer);
    //  A read can simply be asked again; an action may have been done.
    const reading = !options.method || /^(GET|HEAD)$/i.test(options.method);
    if (controller.signal.aborted)
      throw new ApiError(reading ? "The node did not answer in time; try again."
        : "The node did not answer in time. It may still have done it: "
        + "check before doing it again.", 0, "timeout", null);
    throw new ApiError("The node cannot be reached. Is it running?", 0, "unreachable", null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    const message = body && typeof body.message === "string" && body.message
      ? body.message : wordsFor(response.status);
    throw new ApiError(message, response.status, body && body.code, body);
  }
  if (body === null)
    throw new ApiError("The node sent an answer this page cannot read.", response.status,
      "bad_answer", null);
  return body;
}

// POST a JSON text (sent exactly as given: signed bytes are not re-encoded).
export function post(path, text, options = {}) {
  return api(path, {
    ...options,
    method: "POST",
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
    body: text,
  });
}

// GET /blocks/{id}/transactions: a block's summary and a page of its
// transactions (id: a height or a block hash).
export function blockTransactions(id, start, limit) {
  const q = new URLSearchParams({ start: String(start), limit: String(limit) });
  return api("/blocks/" + encodeURIComponent(id) + "/transactions?" + q);
}
