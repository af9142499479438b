// A repository's page (header, tags paged 50 at a time, stars, comments) and an image's page
// (layers and history for v2, the platforms of an index, the ancestry of a v1 image).
import { api, current, repoPath } from "./api.js";
import { h, link, humanSize, when, exactTime, digestEl, pullLine, badge, errorBox, flash, confirmAction, actionButton, section } from "./dom.js";

const TAGS_PAGE = 50;

function pullRef(name, tag) {
  return `docker pull ${location.host}/${name}${tag ? `:${tag}` : ""}`;
}

/** The repository as the viewer sees it; `null` when absent or not readable. */
async function loadRepo(name) {
  try {
    return await api("GET", `/api/v1/browse/${repoPath(name)}`);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

function starButton(name, repo) {
  const count = h("span", { class: "count", id: "star-count" }, String(repo.stars ?? 0));
  const label = h("span", null, repo.starred ? "★ Starred" : "☆ Star");
  const b = h("button", { type: "button", id: "star", class: "star", "aria-pressed": repo.starred ? "true" : "false" }, label, count);
  if (!current().user) {
    b.disabled = true;
    b.title = "Sign in to star repositories";
    return b;
  }
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const starred = b.getAttribute("aria-pressed") === "true";
      const res = await api(starred ? "DELETE" : "PUT", `/api/v1/repositories/${repoPath(name)}/-/star`);
      label.textContent = res.starred ? "★ Starred" : "☆ Star";
      count.textContent = String(res.stars);
      b.setAttribute("aria-pressed", res.starred ? "true" : "false");
    } catch (e) {
      flash(e.message, "error");
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

function emptyHelp(name) {
  const host = location.host;
  return h(
    "div",
    { class: "empty card", id: "empty-repo" },
    h("p", null, h("strong", null, "This repository has no tags yet."), " Push an image to it:"),
    h("pre", null, `docker login ${host}\ndocker tag IMAGE ${host}/${name}:latest\ndocker push ${host}/${name}:latest`),
    h("p", { class: "muted" }, "Docker 1.x clients push over v1, newer clients over v2; both show up here.")
  );
}

/** One page of tags: `?last=` in the page's URL says where it starts. */
function fetchTags(ctx, name) {
  const last = ctx.params.get("last");
  return api("GET", `/api/v1/repositories/${repoPath(name)}/-/tags?n=${TAGS_PAGE}${last ? `&last=${encodeURIComponent(last)}` : ""}`);
}

async function tagsSection(ctx, name, repo, pending) {
  const last = ctx.params.get("last");
  const wrap = h("section", { class: "card", id: "tags" }, h("h2", null, "Tags", h("span", { class: "muted" }, ` (${repo.tags ?? "?"})`)));
  let page;
  try {
    page = await pending;
  } catch (e) {
    wrap.append(errorBox(e));
    return wrap;
  }
  if (page.tags.length === 0 && !last) return emptyHelp(name);
  const manage = repo.can_manage;
  const rows = page.tags.map((t) => {
    const href = `/r/${repoPath(name)}/-/tags/${encodeURIComponent(t.name)}${t.protocol === "v1" ? `?protocol=v1&id=${encodeURIComponent(t.digest)}` : ""}`;
    const del = manage
      ? actionButton(
          "Delete",
          async () => {
            const sure = await confirmAction(`Delete tag ${t.name} (${t.protocol}) of ${name}? Pulls of ${name}:${t.name} will fail.`, { action: "Delete tag" });
            if (!sure) return;
            await api("DELETE", `/api/v1/repositories/${repoPath(name)}/-/tags/${encodeURIComponent(t.name)}?protocol=${t.protocol}`);
            flash(`Deleted tag ${t.name}.`);
            ctx.go(location.pathname + location.search, { replace: true, keepFlash: true });
          },
          { class: "danger small", "aria-label": `Delete tag ${t.name}` }
        )
      : null;
    return h(
      "tr",
      { "data-tag": t.name, "data-protocol": t.protocol },
      h("td", { class: "name", "data-label": "Tag" }, link(href, t.name), t.protocol === "v1" ? badge("v1", "v1") : null),
      h("td", { "data-label": t.protocol === "v1" ? "Image" : "Digest" }, digestEl(t.digest)),
      h("td", { class: "num size", "data-label": "Size" }, humanSize(t.size)),
      h("td", { class: "platforms", "data-label": "Platforms" }, t.platforms && t.platforms.length ? t.platforms.join(", ") : "—"),
      h("td", { "data-label": "Pushed" }, t.pushed ? when(t.pushed) : "—"),
      h("td", { "data-label": "Last pull" }, t.last_pull ? when(t.last_pull) : "never"),
      h("td", { class: "pullcell", "data-label": "Pull" }, pullLine(pullRef(name, t.name)), del)
    );
  });
  wrap.append(
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "list tags" },
        h("thead", null, h("tr", null, ["Tag", "Digest", "Size", "Platforms", "Pushed", "Last pull", "Pull"].map((c) => h("th", { class: c === "Size" ? "num" : null }, c)))),
        h("tbody", null, rows)
      )
    )
  );
  const nav = [];
  if (last) nav.push(link(`/r/${repoPath(name)}`, "⇤ First page"));
  if (page.next) nav.push(link(`/r/${repoPath(name)}?last=${encodeURIComponent(page.next)}`, `Next ${TAGS_PAGE} →`));
  if (nav.length) wrap.append(h("nav", { class: "pager", "aria-label": "Tag pages" }, nav));
  return wrap;
}

