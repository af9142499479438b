// The admin page: accounts (activate, admin, delete), storage usage, garbage collection.
import { api, current } from "./api.js";
import { h, link, humanSize, when, section, errorBox, flash, confirmAction, actionButton, badge } from "./dom.js";

export async function adminPage(ctx) {
  ctx.title("Admin");
  ctx.main.append(h("h1", null, "Administration"));
  const user = current().user;
  if (!user || !user.admin) {
    ctx.main.append(h("p", { class: "error" }, "Only administrators may see this page. ", user ? null : link("/signin?next=/admin", "Sign in")));
    return;
  }
  const [users, usage, gc] = await Promise.all([usersSection(ctx), usageSection(), gcSection()]);
  ctx.main.append(users, usage, gc);
}

async function usersSection(ctx) {
  const wrap = section("Users");
  wrap.id = "users";
  const body = h("tbody");
  const load = async () => {
    const res = await api("GET", "/api/v1/users");
    body.replaceChildren(
      ...res.map((u) => {
        const self = u.username === current().user.name;
        const toggle = (field, label) =>
          actionButton(label, async () => {
            await api("PUT", `/api/v1/users/${encodeURIComponent(u.username)}/${field}`, { [field]: !u[field] });
            await load();
          }, { class: "small secondary", disabled: self ? true : null, title: self ? "Not your own account" : null });
        return h(
          "tr",
          { "data-user": u.username },
          h("td", { "data-label": "User" }, h("strong", null, u.username), h("div", { class: "muted" }, u.email)),
          h("td", { "data-label": "Status" }, u.active ? badge("active", "ok") : badge("inactive", "private"), u.admin ? badge("admin", "admin") : null),
          h("td", { "data-label": "Created" }, when(u.created)),
          h(
            "td",
            null,
            h(
              "div",
              { class: "actions" },
              toggle("active", u.active ? "Deactivate" : "Activate"),
            toggle("admin", u.admin ? "Remove admin" : "Make admin"),
            self
              ? null
              : actionButton("Delete", async () => {
                  if (!(await confirmAction(`Delete the account ${u.username}? Its tokens, sessions and stars go with it.`, { action: "Delete account", typed: u.username }))) return;
                  await api("DELETE", `/api/v1/users/${encodeURIComponent(u.username)}`);
                  flash(`Deleted ${u.username}.`);
                  await load();
                }, { class: "small danger" })
            )
          )
        );
      })
    );
  };
  try {
    await load();
  } catch (e) {
    wrap.append(errorBox(e));
    return wrap;
  }
  wrap.append(h("table", { class: "list" }, h("thead", null, h("tr", null, ["User", "Status", "Created", ""].map((c) => h("th", null, c)))), body));
  return wrap;
}

async function usageSection() {
  const wrap = section("Storage");
  wrap.id = "usage";
  try {
    const u = await api("GET", "/api/v1/usage");
    const s = u.store || {};
    wrap.append(
      h(
        "div",
        { class: "stats" },
        [
          ["Stored", humanSize(s.total_bytes), `${s.blobs ?? 0} blobs`],
          ["Referenced", humanSize(s.referenced_bytes), ""],
          ["Garbage", humanSize(s.garbage_bytes), `${s.garbage_blobs ?? 0} blobs`],
          ["Uploads", humanSize(s.upload_bytes), `${s.upload_sessions ?? 0} open`],
        ].map(([k, v, sub]) => h("div", { class: "stat" }, h("div", { class: "muted" }, k), h("strong", null, v), h("div", { class: "muted small" }, sub)))
      )
    );
    const top = [...u.repositories].sort((a, b) => b.bytes - a.bytes).slice(0, 20);
    if (top.length) {
      wrap.append(
        h("h3", null, "Largest repositories"),
        h(
          "table",
          { class: "list" },
          h("thead", null, h("tr", null, h("th", null, "Repository"), h("th", { class: "num" }, "Size"), h("th", { class: "num" }, "Only here"), h("th", { class: "num" }, "Shared"))),
          h("tbody", null, top.map((r) => h("tr", null, h("td", { "data-label": "Repository" }, link(`/r/${r.name}`, r.name)), h("td", { class: "num", "data-label": "Size" }, humanSize(r.bytes)), h("td", { class: "num", "data-label": "Only here" }, humanSize(r.unique_bytes)), h("td", { class: "num", "data-label": "Shared" }, humanSize(r.shared_bytes)))))
        )
      );
    }
  } catch (e) {
    wrap.append(errorBox(e));
  }
  return wrap;
}

function report(last) {
  if (!last) return h("p", { class: "muted" }, "No collection has run since the server started.");
  if (last.error) return h("p", { class: "error" }, `The last run failed: ${last.error}`);
  const r = last.report || {};
  return h(
    "p",
    { id: "gc-report" },
    `${r.dry_run ? "Preview" : "Run"} by ${last.by}, `,
    when(last.finished),
    `: ${r.dry_run ? "would remove" : "removed"} ${r.removed ?? 0} blobs (${humanSize(r.removed_bytes)}), kept ${r.kept ?? 0}`,
    r.kept_recent ? ` (${r.kept_recent} too recent)` : "",
    last.uploads_removed ? `, ${last.uploads_removed} abandoned uploads` : "",
    "."
  );
}

async function gcSection() {
  const wrap = section("Garbage collection");
  wrap.id = "gc";
  const status = h("div", { id: "gc-status" });
  const draw = (st) => {
    if (st.running) {
      const p = st.running.progress || {};
      status.replaceChildren(h("p", null, `${st.running.dry_run ? "Preview" : "Collection"} running (${p.phase || "starting"} ${p.done ?? 0}/${p.total ?? 0})…`));
    } else {
      status.replaceChildren(report(st.last));
    }
  };
  const poll = async () => {
    for (;;) {
      const st = await api("GET", "/api/v1/gc");
      draw(st);
      if (!st.running) return;
      await new Promise((r) => setTimeout(r, 700));
    }
  };
  const start = (dry) => async () => {
    if (!dry && !(await confirmAction("Run garbage collection now? Unreferenced blobs older than the grace period are removed for good.", { action: "Run gc" }))) return;
    await api("POST", "/api/v1/gc", { dry_run: dry });
    await poll();
  };
  try {
    draw(await api("GET", "/api/v1/gc"));
  } catch (e) {
    wrap.append(errorBox(e));
    return wrap;
  }
  wrap.append(status, h("div", { class: "actions" }, actionButton("Preview", start(true), { id: "gc-preview" }), actionButton("Run now", start(false), { id: "gc-run", class: "danger" })));
  return wrap;
}
