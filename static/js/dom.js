// DOM helpers. Every piece of data reaches the page as a text node or an attribute value set
// through the DOM: nothing here (or anywhere in the app) parses a string as markup, so a
// name, tag, description or comment can never become script.

/**
 * `h("a", {href: "/x", class: "c", onclick: f}, "text", child, [more])`: an element.
 * Attributes starting with `on` become listeners; `null`/`false` attributes and children
 * are skipped; strings and numbers become text nodes.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** A link handled by the app's router (no page load). */
export function link(href, ...children) {
  return h("a", { href, "data-nav": true }, ...children);
}

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** Bytes as people read them (decimal units, as docker prints them). */
export function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  let v = Number(bytes);
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

/** Unix seconds as "3 hours ago"; the exact time goes in a title. */
export function ago(secs) {
  if (!secs) return "never";
  const d = Math.max(0, Date.now() / 1000 - secs);
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
    [Infinity, "year"],
  ];
  let v = d;
  for (const [n, unit] of steps) {
    if (v < n) {
      const k = Math.floor(v);
      return k <= 0 && unit === "second" ? "just now" : `${k} ${unit}${k === 1 ? "" : "s"} ago`;
    }
    v /= n;
  }
  return "long ago";
}

export function exactTime(secs) {
  return secs ? new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "";
}

/** A time cell: relative text, the exact time in its title. */
export function when(secs) {
  return h("time", { title: exactTime(secs), datetime: secs ? new Date(secs * 1000).toISOString() : null }, ago(secs));
}

/** `sha256:0123456789ab` (12 hex digits) with the full digest in the title. */
export function digestEl(digest) {
  if (!digest) return h("span", { class: "muted" }, "—");
  const [algo, hex] = digest.includes(":") ? digest.split(":", 2) : ["", digest];
  const short = algo ? `${algo}:${hex.slice(0, 12)}` : hex.slice(0, 12);
  return h("code", { class: "digest", title: digest }, short);
}

/** Puts `text` on the clipboard: the async Clipboard API, else a selected textarea + copy. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (e) {
    // fall through to the old way
  }
  const area = h("textarea", { class: "offscreen", readonly: true }, text);
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (e) {
    ok = false;
  }
  area.remove();
  return ok;
}

/** A `docker pull ...` line with a copy button. */
export function pullLine(text) {
  const code = h("code", { class: "pull" }, text);
  const button = h("button", { type: "button", class: "copy", title: "Copy to clipboard", "aria-label": `Copy: ${text}` }, "Copy");
  button.addEventListener("click", async () => {
    const ok = await copyText(text);
    button.textContent = ok ? "Copied" : "Select and copy";
    button.dataset.copied = ok ? text : "";
    if (!ok) {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
  return h("span", { class: "pull-line" }, code, button);
}

/** A message under the header; errors in red. */
export function flash(text, kind = "info") {
  const el = document.getElementById("flash");
  el.textContent = text;
  el.className = kind;
  el.hidden = !text;
}

/**
 * Asks before a destructive action, in a `<dialog>` of the page (no native prompt). With
 * `typed`, the user must type that text (a repository's name) to enable the button.
 */
export function confirmAction(message, { action = "Confirm", typed = null } = {}) {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  document.getElementById("confirm-text").textContent = message;
  const extra = document.getElementById("confirm-extra");
  extra.replaceChildren();
  ok.textContent = action;
  ok.disabled = false;
  if (typed) {
    const input = h("input", { type: "text", "aria-label": `Type ${typed} to confirm`, placeholder: typed, autocomplete: "off" });
    ok.disabled = true;
    input.addEventListener("input", () => (ok.disabled = input.value !== typed));
    extra.append(h("label", null, "Type ", h("code", null, typed), " to confirm:"), input);
  }
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** A section with a heading. */
export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", null, title), ...children);
}

/** An error shown where the content would have been. */
export function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e && e.message ? e.message : String(e));
}

/** A button that disables itself while its async action runs and reports failures. */
export function actionButton(label, fn, attrs = {}) {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await fn(b);
    } catch (e) {
      flash(e.message, "error");
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}` }, text);
}