function commentItem(ctx, name, c, list) {
  const body = h("p", { class: "body" }, c.body);
  const li = h(
    "li",
    { class: "comment", "data-id": String(c.id) },
    h("div", { class: "meta" }, h("strong", null, c.author), " · ", when(c.created), c.edited ? h("span", { class: "muted", title: exactTime(c.edited) }, " · edited") : null),
    body
  );
  const tools = h("div", { class: "tools" });
  if (c.can_edit) {
    tools.append(
      actionButton("Edit", async () => {
        const area = h("textarea", { maxlength: "2000", rows: "3", "aria-label": "Edit comment" }, body.textContent);
        const save = actionButton("Save", async () => {
          const updated = await api("PUT", `/api/v1/repositories/${repoPath(name)}/-/comments/${c.id}`, { body: area.value });
          li.replaceWith(commentItem(ctx, name, updated, list));
        });
        const cancel = h("button", { type: "button", class: "link" }, "Cancel");
        cancel.addEventListener("click", () => li.replaceWith(commentItem(ctx, name, c, list)));
        body.replaceWith(h("div", { class: "edit" }, area, h("div", { class: "actions" }, save, cancel)));
        tools.remove();
        area.focus();
      }, { class: "link small" })
    );
  }
  if (c.can_delete) {
    tools.append(
      actionButton("Delete", async () => {
        if (!(await confirmAction("Delete this comment?", { action: "Delete comment" }))) return;
        await api("DELETE", `/api/v1/repositories/${repoPath(name)}/-/comments/${c.id}`);
        li.remove();
      }, { class: "link small danger" })
    );
  }
  if (tools.childNodes.length) li.append(tools);
  return li;
}

function fetchComments(name, after) {
  return api("GET", `/api/v1/repositories/${repoPath(name)}/-/comments?n=50${after !== null ? `&after=${after}` : ""}`);
}

async function commentsSection(ctx, name, pending) {
  const wrap = h("section", { class: "card", id: "comments" }, h("h2", null, "Comments"));
  const list = h("ol", { class: "comments" });
  const more = h("button", { type: "button", class: "link", hidden: true }, "Show more comments");
  let after = null;
  const loadMore = async (first) => {
    const res = await (first || fetchComments(name, after));
    for (const c of res.comments) list.append(commentItem(ctx, name, c, list));
    after = res.next;
    more.hidden = res.next === null || res.next === undefined;
    return res;
  };
  more.addEventListener("click", () => loadMore().catch((e) => flash(e.message, "error")));
  try {
    const res = await loadMore(pending);
    if (res.total === 0) list.append(h("li", { class: "muted none" }, "No comments yet."));
  } catch (e) {
    wrap.append(errorBox(e));
    return wrap;
  }
  wrap.append(list, more);
  if (current().user) {
    const area = h("textarea", { id: "comment-body", maxlength: "2000", rows: "3", placeholder: "Write a comment (plain text)", "aria-label": "New comment", required: true });
    const form = h("form", { id: "comment-form", class: "stack" }, area, h("div", { class: "actions" }, h("button", { type: "submit" }, "Comment")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const c = await api("POST", `/api/v1/repositories/${repoPath(name)}/-/comments`, { body: area.value });
        const none = list.querySelector(".none");
        if (none) none.remove();
        list.append(commentItem(ctx, name, c, list));
        area.value = "";
      } catch (e) {
        flash(e.message, "error");
      } finally {
        button.disabled = false;
      }
    });
    wrap.append(form);
  } else {
    wrap.append(h("p", { class: "muted" }, link(`/signin?next=${encodeURIComponent(location.pathname)}`, "Sign in"), " to comment."));
  }
  return wrap;
}

