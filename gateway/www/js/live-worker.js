// chainbus dashboard: the event stream shared by every tab of the
// dashboard on one node (a SharedWorker started by live.js).
//
// A browser opens at most 6 HTTP/1.1 connections to one host, and an
// event stream holds one for as long as it is open: with a stream per
// tab, a sixth tab would wait for its files behind the other tabs'
// streams. Here one stream serves them all (the gateway counts one
// subscriber per browser, not per tab).
//
// To each tab (a MessagePort), in order:
//   {kind: "hello", state, open}   when it connects: the state, and the
//                                  JSON text of the last stream.open (or null)
//   {kind: "state", state}         each change ("connecting" | "live" | "offline")
//   {kind: "message", data}        each event's JSON text, as sent
// From a tab: {kind: "bye"} when it leaves (pagehide). The stream is
// closed while no tab is connected and opened again for the next one.
"use strict";

import { openStream } from "./live-stream.js";

const EVENTS_PATH = "/events";

const ports = new Set();
let stream = null;
let state = "connecting";
let lastOpen = null;

function toAll(message) {
  for (const port of ports) port.postMessage(message);
}

function start() {
  state = "connecting";
  lastOpen = null;
  stream = openStream(EVENTS_PATH, {
    state(next) {
      state = next;
      toAll({ kind: "state", state });
    },
    message(data, topic) {
      if (topic === "stream.open") lastOpen = data;
      toAll({ kind: "message", data });
    },
  });
}

self.onconnect = (event) => {
  const port = event.ports[0];
  ports.add(port);
  port.onmessage = (message) => {
    if (!message.data || message.data.kind !== "bye") return;
    ports.delete(port);
    if (!ports.size && stream) {
      stream.close();
      stream = null;
    }
  };
  port.start();
  if (!stream) start();
  port.postMessage({ kind: "hello", state, open: lastOpen });
};
