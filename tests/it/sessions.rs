//! Web UI sessions over real HTTP: the cookie's attributes, what it authenticates, the CSRF
//! token and the origin check on every change, and every way a session ends.

use crate::common::{basic, call, client, Server};
use reqwest::Method as M;
use serde_json::{json, Value};

/// A request with the given cookie and extra headers; `(status, set-cookie, body)`.
async fn send(
    s: &Server,
    method: M,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut rb = client().request(method, format!("{}{path}", s.url));
    if let Some(c) = cookie {
        rb = rb.header("Cookie", format!("skiff_session={c}"));
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_string());
    let text = r.text().await.expect("body");
    (
        status,
        set_cookie,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Signs in; returns the cookie value and the CSRF token.
async fn sign_in(s: &Server, user: &str, password: &str) -> (String, String) {
    let (st, set, body) = send(
        s,
        M::POST,
        "/api/v1/session",
        None,
        &[],
        Some(json!({"username": user, "password": password})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let set = set.expect("a session cookie");
    let value = set
        .strip_prefix("skiff_session=")
        .and_then(|v| v.split(';').next())
        .expect("cookie value");
    (value.to_string(), body["csrf"].as_str().expect("csrf").to_string())
}

#[tokio::test]
async fn a_session_cookie_signs_in_and_every_change_needs_its_csrf_token() {
    let s = Server::start("");
    s.register("alice", "alicepass1").await;
    let alice = basic("alice", "alicepass1");
    let (st, _) = call(&s, M::PUT, "/v1/repositories/alice/app/", Some(&alice), Some(json!([]))).await;
    assert!(st == 200 || st == 204, "{st}");

    // Nobody yet: the UI learns it may offer registration.
    let (st, set, body) = send(&s, M::GET, "/api/v1/session", None, &[], None).await;
    assert_eq!(st, 200);
    assert_eq!(set, None);
    assert_eq!(body, json!({"user": null, "csrf": null, "registration": "open"}));

    // A wrong password sets nothing.
    let (st, set, body) = send(
        &s,
        M::POST,
        "/api/v1/session",
        None,
        &[],
        Some(json!({"username": "alice", "password": "wrong-one1"})),
    )
    .await;
    assert_eq!((st, set), (401, None), "{body}");
    assert!(body["error"].is_string());

    // Signing in: an HttpOnly, SameSite=Strict cookie, and the session's CSRF token.
    let (st, set, body) = send(
        &s,
        M::POST,
        "/api/v1/session",
        None,
        &[],
        Some(json!({"username": "alice", "password": "alicepass1"})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let set = set.expect("cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain http: a Secure cookie would never come back"
    );
    assert_eq!(body["user"]["name"], "alice");
    assert_eq!(body["user"]["admin"], false);
    let csrf = body["csrf"].as_str().expect("csrf").to_string();
    let cookie = set["skiff_session=".len()..]
        .split(';')
        .next()
        .expect("value")
        .to_string();
    assert!(cookie.len() >= 64 && cookie != csrf);

    let (st, _, me) = send(&s, M::GET, "/api/v1/me", Some(&cookie), &[], None).await;
    assert_eq!((st, me["name"].as_str()), (200, Some("alice")), "{me}");
    let (_, _, again) = send(&s, M::GET, "/api/v1/session", Some(&cookie), &[], None).await;
    assert_eq!(again["csrf"], csrf.as_str(), "one token per session");

    // A change under the cookie needs the token, and only this session's token.
    let describe = |d: &str| Some(json!({ "description": d }));
    let path = "/api/v1/repositories/alice/app/-/description";
    let (st, _, body) = send(&s, M::PUT, path, Some(&cookie), &[], describe("no token")).await;
    assert_eq!(st, 403, "{body}");
    assert!(body["error"].as_str().expect("error").contains("CSRF"), "{body}");
    let (_, other_csrf) = sign_in(&s, "alice", "alicepass1").await;
    let wrong = [("X-CSRF-Token", other_csrf.as_str())];
    let (st, _, _) = send(&s, M::PUT, path, Some(&cookie), &wrong, describe("other token")).await;
    assert_eq!(st, 403, "another session's token is no token");
    let (_, shown) = call(&s, M::GET, "/api/v1/repositories/alice/app", Some(&alice), None).await;
    assert_eq!(shown["description"], "", "nothing refused was changed");
    let good = [("X-CSRF-Token", csrf.as_str())];
    let (st, _, body) = send(&s, M::PUT, path, Some(&cookie), &good, describe("with token")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["description"], "with token");

    // From another origin nothing changes, whatever the credentials (a browser may hold Basic
    // credentials for this host too).
    let own = s.url.clone();
    for headers in [
        vec![("X-CSRF-Token", csrf.as_str()), ("Origin", "http://evil.example")],
        vec![("X-CSRF-Token", csrf.as_str()), ("Origin", "null")],
        vec![("X-CSRF-Token", csrf.as_str()), ("Sec-Fetch-Site", "cross-site")],
        vec![("X-CSRF-Token", csrf.as_str()), ("Sec-Fetch-Site", "same-site")],
    ] {
        let (st, _, body) = send(&s, M::PUT, path, Some(&cookie), &headers, describe("evil")).await;
        assert_eq!(st, 403, "{headers:?}: {body}");
        assert!(body["error"].as_str().expect("error").contains("origin"), "{body}");
    }
    let mut rb = client().put(format!("{}{path}", s.url));
    rb = rb
        .header("Authorization", &alice)
        .header("Origin", "http://evil.example");
    let r = rb.json(&json!({"description": "evil"})).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 403, "Basic from another origin");
    let same = [
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", own.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let (st, _, body) = send(&s, M::PUT, path, Some(&cookie), &same, describe("same origin")).await;
    assert_eq!(st, 200, "the server's own page: {body}");
    let (st, _, _) = send(
        &s,
        M::POST,
        "/api/v1/session",
        None,
        &[("Origin", "http://evil.example")],
        Some(json!({"username": "alice", "password": "alicepass1"})),
    )
    .await;
    assert_eq!(st, 403, "no signing in from another site's page either");
    let (_, shown) = call(&s, M::GET, "/api/v1/repositories/alice/app", Some(&alice), None).await;
    assert_eq!(shown["description"], "same origin");

    // A made-up cookie is nobody.
    let (st, _, _) = send(&s, M::GET, "/api/v1/me", Some(&"0".repeat(64)), &[], None).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn sessions_end_on_sign_out_password_change_and_deactivation() {
    let s = Server::start("");
    let root = s.make_root();
    s.register("alice", "alicepass1").await;
    s.register("bobby", "bobbypass1").await;

    // Sign-out needs the token, ends the session on the server and clears the cookie.
    let (cookie, csrf) = sign_in(&s, "alice", "alicepass1").await;
    let (st, _, _) = send(&s, M::DELETE, "/api/v1/session", Some(&cookie), &[], None).await;
    assert_eq!(st, 403, "signing someone out takes the page's token");
    assert_eq!(send(&s, M::GET, "/api/v1/me", Some(&cookie), &[], None).await.0, 200);
    let token = [("X-CSRF-Token", csrf.as_str())];
    let (st, set, _) = send(&s, M::DELETE, "/api/v1/session", Some(&cookie), &token, None).await;
    assert_eq!(st, 204);
    assert!(set.expect("cleared").contains("Max-Age=0"));
    assert_eq!(send(&s, M::GET, "/api/v1/me", Some(&cookie), &[], None).await.0, 401);
    let (st, set, body) = send(&s, M::GET, "/api/v1/session", Some(&cookie), &[], None).await;
    assert_eq!((st, &body["user"]), (200, &Value::Null));
    assert!(set.expect("a dead cookie is cleared").contains("Max-Age=0"));

    // A password change ends every session of the account, the one that made it too.
    let (first, _) = sign_in(&s, "alice", "alicepass1").await;
    let (second, csrf2) = sign_in(&s, "alice", "alicepass1").await;
    let token = [("X-CSRF-Token", csrf2.as_str())];
    let change = |current: Option<&str>| {
        let mut b = json!({"password": "alicepass2"});
        if let Some(c) = current {
            b["current_password"] = json!(c);
        }
        Some(b)
    };
    let path = "/api/v1/users/alice/password";
    // A browser left signed in is not enough: the current password is asked for.
    let (st, _, body) = send(&s, M::PUT, path, Some(&second), &token, change(None)).await;
    assert_eq!(st, 400, "{body}");
    let (st, _, body) = send(&s, M::PUT, path, Some(&second), &token, change(Some("guess-one1"))).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(
        send(&s, M::GET, "/api/v1/me", Some(&first), &[], None).await.0,
        200,
        "nothing changed"
    );
    let (st, _, body) = send(&s, M::PUT, path, Some(&second), &token, change(Some("alicepass1"))).await;
    assert_eq!(st, 204, "{body}");
    for old in [&first, &second] {
        assert_eq!(send(&s, M::GET, "/api/v1/me", Some(old), &[], None).await.0, 401);
    }
    let (fresh, _) = sign_in(&s, "alice", "alicepass2").await;
    assert_eq!(send(&s, M::GET, "/api/v1/me", Some(&fresh), &[], None).await.0, 200);

    // Deactivating an account ends its sessions; activating it again does not revive them.
    let (bob, _) = sign_in(&s, "bobby", "bobbypass1").await;
    for active in [false, true] {
        let (st, _) = call(
            &s,
            M::PUT,
            "/api/v1/users/bobby/active",
            Some(&root),
            Some(json!({ "active": active })),
        )
        .await;
        assert_eq!(st, 200);
    }
    assert_eq!(send(&s, M::GET, "/api/v1/me", Some(&bob), &[], None).await.0, 401);
}