export async function repoPage(ctx, name) {
  ctx.title(name);
  // The three requests go out together: the page waits for the slowest, not for their sum.
  const tags = fetchTags(ctx, name);
  const comments = fetchComments(name, null);
  tags.catch(() => {});
  comments.catch(() => {});
  const repo = await loadRepo(name);
  if (!ctx.alive()) return;
  if (!repo) {
    ctx.title("Not found");
    ctx.main.append(
      h("h1", null, name),
      h("p", { class: "error", role: "alert", id: "repo-missing" }, "Repository not found. It may not exist, or it may be private."),
      current().user ? null : h("p", null, link(`/signin?next=${encodeURIComponent(location.pathname)}`, "Sign in"), " to see private repositories you may read.")
    );
    return;
  }
  const head = h(
    "div",
    { class: "repo-head" },
    h("h1", null, h("span", { id: "repo-name" }, repo.name), repo.private ? badge("private", "private") : badge("public", "public")),
    h("div", { class: "head-actions" }, starButton(name, repo), repo.can_manage ? link(`/r/${repoPath(name)}/-/settings`, "Settings") : null)
  );
  const facts = h(
    "p",
    { class: "facts muted" },
    `Owner ${repo.owner} · ${repo.tags} tag${repo.tags === 1 ? "" : "s"} · ${humanSize(repo.size)} · ${repo.pulls} pull${repo.pulls === 1 ? "" : "s"} · pushed `,
    repo.last_push ? when(repo.last_push) : "never",
    " · last pulled ",
    repo.last_pull ? when(repo.last_pull) : "never"
  );
  const desc = h("p", { class: "description", id: "description" }, repo.description || "No description.");
  if (!repo.description) desc.classList.add("muted");
  const sections = await Promise.all([tagsSection(ctx, name, repo, tags), commentsSection(ctx, name, comments)]);
  ctx.main.append(head, facts, desc, h("div", { class: "pull-main" }, pullLine(pullRef(name, null))), ...sections);
}

/** A time from image metadata: unix seconds (the API's times) or an RFC 3339 string. */
function timeText(v) {
  if (v === null || v === undefined || v === "") return "—";
  return typeof v === "number" ? exactTime(v) : String(v).replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function kv(rows) {
  return h(
    "dl",
    { class: "kv" },
    rows.filter(([, v]) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0)).map(([k, v]) => [h("dt", null, k), h("dd", null, v instanceof Node ? v : Array.isArray(v) ? v.join(" ") : String(v))])
  );
}

function v2Image(ctx, name, tag, m) {
  const cfg = m.config || {};
  const out = [
    section(
      "Image",
      kv([
        ["Digest", h("code", { class: "full-digest" }, m.digest)],
        ["Platform", m.platform],
        ["Size", h("span", { id: "image-size", title: `${m.size} bytes` }, humanSize(m.size))],
        ["Created", m.created ? timeText(m.created) : null],
        ["Media type", m.media_type],
        ["Entrypoint", cfg.entrypoint],
        ["Command", cfg.cmd],
        ["Working dir", cfg.working_dir],
        ["User", cfg.user],
        ["Env", cfg.env && cfg.env.length ? h("ul", { class: "plain" }, cfg.env.map((e) => h("li", null, h("code", null, e)))) : null],
        ["Labels", cfg.labels && Object.keys(cfg.labels).length ? h("ul", { class: "plain" }, Object.entries(cfg.labels).map(([k, v]) => h("li", null, h("code", null, `${k}=${v}`)))) : null],
      ])
    ),
    section(
      `Layers (${(m.layers || []).length})`,
      h(
        "table",
        { class: "list layers" },
        h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "Digest"), h("th", { class: "num" }, "Size"), h("th", null, "Media type"))),
        h("tbody", null, (m.layers || []).map((l, i) => h("tr", null, h("td", { "data-label": "#" }, String(i + 1)), h("td", { "data-label": "Digest" }, digestEl(l.digest)), h("td", { class: "num", "data-label": "Size" }, humanSize(l.size)), h("td", { class: "muted", "data-label": "Type" }, l.media_type))))
      )
    ),
  ];
  if (m.history && m.history.length) {
    out.push(
      section(
        "History",
        h(
          "table",
          { class: "list history" },
          h("thead", null, h("tr", null, h("th", null, "Created"), h("th", null, "Command"), h("th", null, ""))),
          h("tbody", null, m.history.map((s) => h("tr", { class: s.empty_layer ? "muted" : null }, h("td", { "data-label": "Created" }, timeText(s.created)), h("td", { "data-label": "Command" }, h("code", { class: "cmd" }, s.created_by || "")), h("td", { "data-label": "" }, s.empty_layer ? "no layer" : s.comment || ""))))
        )
      )
    );
  }
  return out;
}

