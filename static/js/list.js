// The repository list (with search, sort and paging) and "my stars".
import { api, current, repoPath } from "./api.js";
import { h, link, humanSize, when, badge, errorBox } from "./dom.js";

const PAGE = 25;
const SORTS = [
  ["name", "Name"],
  ["stars", "Stars"],
  ["pulls", "Pulls"],
  ["pushed", "Last push"],
];

/** The table of repositories (ROWs of /api/v1/browse); cards at phone width (CSS). */
function repoTable(rows) {
  const body = rows.map((r) =>
    h(
      "tr",
      { "data-repo": r.name },
      h(
        "td",
        { class: "name", "data-label": "Repository" },
        link(`/r/${repoPath(r.name)}`, r.name),
        r.private ? badge("private", "private") : null,
        r.description ? h("div", { class: "desc" }, r.description) : null
      ),
      h("td", { class: "num", "data-label": "Stars" }, r.starred ? "★ " : "☆ ", String(r.stars ?? 0)),
      h("td", { class: "num", "data-label": "Pulls" }, String(r.pulls ?? 0)),
      h("td", { "data-label": "Tags", class: "num" }, String(r.tags ?? 0)),
      h("td", { "data-label": "Last push" }, r.last_push ? when(r.last_push) : "never"),
      h("td", { class: "num", "data-label": "Size" }, humanSize(r.size))
    )
  );
  return h(
    "table",
    { class: "list repos" },
    h(
      "thead",
      null,
      h("tr", null, h("th", null, "Repository"), h("th", { class: "num" }, "Stars"), h("th", { class: "num" }, "Pulls"), h("th", { class: "num" }, "Tags"), h("th", null, "Last push"), h("th", { class: "num" }, "Size"))
    ),
    h("tbody", null, body)
  );
}

export async function homePage(ctx) {
  const q = ctx.params.get("q") || "";
  const page = Math.max(1, parseInt(ctx.params.get("page") || "1", 10) || 1);
  const sort = ctx.params.get("sort") || "name";
  ctx.title(q ? `Search: ${q}` : "Repositories");
  const url = (p, s = sort) => {
    const u = new URLSearchParams();
    if (q) u.set("q", q);
    if (s !== "name") u.set("sort", s);
    if (p > 1) u.set("page", String(p));
    const t = u.toString();
    return t ? `/?${t}` : "/";
  };
  const heading = h("h1", null, q ? `Repositories matching “${q}”` : "Repositories");
  ctx.main.append(heading);
  let res;
  try {
    res = await api("GET", `/api/v1/browse?q=${encodeURIComponent(q)}&n=${PAGE}&page=${page}&sort=${encodeURIComponent(sort)}`);
  } catch (e) {
    ctx.main.append(errorBox(e));
    return;
  }
  const sorter = h("p", { class: "sort" }, "Sort: ", SORTS.map(([k, label]) => (k === sort ? h("strong", null, label) : link(url(1, k), label))).reduce((a, el) => (a.length ? [...a, " · ", el] : [el]), []));
  const pages = Math.max(1, Math.ceil(res.total / res.n));
  const summary = h("p", { class: "muted", id: "count" }, `${res.total} repositor${res.total === 1 ? "y" : "ies"}`, pages > 1 ? ` · page ${page} of ${pages}` : "");
  ctx.main.append(h("div", { class: "bar" }, summary, sorter));
  if (res.results.length === 0) {
    ctx.main.append(
      h(
        "div",
        { class: "empty card" },
        q ? h("p", null, "Nothing matches. Try a shorter search.") : h("p", null, "No repositories yet. Push an image to create one:"),
        q ? null : h("pre", null, `docker login ${location.host}\ndocker tag IMAGE ${location.host}/${current().user ? current().user.name : "NAMESPACE"}/NAME:TAG\ndocker push ${location.host}/${current().user ? current().user.name : "NAMESPACE"}/NAME:TAG`)
      )
    );
    return;
  }
  ctx.main.append(repoTable(res.results));
  if (pages > 1) {
    ctx.main.append(
      h("nav", { class: "pager", "aria-label": "Pages" }, page > 1 ? link(url(page - 1), "← Previous") : h("span"), h("span", { class: "muted" }, `${page} / ${pages}`), page < pages ? link(url(page + 1), "Next →") : h("span"))
    );
  }
}

export async function starsPage(ctx) {
  ctx.title("My stars");
  ctx.main.append(h("h1", null, "My stars"));
  if (!current().user) {
    ctx.main.append(h("p", null, link("/signin?next=/stars", "Sign in"), " to see the repositories you starred."));
    return;
  }
  try {
    const res = await api("GET", "/api/v1/stars");
    if (res.results.length === 0) {
      ctx.main.append(h("p", { class: "empty card" }, "You have not starred a repository yet. Open one and press ☆ Star."));
    } else {
      ctx.main.append(repoTable(res.results));
    }
  } catch (e) {
    ctx.main.append(errorBox(e));
  }
}
