// chainbus dashboard: the page's one live connection to the node (GET /events).
//
//   import { on, onOpen, connectionState } from "./js/live.js";
//   const off = on("chain.block.", (event) => { ... event.index ... });
//   onOpen(() => refetchWhatIShow());
//   connectionState();   // "live" | "connecting" | "offline"
//
// Importing this module opens ONE EventSource to /events for the whole page
// (all topics: the stream is light, and one stream per page is what the
// gateway counts against gateway/event_streams_max). Every event is the
// JSON object of docs/api.md "GET /events"; handlers get it parsed.
//
// on(topicPrefix, handler, owner?) -> off()
//   handler(event) for every event whose "topic" starts with topicPrefix
//   ("" for all). "stream.open" is delivered like any other event. When
//   owner (a DOM element) is given, the handler is dropped at the first
//   event after owner left the document: a view passes its root element
//   and needs no clean-up when the router replaces it.
// onOpen(handler, owner?) -> off()
//   handler(event) at each "stream.open": the first connection AND every
//   reconnection (after a node or gateway restart, a network cut, a stall).
//   Events may have been missed while the stream was down: refetch what
//   you show. Not called for an open that happened before it was
//   registered: a view fetches its state when it renders anyway.
//   event.gateway_boot changes when the gateway restarted; event.restarted
//   (added here) is true when it differs from the previous open's.
// connectionState() -> "connecting" (no stream.open yet since the page
//   loaded, and no failure), "live" (the stream is open and delivering),
//   "offline" (the stream failed or was lost; it is being retried).
//
// The page shows the state itself; this module shows nothing. Each change
// of state is announced as a DOM event on window:
//   window.addEventListener("live-state", (e) => e.detail.state ...)
//   detail: {state, since (ms since 1970), gateway_boot (hex or null)}
// and mirrored in <html data-live="..."> (for CSS and tests).
//
// One stream for every tab: the connection lives in a SharedWorker
// (live-worker.js), which passes each event to every tab of the dashboard
// on this node (a browser opens at most 6 connections to one host, and a
// stream holds one). A tab leaving (pagehide) says so; one coming back
// from the back/forward cache (pageshow) joins again. A browser without
// SharedWorker, or whose worker fails to start, gets a stream of the
// page's own. Either way the connection is live-stream.js's: EventSource
// retries a dropped connection by itself, a new one is opened after an
// HTTP error answer (3 s, doubling to 30 s), the state turns "offline"
// after 5 s without an event (every process heartbeats each second) and
// the stream is reopened after 45 s.
"use strict";

import { openStream } from "./live-stream.js";

const EVENTS_PATH = "/events";

const handlers = [];            // {prefix, handler, owner, open}
let state = "connecting";
let since = Date.now();
let gatewayBoot = null;
let port = null;                // to the shared worker
let local = null;               // the page's own stream (no worker)

function setState(next) {
  if (next === state) return;
  state = next;
  since = Date.now();
  if (typeof document !== "undefined") document.documentElement.dataset.live = state;
  if (typeof window !== "undefined")
    window.dispatchEvent(new CustomEvent("live-state",
      { detail: { state, since, gateway_boot: gatewayBoot } }));
}

function dispatch(event, openOnly) {
  //  A copy: a handler may register or remove handlers.
  for (const entry of handlers.slice()) {
    if (entry.owner && !entry.owner.isConnected) {
      remove(entry);
      continue;
    }
    if (openOnly ? !entry.open : (entry.open || !event.topic.startsWith(entry.prefix)))
      continue;
    try {
      entry.handler(event);
    } catch (e) {
      //  One view's bug must not stop the others' updates.
      console.error("live.js: a handler of " + event.topic + " failed", e);
    }
  }
}

function remove(entry) {
  const index = handlers.indexOf(entry);
  if (index >= 0) handlers.splice(index, 1);
}

function add(entry) {
  handlers.push(entry);
  return () => remove(entry);
}

function parse(data) {
  try {
    const event = JSON.parse(data);
    return event && typeof event.topic === "string" ? event : null;
  } catch (e) {
    return null;        // not ours to show; the stream goes on
  }
}

function onMessage(data) {
  const event = parse(data);
  if (!event) return;
  if (event.topic === "stream.open") {
    event.restarted = gatewayBoot !== null && event.gateway_boot !== gatewayBoot;
    gatewayBoot = event.gateway_boot ?? null;
    setState("live");
    dispatch(event, true);
  }
  dispatch(event, false);
}

function fromWorker(message) {
  const m = message.data || {};
  if (m.kind === "message") {
    onMessage(m.data);
  } else if (m.kind === "state") {
    setState(m.state);
  } else if (m.kind === "hello") {
    //  Joining a stream that is already open: its state and its boot
    //  (the views fetch their state when they render).
    const open = m.open ? parse(m.open) : null;
    if (open && gatewayBoot === null) gatewayBoot = open.gateway_boot ?? null;
    setState(m.state);
  }
}

function ownStream() {
  if (!local) local = openStream(EVENTS_PATH, { message: onMessage, state: setState });
}

function join() {
  if (port || local) return;
  if (typeof SharedWorker === "undefined") {
    ownStream();
    return;
  }
  try {
    const worker = new SharedWorker(new URL("./live-worker.js", import.meta.url),
      { type: "module", name: "chainbus-events" });
    port = worker.port;
    port.onmessage = fromWorker;
    worker.onerror = () => {
      //  The worker did not start: this page's own stream instead.
      port = null;
      ownStream();
    };
    port.start();
  } catch (e) {
    port = null;
    ownStream();
  }
}

function leave() {
  if (port) port.postMessage({ kind: "bye" });
  port = null;
  if (local) local.close();
  local = null;
}

export function on(topicPrefix, handler, owner) {
  return add({ prefix: String(topicPrefix ?? ""), handler, owner: owner || null, open: false });
}

export function onOpen(handler, owner) {
  return add({ prefix: "", handler, owner: owner || null, open: true });
}

export function connectionState() {
  return state;
}

if (typeof document !== "undefined") document.documentElement.dataset.live = state;
if (typeof window !== "undefined") {
  window.addEventListener("pagehide", leave);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) join();
  });
}
join();