function v2Index(ctx, name, tag, m) {
  const rows = (m.manifests || []).map((d) =>
    h(
      "tr",
      { class: d.attestation ? "muted" : null, "data-platform": d.platform || "" },
      h("td", { "data-label": "Platform" }, d.attestation ? "attestation" : link(`/r/${repoPath(name)}/-/tags/${encodeURIComponent(tag)}?digest=${encodeURIComponent(d.digest)}`, d.platform || "unknown")),
      h("td", { "data-label": "Digest" }, digestEl(d.digest)),
      h("td", { class: "num", "data-label": "Manifest size" }, humanSize(d.size)),
      h("td", { class: "muted", "data-label": "Type" }, d.media_type)
    )
  );
  return [
    section("Index", kv([["Digest", h("code", { class: "full-digest" }, m.digest)], ["Media type", m.media_type], ["Size", humanSize(m.size)]])),
    section(
      "Platforms",
      h("table", { class: "list platforms" }, h("thead", null, h("tr", null, h("th", null, "Platform"), h("th", null, "Digest"), h("th", { class: "num" }, "Manifest"), h("th", null, "Media type"))), h("tbody", null, rows))
    ),
  ];
}

function v1Image(ctx, name, tag, img) {
  return [
    section(
      "Image (v1)",
      kv([
        ["Image id", h("code", { class: "full-digest" }, img.id)],
        ["Parent", img.parent],
        ["Created", img.created ? timeText(img.created) : null],
        ["Size", h("span", { id: "image-size", title: `${img.size} bytes` }, humanSize(img.size))],
        ["Checksum", img.checksum],
        ["Command", img.cmd],
      ])
    ),
    section(
      `Ancestry (${(img.ancestry || []).length})`,
      h(
        "table",
        { class: "list ancestry" },
        h("thead", null, h("tr", null, h("th", null, "Image"), h("th", { class: "num" }, "Layer size"), h("th", null, "Created"), h("th", null, "Command"))),
        h("tbody", null, (img.ancestry || []).map((a) => h("tr", null, h("td", { "data-label": "Image" }, digestEl(a.id)), h("td", { class: "num", "data-label": "Size" }, humanSize(a.size)), h("td", { "data-label": "Created" }, timeText(a.created)), h("td", { "data-label": "Command" }, h("code", { class: "cmd" }, a.created_by || "")))))
      )
    ),
  ];
}

export async function imagePage(ctx, name, tag) {
  ctx.title(`${name}:${tag}`);
  const base = `/api/v1/repositories/${repoPath(name)}/-`;
  ctx.main.append(
    h("p", { class: "crumbs" }, link(`/r/${repoPath(name)}`, name), " : ", h("strong", null, tag)),
    h("h1", null, `${name}:${tag}`),
    h("div", { class: "pull-main" }, pullLine(pullRef(name, tag)))
  );
  const digest = ctx.params.get("digest");
  try {
    if (ctx.params.get("protocol") === "v1") {
      // The tags table links with the image id; a hand-typed URL asks the v1 API for it.
      const id = ctx.params.get("id") || (await api("GET", `/v1/repositories/${repoPath(name)}/tags/${encodeURIComponent(tag)}`));
      const img = await api("GET", `${base}/images/${encodeURIComponent(id)}`);
      ctx.main.append(...v1Image(ctx, name, tag, img));
      return;
    }
    const m = await api("GET", `${base}/manifests/${encodeURIComponent(digest || tag)}`);
    if (digest) ctx.main.append(h("p", { class: "crumbs" }, "One platform of ", link(`/r/${repoPath(name)}/-/tags/${encodeURIComponent(tag)}`, `${name}:${tag}`)));
    ctx.main.append(...(m.kind === "index" ? v2Index(ctx, name, tag, m) : v2Image(ctx, name, tag, m)));
  } catch (e) {
    ctx.main.append(errorBox(e));
  }
}
