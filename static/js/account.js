// Sign in, register, and the account's settings (password, access tokens).
import { api, current, signIn, loadSession } from "./api.js";
import { h, link, when, section, errorBox, flash, confirmAction, actionButton, pullLine } from "./dom.js";

/** Where to go after signing in: `?next=` when it is a path of this app, else home. */
function nextPath(ctx) {
  const next = ctx.params.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function field(label, attrs) {
  return h("label", { class: "field" }, h("span", null, label), h("input", attrs));
}

export async function signInPage(ctx) {
  ctx.title("Sign in");
  if (current().user) {
    ctx.main.append(h("p", null, `You are signed in as ${current().user.name}. `, link("/", "Repositories")));
    return;
  }
  const form = h(
    "form",
    { id: "signin-form", class: "stack narrow card" },
    h("h1", null, "Sign in"),
    field("Username", { name: "username", autocomplete: "username", required: true, autofocus: true }),
    field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")),
    ["open", "approval", "activation"].includes(current().registration) ? h("p", { class: "muted" }, "No account? ", link("/register", "Register")) : null
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await signIn(form.username.value, form.password.value);
      ctx.header();
      ctx.go(nextPath(ctx), { replace: true });
    } catch (e) {
      flash(e.status === 401 ? "Wrong username or password." : e.message, "error");
      button.disabled = false;
    }
  });
  ctx.main.append(form);
}

export async function registerPage(ctx) {
  ctx.title("Register");
  const mode = current().registration;
  if (!["open", "approval", "activation"].includes(mode)) {
    ctx.main.append(h("h1", null, "Register"), h("p", null, "This registry does not offer registration: ask an administrator for an account."));
    return;
  }
  const form = h(
    "form",
    { id: "register-form", class: "stack narrow card" },
    h("h1", null, "Create an account"),
    field("Username", { name: "username", autocomplete: "username", required: true, pattern: "[a-z0-9_]{4,30}", title: "4 to 30 characters: a-z, 0-9 and _" }),
    field("Email", { name: "email", type: "email", autocomplete: "email", required: true }),
    field("Password", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: "5" }),
    field("Password again", { name: "password2", type: "password", autocomplete: "new-password", required: true }),
    mode !== "open" ? h("p", { class: "muted" }, "An administrator activates new accounts before they can sign in.") : null,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Register"))
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (passwordsDiffer(form)) return;
    try {
      await api("POST", "/v1/users/", { username: form.username.value, password: form.password.value, email: form.email.value });
      if (mode !== "open") {
        flash("Account created: an administrator must activate it before you can sign in.");
        ctx.go("/signin", { keepFlash: true });
        return;
      }
      await signIn(form.username.value, form.password.value);
      ctx.header();
      flash(`Welcome, ${form.username.value}.`);
      ctx.go("/", { keepFlash: true });
    } catch (e) {
      flash(e.message, "error");
    }
  });
  ctx.main.append(form);
}

export async function accountPage(ctx) {
  ctx.title("Account");
  const user = current().user;
  if (!user) {
    ctx.go("/signin?next=/account", { replace: true });
    return;
  }
  ctx.main.append(h("h1", null, `Account: ${user.name}`), h("p", { class: "muted" }, user.email || "", user.admin ? " · administrator" : ""), password(ctx, user), await tokens());
}

function password(ctx, user) {
  const form = h(
    "form",
    { id: "password-form", class: "stack narrow" },
    field("Current password", { name: "current", type: "password", autocomplete: "current-password", required: true }),
    field("New password", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: "5" }),
    field("New password again", { name: "password2", type: "password", autocomplete: "new-password", required: true }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Change password"))
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (passwordsDiffer(form)) return;
    try {
      await api("PUT", `/api/v1/users/${encodeURIComponent(user.name)}/password`, { password: form.password.value, current_password: form.current.value });
      // A new password ends every session of the account, this one too.
      await loadSession();
      ctx.header();
      flash("Password changed: sign in again with the new one.");
      ctx.go("/signin?next=/account", { keepFlash: true });
    } catch (e) {
      flash(e.message, "error");
    }
  });
  return section("Password", h("p", { class: "muted" }, "Changing it signs you out everywhere."), form);
}

async function tokens() {
  const wrap = section("Access tokens");
  wrap.id = "tokens";
  wrap.append(h("p", { class: "muted" }, "Use a token instead of your password with docker login; it can be limited to some repositories and revoked here."));
  const list = h("div");
  const load = async () => {
    try {
      const res = await api("GET", "/api/v1/tokens");
      list.replaceChildren(
        res.length
          ? h(
              "table",
              { class: "list" },
              h("thead", null, h("tr", null, ["Name", "Login", "Scopes", "Created", "Last used", "Expires", ""].map((c) => h("th", null, c)))),
              h(
                "tbody",
                null,
                res.map((t) =>
                  h(
                    "tr",
                    { "data-token": t.id },
                    h("td", { "data-label": "Name" }, t.name),
                    h("td", { "data-label": "Login" }, h("code", null, t.login)),
                    h("td", { "data-label": "Scopes" }, t.scopes.map((s) => `${s.repository} (${s.actions.join("+")})`).join(", ")),
                    h("td", { "data-label": "Created" }, when(t.created)),
                    h("td", { "data-label": "Last used" }, t.last_used ? when(t.last_used) : "never"),
                    h("td", { "data-label": "Expires" }, t.expired ? "expired" : t.expires ? new Date(t.expires * 1000).toISOString().slice(0, 10) : "never"),
                    h("td", null, actionButton("Revoke", async () => {
                      if (!(await confirmAction(`Revoke the token ${t.name}? Clients using it can no longer sign in.`, { action: "Revoke" }))) return;
                      await api("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`);
                      await load();
                    }, { class: "small danger" }))
                  )
                )
              )
            )
          : h("p", { class: "muted" }, "No tokens.")
      );
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  };
  await load();
  const name = h("input", { placeholder: "name, e.g. ci", "aria-label": "Token name", required: true });
  const repo = h("input", { placeholder: "repository or ns/*", "aria-label": "Token repository", required: true, value: `${current().user.name}/*` });
  const push = h("input", { type: "checkbox", checked: true });
  const days = h("input", { type: "number", min: "1", placeholder: "days (empty: never)", "aria-label": "Expires in days" });
  const shown = h("div");
  const form = h("form", { id: "token-form", class: "inline wrap" }, name, repo, h("label", null, push, " push"), days, h("button", { type: "submit" }, "Create token"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { name: name.value, scopes: [{ repository: repo.value, actions: push.checked ? ["pull", "push"] : ["pull"] }] };
      if (days.value) body.expires_in = Number(days.value) * 86400;
      const created = await api("POST", "/api/v1/tokens", body);
      shown.replaceChildren(h("div", { class: "notice" }, h("p", null, "Copy the secret now: it is not shown again."), pullLine(`docker login -u '${created.login}' -p ${created.secret} ${location.host}`)));
      name.value = "";
      await load();
    } catch (e) {
      flash(e.message, "error");
    }
  });
  wrap.append(list, shown, form);
  return wrap;
}

/** Tells the user when the two password fields of `form` differ. */
function passwordsDiffer(form) {
  const differ = form.password.value !== form.password2.value;
  if (differ) flash("The passwords differ.", "error");
  return differ;
}
