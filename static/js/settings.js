// A repository's settings, for those who may manage it: description, visibility,
// collaborators, webhooks and their deliveries, deleting a tag, deleting the repository.
import { api, current, repoPath } from "./api.js";
import { h, link, when, section, errorBox, flash, confirmAction, actionButton, badge } from "./dom.js";

export async function settingsPage(ctx, name) {
  ctx.title(`Settings · ${name}`);
  const base = `/api/v1/repositories/${repoPath(name)}`;
  ctx.main.append(h("p", { class: "crumbs" }, link(`/r/${repoPath(name)}`, name), " : settings"), h("h1", null, `Settings of ${name}`));
  if (!current().user) {
    ctx.main.append(h("p", null, link(`/signin?next=${encodeURIComponent(location.pathname)}`, "Sign in"), " to manage this repository."));
    return;
  }
  let repo;
  try {
    repo = await api("GET", base);
  } catch (e) {
    ctx.main.append(errorBox(e));
    return;
  }
  ctx.main.append(description(base, repo), visibility(ctx, base, repo), collaborators(base, repo), await webhooks(base), deleteTag(base, name), danger(ctx, base, name));
}

function description(base, repo) {
  const area = h("textarea", { id: "description-input", rows: "3", maxlength: "1000", "aria-label": "Description" }, repo.description || "");
  const form = h("form", { id: "description-form", class: "stack" }, area, h("div", { class: "actions" }, h("button", { type: "submit" }, "Save description")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const view = await api("PUT", `${base}/-/description`, { description: area.value });
      area.value = view.description;
      flash("Description saved.");
    } catch (e) {
      flash(e.message, "error");
    }
  });
  return section("Description", form);
}

function visibility(ctx, base, repo) {
  const state = h("p", { id: "visibility-state" }, "This repository is ", repo.private ? badge("private", "private") : badge("public", "public"), repo.private ? ": only its owner, collaborators and admins can see or pull it." : ": anyone can see and pull it.");
  const b = actionButton(
    repo.private ? "Make public" : "Make private",
    async () => {
      const toPrivate = !repo.private;
      const sure = await confirmAction(
        toPrivate ? `Make ${repo.name} private? Only its owner, collaborators and admins will see or pull it.` : `Make ${repo.name} public? Anyone will be able to see and pull it.`,
        { action: toPrivate ? "Make private" : "Make public" }
      );
      if (!sure) return;
      await api("PUT", `${base}/-/visibility`, { private: toPrivate });
      flash(toPrivate ? "The repository is private now." : "The repository is public now.");
      ctx.refresh();
    },
    { id: "visibility-toggle", class: repo.private ? null : "danger" }
  );
  return section("Visibility", state, b);
}

function collaborators(base, repo) {
  const list = h("ul", { class: "plain", id: "collaborators" });
  const draw = (names) => {
    list.replaceChildren(
      ...(names.length
        ? names.map((u) =>
            h(
              "li",
              { "data-user": u },
              h("span", null, u),
              " ",
              actionButton(
                "Remove",
                async () => {
                  if (!(await confirmAction(`Remove ${u} from the collaborators? They will lose access if the repository is private.`, { action: "Remove" }))) return;
                  const view = await api("DELETE", `${base}/-/collaborators/${encodeURIComponent(u)}`);
                  draw(view.collaborators);
                },
                { class: "link small danger" }
              )
            )
          )
        : [h("li", { class: "muted" }, "No collaborators.")])
    );
  };
  draw(repo.collaborators || []);
  const input = h("input", { id: "collaborator-input", placeholder: "username", "aria-label": "Collaborator's username", autocomplete: "off", required: true });
  const form = h("form", { id: "collaborator-form", class: "inline" }, input, h("button", { type: "submit" }, "Add collaborator"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const view = await api("PUT", `${base}/-/collaborators/${encodeURIComponent(input.value.trim())}`);
      draw(view.collaborators);
      input.value = "";
    } catch (e) {
      flash(e.message, "error");
    }
  });
  return section("Collaborators", h("p", { class: "muted" }, "Collaborators may pull and push, also when the repository is private."), list, form);
}

