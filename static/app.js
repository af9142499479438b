// Skiff's web UI: search repositories (/v1/search) and list a repository's tags
// (/v2/{name}/tags/list). Credentials stay in memory and go out as Basic auth, so private
// repositories show up for those who may see them, exactly as for docker clients.
"use strict";
let auth = null;
const $ = (id) => document.getElementById(id);

async function api(path) {
  const headers = auth ? { Authorization: auth } : {};
  const resp = await fetch(path, { headers });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const msg = body.error || (body.errors && body.errors[0] && body.errors[0].message) || resp.statusText;
    throw new Error(`${resp.status}: ${msg}`);
  }
  return body;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function search(q) {
  $("repo").hidden = true;
  $("status").textContent = "Searching…";
  try {
    const res = await api(`/v1/search?q=${encodeURIComponent(q)}&n=100`);
    const body = $("results").tBodies[0];
    body.replaceChildren();
    for (const r of res.results) {
      const row = body.insertRow();
      const name = cell(row, "");
      const link = document.createElement("a");
      link.textContent = r.name;
      link.onclick = () => showRepo(r.name);
      name.appendChild(link);
      cell(row, r.description || "");
      cell(row, r.is_private ? "private" : "public", r.is_private ? "private" : "");
    }
    $("results").hidden = res.results.length === 0;
    $("status").textContent = `${res.num_results} repositor${res.num_results === 1 ? "y" : "ies"}`;
  } catch (e) {
    $("status").textContent = e.message;
  }
}

async function showRepo(name) {
  $("repo").hidden = false;
  $("repo-name").textContent = name;
  $("pull").textContent = `docker pull ${location.host}/${name}`;
  const list = $("tags");
  list.replaceChildren();
  try {
    const res = await api(`/v2/${name}/tags/list`);
    for (const t of res.tags) {
      const li = document.createElement("li");
      li.textContent = t;
      list.appendChild(li);
    }
    if (res.tags.length === 0) list.textContent = "No v2 tags.";
  } catch (e) {
    try {
      const v1 = await api(`/v1/repositories/${name}/tags`);
      for (const t of Object.keys(v1)) {
        const li = document.createElement("li");
        li.textContent = `${t} (v1)`;
        list.appendChild(li);
      }
    } catch (e2) {
      list.textContent = e2.message;
    }
  }
}

$("search").onsubmit = (ev) => { ev.preventDefault(); search($("q").value); };
$("login").onsubmit = async (ev) => {
  ev.preventDefault();
  const candidate = "Basic " + btoa(`${$("user").value}:${$("pass").value}`);
  const resp = await fetch("/v1/users/", { headers: { Authorization: candidate } });
  if (resp.ok) {
    auth = candidate;
    $("login").hidden = true;
    $("who").hidden = false;
    $("who").textContent = `Signed in as ${$("user").value}`;
    search($("q").value);
  } else {
    $("status").textContent = resp.status === 403 ? "Account is not active" : "Wrong login or password";
  }
};
search("");
