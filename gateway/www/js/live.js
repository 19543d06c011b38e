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
// Reconnection: EventSource retries by itself after a dropped connection
// (the stream says `retry: 3000`), but gives up for good on an HTTP error
// answer (a 503 when the gateway's stream limit is reached, a 502/404 from
// a proxy while the node restarts): then this module opens a new one
// itself, after 3 s, doubling up to 30 s. Every process of the node
// heartbeats each second, so a working stream carries an event a second;
// one with no event for 45 s (a frozen gateway, a half-open connection, a
// bus down) is closed and reopened. These are timers, not polling: nothing
// is fetched while the stream works.
"use strict";

const EVENTS_PATH = "/events";
const RETRY_FIRST_MS = 3000;
const RETRY_MAX_MS = 30000;
const SILENCE_MS = 45000;

const handlers = [];            // {prefix, handler, owner, open}
let source = null;
let state = "connecting";
let since = Date.now();
let gatewayBoot = null;
let retryMs = RETRY_FIRST_MS;
let retryTimer = null;
let silenceTimer = null;

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

function watchSilence() {
  clearTimeout(silenceTimer);
  silenceTimer = setTimeout(() => {
    //  No event for 45 s although every process heartbeats each second.
    reconnectLater(0);
  }, SILENCE_MS);
}

function reconnectLater(delay) {
  if (source) {
    source.close();
    source = null;
  }
  clearTimeout(silenceTimer);
  if (state === "live") setState("offline");
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function onMessage(message) {
  watchSilence();
  let event;
  try {
    event = JSON.parse(message.data);
  } catch (e) {
    return;             // not ours to show; the stream goes on
  }
  if (!event || typeof event.topic !== "string") return;
  if (event.topic === "stream.open") {
    retryMs = RETRY_FIRST_MS;
    event.restarted = gatewayBoot !== null && event.gateway_boot !== gatewayBoot;
    gatewayBoot = event.gateway_boot ?? null;
    setState("live");
    dispatch(event, true);
  }
  dispatch(event, false);
}

function connect() {
  retryTimer = null;
  if (typeof EventSource === "undefined") {
    setState("offline");
    return;
  }
  source = new EventSource(EVENTS_PATH);
  const mine = source;
  //  A comment line (the keepalive) fires no event in EventSource: the
  //  silence timer is reset by messages, and node.heartbeat events come
  //  every second from every process while the bus runs.
  source.onopen = () => watchSilence();
  source.onmessage = onMessage;
  source.onerror = () => {
    if (mine !== source) return;
    setState("offline");
    if (source.readyState === EventSource.CLOSED) {
      //  An HTTP error answer: EventSource will not retry; we do.
      const delay = retryMs;
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      reconnectLater(delay);
    }
    //  Else CONNECTING: EventSource retries by itself after `retry`.
  };
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
connect();
