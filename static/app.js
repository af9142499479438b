// Skiff's web UI: a single-page app with real URLs. The server answers index.html for every
// page path; this script draws the page the path names, and follows links with the History
// API, so back/forward, reloads and shared links all work.
import { loadSession, current, signOut } from "./js/api.js";
import { h, link, flash } from "./js/dom.js";
import { homePage, starsPage } from "./js/list.js";
import { repoPage, imagePage } from "./js/repo.js";
import { settingsPage } from "./js/settings.js";
import { signInPage, registerPage, accountPage } from "./js/account.js";
import { adminPage } from "./js/admin.js";

const main = document.getElementById("main");
let generation = 0;

/** The page for a path: `[draw, args]`. */
function route(path) {
  if (path === "/") return [homePage, []];
  if (path === "/stars") return [starsPage, []];
  if (path === "/signin") return [signInPage, []];
  if (path === "/register") return [registerPage, []];
  if (path === "/account") return [accountPage, []];
  if (path === "/admin") return [adminPage, []];
  if (path.startsWith("/r/")) {
    const rest = decodeURIComponent(path.slice(3));
    const settings = rest.match(/^(.+)\/-\/settings$/);
    if (settings) return [settingsPage, [settings[1]]];
    const tag = rest.match(/^(.+)\/-\/tags\/([^/]+)$/);
    if (tag) return [imagePage, [tag[1], tag[2]]];
    if (rest && !rest.includes("/-/")) return [repoPage, [rest.replace(/\/$/, "")]];
  }
  return [notFound, []];
}

function notFound(ctx) {
  ctx.title("Not found");
  ctx.main.append(h("h1", null, "Not found"), h("p", null, "There is no page here. ", link("/", "See all repositories"), "."));
}

/** Draws the current URL. A page that finishes after the user moved on is discarded. */
async function render() {
  const mine = ++generation;
  const params = new URLSearchParams(location.search);
  const [draw, args] = route(location.pathname);
  const fresh = h("div", { class: "page" });
  const ctx = {
    main: fresh,
    params,
    alive: () => mine === generation,
    title: (t) => (document.title = t ? `${t} · Skiff` : "Skiff"),
    go,
    refresh: () => render(),
    header: drawHeader,
  };
  document.getElementById("q").value = location.pathname === "/" ? params.get("q") || "" : "";
  main.setAttribute("aria-busy", "true");
  try {
    await draw(ctx, ...args);
  } catch (e) {
    fresh.append(h("p", { class: "error", role: "alert" }, e.message || String(e)));
  }
  if (!ctx.alive()) return;
  main.replaceChildren(fresh);
  main.removeAttribute("aria-busy");
  document.body.dataset.page = draw.name;
}

/** Goes to `url` (same origin) without a page load; `replace` keeps the history entry. */
export function go(url, { replace = false, keepFlash = false } = {}) {
  if (!keepFlash) flash("");
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.scrollTo(0, 0);
  return render();
}

function drawHeader() {
  const { user, registration } = current();
  const nav = document.getElementById("nav");
  const items = [link("/", "Repositories")];
  if (user) {
    items.push(link("/stars", "Stars"));
    if (user.admin) items.push(link("/admin", "Admin"));
    items.push(link("/account", user.name));
    const out = h("button", { type: "button", class: "link", id: "signout" }, "Sign out");
    out.addEventListener("click", async () => {
      try {
        await signOut();
      } catch (e) {
        flash(e.message, "error");
      }
      drawHeader();
      go("/");
    });
    items.push(out);
  } else {
    items.push(link(`/signin`, "Sign in"));
    if (registration === "open" || registration === "approval" || registration === "activation") {
      items.push(link("/register", "Register"));
    }
  }
  nav.replaceChildren(...items);
}

// Links of the app (marked `data-nav`) move without a page load; modified clicks open tabs.
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[data-nav]");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  ev.preventDefault();
  go(url.pathname + url.search + url.hash);
});
window.addEventListener("popstate", () => {
  flash("");
  render();
});
document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = document.getElementById("q").value.trim();
  go(q ? `/?q=${encodeURIComponent(q)}` : "/");
});

await loadSession();
drawHeader();
await render();
document.body.dataset.ready = "1";
