// chainbus dashboard: the one way the page makes elements.
//
//   import { h } from "./dom.js";
//   h("td", { class: "hash", text: hash })
//   h("button", { type: "button", onclick: () => go() }, "Send")
//
// Attributes: "class" (or "className") sets the class, "text" the text,
// "dataset" an object of data-* values, "on<event>" a function adds a
// listener, true an empty attribute; null, undefined and false leave the
// attribute out; anything else is set as its string. Children: elements
// as they are; anything else (a string, a number) becomes a TEXT node.
// Data from the node or a user reaches the page only this way (or through
// textContent): never innerHTML. Text also goes through visible(): the
// characters that reorder text (bidirectional overrides, embeddings,
// isolates and marks) are shown as their code, so that a name such as
// "\u202Eecila" cannot pass for "alice".
"use strict";

const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

// text with each bidirectional control shown as "⟨U+XXXX⟩".
export function visible(text) {
  return String(text).replace(BIDI_CONTROLS, (c) =>
    "⟨U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "⟩");
}

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class" || name === "className") element.className = value;
    else if (name === "text") element.textContent = visible(value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function")
      element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

// Children to the end of element, as h takes them.
export function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
}
