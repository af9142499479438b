// Talks to Skiff's JSON API. The session cookie (HttpOnly, set by POST /api/v1/session) goes
// with every same-origin request; every state-changing request also carries the session's CSRF
// token, which a page of another origin cannot read.

let session = { user: null, csrf: null, registration: "closed" };

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function current() {
  return session;
}

/** Asks the server who is signed in (and whether registration is offered). */
export async function loadSession() {
  try {
    session = await api("GET", "/api/v1/session");
  } catch (e) {
    session = { user: null, csrf: null, registration: "closed" };
  }
  return session;
}

export async function signIn(username, password) {
  session = await api("POST", "/api/v1/session", { username, password });
  return session;
}

export async function signOut() {
  try {
    await api("DELETE", "/api/v1/session");
  } finally {
    session = { user: null, csrf: null, registration: session.registration };
  }
}

/** A JSON request; resolves to the parsed body (null when there is none), throws ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "The server cannot be reached");
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = text;
    }
  }
  if (!resp.ok) {
    const msg =
      (data && typeof data === "object" && (data.error || (data.errors && data.errors[0] && data.errors[0].message))) ||
      (typeof data === "string" && data) ||
      resp.statusText;
    if (resp.status === 429) {
      const wait = resp.headers.get("Retry-After");
      throw new ApiError(429, wait ? `${msg} (try again in ${wait} s)` : msg);
    }
    throw new ApiError(resp.status, msg);
  }
  return data;
}

/** `encodeURIComponent` per path component: repository names keep their `/`. */
export function repoPath(name) {
  return name.split("/").map(encodeURIComponent).join("/");
}
