// chainbus dashboard: one connection to GET /events, kept open.
//
//   import { openStream } from "./live-stream.js";
//   const stream = openStream(url, {
//     message(data, topic) { ... }, // each event's JSON text, as sent, and
//                                   // its topic (null if it has none)
//     state(state) { ... },         // "connecting" | "live" | "offline"
//   });                             // (live from each stream.open on)
//   stream.close();
//
// Used by live-worker.js (one connection shared by every tab of the
// dashboard on this node) and by live.js itself where a browser has no
// SharedWorker. It only connects and keeps the connection; what the
// events mean is live.js's.
//
// Reconnection: EventSource retries by itself after a dropped connection
// (the stream says `retry: 3000`), but gives up for good on an HTTP error
// answer (a 503 when the gateway's stream limit is reached, a 502/404 from
// a proxy while the node restarts): then a new one is opened after 3 s,
// doubling up to 30 s. Every process of the node heartbeats each second,
// so a working stream carries an event a second: one silent for 5 s is
// reported "offline" (a frozen gateway, a half-open connection, a bus
// down) and one silent for 45 s is closed and reopened. These are timers,
// not polling: nothing is fetched while the stream works.
"use strict";

export const RETRY_FIRST_MS = 3000;
export const RETRY_MAX_MS = 30000;
export const QUIET_MS = 5000;
export const SILENCE_MS = 45000;

export function openStream(url, report) {
  let source = null;
  let state = "connecting";
  let retryMs = RETRY_FIRST_MS;
  let retryTimer = null;
  let quietTimer = null;
  let silenceTimer = null;
  let closed = false;

  function setState(next) {
    if (next === state) return;
    state = next;
    report.state(state);
  }

  function watchSilence() {
    clearTimeout(quietTimer);
    clearTimeout(silenceTimer);
    quietTimer = setTimeout(() => setState("offline"), QUIET_MS);
    silenceTimer = setTimeout(() => reconnectLater(0), SILENCE_MS);
  }

  function stopTimers() {
    clearTimeout(quietTimer);
    clearTimeout(silenceTimer);
    clearTimeout(retryTimer);
    retryTimer = null;
  }

  function reconnectLater(delay) {
    if (source) {
      source.close();
      source = null;
    }
    stopTimers();
    setState("offline");
    if (!closed) retryTimer = setTimeout(connect, delay);
  }

  function connect() {
    retryTimer = null;
    if (typeof EventSource === "undefined") {
      setState("offline");
      return;
    }
    source = new EventSource(url);
    const mine = source;
    //  A comment line (the keepalive) fires no event in EventSource: the
    //  silence timers are reset by messages, and node.heartbeat events
    //  come every second from every process while the bus runs.
    source.onopen = () => watchSilence();
    let opened = false;     // this connection's stream.open came
    source.onmessage = (message) => {
      watchSilence();
      let topic = null;
      try {
        topic = JSON.parse(message.data).topic;
      } catch (e) {
        //  Not an event: passed on all the same, its reader says.
      }
      if (topic === "stream.open") {
        //  The first message of every stream: live from here.
        opened = true;
        retryMs = RETRY_FIRST_MS;
        setState("live");
      } else if (opened) {
        setState("live");   // again, after a quiet spell
      }
      report.message(message.data, typeof topic === "string" ? topic : null);
    };
    source.onerror = () => {
      if (mine !== source) return;
      opened = false;
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

  connect();
  return {
    state: () => state,
    close() {
      closed = true;
      stopTimers();
      if (source) source.close();
      source = null;
    },
  };
}