async function webhooks(base) {
  const wrap = section("Webhooks");
  wrap.id = "webhooks";
  wrap.append(h("p", { class: "muted" }, "After every push (and, if chosen, every delete) Skiff POSTs a JSON event to each hook, signed with its secret in X-Skiff-Signature-256."));
  const list = h("div", { class: "hooks" });
  const load = async () => {
    try {
      const res = await api("GET", `${base}/-/webhooks`);
      list.replaceChildren(...(res.webhooks.length ? res.webhooks.map((w) => hook(base, w, load)) : [h("p", { class: "muted" }, "No webhooks.")]));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  };
  await load();
  const url = h("input", { type: "url", placeholder: "https://receiver.example/hook", "aria-label": "Webhook URL", required: true });
  const secret = h("input", { type: "text", placeholder: "secret (empty: generated)", "aria-label": "Webhook secret", autocomplete: "off" });
  const onDelete = h("input", { type: "checkbox", id: "hook-delete-events" });
  const form = h("form", { id: "webhook-form", class: "stack" }, url, secret, h("label", null, onDelete, " also on deletes"), h("div", { class: "actions" }, h("button", { type: "submit" }, "Add webhook")));
  const shown = h("div");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { url: url.value, events: onDelete.checked ? ["push", "delete"] : ["push"] };
      if (secret.value) body.secret = secret.value;
      const created = await api("POST", `${base}/-/webhooks`, body);
      shown.replaceChildren(h("p", { class: "notice" }, "The hook's secret (shown this once): ", h("code", null, created.secret || "")));
      url.value = "";
      secret.value = "";
      await load();
    } catch (e) {
      flash(e.message, "error");
    }
  });
  wrap.append(list, shown, form);
  return wrap;
}

function hook(base, w, reload) {
  const path = `${base}/-/webhooks/${encodeURIComponent(w.id)}`;
  const deliveries = h("div", { class: "deliveries" });
  const show = actionButton("Deliveries", async () => {
    const res = await api("GET", `${path}/deliveries`);
    deliveries.replaceChildren(
      res.deliveries.length
        ? h(
            "table",
            { class: "list" },
            h("thead", null, h("tr", null, ["Event", "Status", "Code", "Attempts", "When", ""].map((c) => h("th", null, c)))),
            h(
              "tbody",
              null,
              res.deliveries.map((d) =>
                h(
                  "tr",
                  null,
                  h("td", { "data-label": "Event" }, `${d.action || d.event}${d.tag ? ` ${d.tag}` : ""}`),
                  h("td", { "data-label": "Status", title: d.error || "" }, badge(d.status, d.status)),
                  h("td", { "data-label": "Code" }, d.response_code ? String(d.response_code) : "—"),
                  h("td", { "data-label": "Attempts" }, String(d.attempts)),
                  h("td", { "data-label": "When" }, when(d.last_attempt || d.created)),
                  h("td", null, actionButton("Redeliver", async () => {
                    await api("POST", `${path}/deliveries/${encodeURIComponent(d.id)}/redeliver`);
                    flash("Queued for redelivery.");
                  }, { class: "small" }))
                )
              )
            )
          )
        : h("p", { class: "muted" }, "No deliveries yet.")
    );
  }, { class: "small secondary" });
  const toggle = actionButton(w.active ? "Pause" : "Resume", async () => {
    await api("PUT", path, { active: !w.active });
    await reload();
  }, { class: "small secondary" });
  const del = actionButton("Delete", async () => {
    if (!(await confirmAction(`Delete the webhook to ${w.url}?`, { action: "Delete webhook" }))) return;
    await api("DELETE", path);
    await reload();
  }, { class: "small danger" });
  return h(
    "div",
    { class: "hook" },
    h("div", { class: "hook-head" }, h("code", null, w.url), " ", badge(w.active ? "active" : "paused", w.active ? "ok" : ""), " ", h("span", { class: "muted" }, (w.events || []).join(", "), w.last_status ? ` · last: ${w.last_status}${w.last_response_code ? ` (${w.last_response_code})` : ""}` : "")),
    h("div", { class: "actions" }, show, toggle, del),
    deliveries
  );
}

function deleteTag(base, name) {
  const input = h("input", { placeholder: "tag", "aria-label": "Tag to delete", autocomplete: "off", required: true });
  const form = h("form", { class: "inline", id: "delete-tag-form" }, input, h("button", { type: "submit", class: "danger" }, "Delete tag"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const tag = input.value.trim();
    if (!(await confirmAction(`Delete tag ${tag} of ${name} (v1 and v2)? Pulls of ${name}:${tag} will fail.`, { action: "Delete tag" }))) return;
    try {
      const res = await api("DELETE", `${base}/-/tags/${encodeURIComponent(tag)}`);
      flash(`Deleted ${res.deleted_tags.length} tag(s).`);
      input.value = "";
    } catch (e) {
      flash(e.message, "error");
    }
  });
  return section("Delete a tag", h("p", { class: "muted" }, "Or use the Delete button beside a tag on the repository's page."), form);
}

function danger(ctx, base, name) {
  const b = actionButton(
    "Delete repository",
    async () => {
      if (!(await confirmAction(`Delete ${name} with all its tags, stars and comments? This cannot be undone.`, { action: "Delete repository", typed: name }))) return;
      await api("DELETE", base);
      flash(`Deleted ${name}.`);
      ctx.go("/", { keepFlash: true });
    },
    { class: "danger", id: "delete-repo" }
  );
  const s = section("Danger zone", h("p", null, "Deleting the repository removes its tags; the next garbage collection frees their space."), b);
  s.classList.add("danger-zone");
  return s;
}

