//! Access tokens and robot accounts, against a running server: a token signs in as the password
//! of HTTP Basic (what `docker login` sends) on v2, `/v2/token` and v1, allows only what its
//! scopes and its owner's current rights both allow, is shown once, and stops working when
//! revoked, expired, or its owner is deactivated or deleted.

use crate::common::*;
use crate::v2::{access, bearer, random_bytes, set_private, sha256, users, Api};
use reqwest::Method as M;
use serde_json::{json, Value};

/// Creates a token through the API as `auth`; returns its id and secret.
async fn create(s: &Server, auth: &str, body: Value) -> (String, String) {
    let (st, made) = call(s, M::POST, "/api/v1/tokens", Some(auth), Some(body)).await;
    assert_eq!(st, 201, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_string();
    (made["id"].as_str().expect("id").to_string(), secret)
}

fn scope(repo: &str, actions: &[&str]) -> Value {
    json!([{"repository": repo, "actions": actions}])
}

/// `GET /v2/`, what `docker login` checks the credentials with: the status.
async fn login_v2(api: &Api, auth: &str) -> u16 {
    api.get("/v2/", Some(auth)).await.status
}

/// A monolithic v2 blob push: the status.
async fn push_blob(api: &Api, repo: &str, auth: &str) -> u16 {
    let data = random_bytes(64);
    let path = format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(&data));
    crate::v2::go(api.req(M::POST, &path, Some(auth)).body(data))
        .await
        .status
}

#[tokio::test]
async fn a_pull_token_pulls_its_repository_and_nothing_else() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = users(&s).await;
    let app = api.image(&alice, "alice/app", "v1", json!({})).await;
    api.image(&alice, "alice/secret", "v1", json!({})).await;
    api.image(&bobby, "bobby/tool", "v1", json!({})).await;
    for (owner, repo) in [(&alice, "alice/app"), (&alice, "alice/secret"), (&bobby, "bobby/tool")] {
        set_private(&api, owner, repo, true).await;
    }
    crate::v2::add_collaborator(&api, &bobby, "bobby/tool", "alice").await;

    let r = client()
        .post(format!("{}/api/v1/tokens", s.url))
        .header("Authorization", &alice)
        .json(&json!({"name": "laptop", "scopes": scope("alice/app", &["pull"])}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["cache-control"],
        "no-store",
        "the secret is not to be cached"
    );
    let made: Value = r.json().await.expect("json");
    let secret = made["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("skiff_pat_") && secret.len() >= 58, "{secret}");
    assert_eq!(
        (made["login"].as_str(), made["robot"].as_bool()),
        (Some("alice"), Some(false))
    );
    let pat = basic("alice", &secret);

    // `docker login` (v2 and v1) takes it as the password.
    assert_eq!(login_v2(&api, &pat).await, 200);
    let (st, body) = call(
        &s,
        M::POST,
        "/v1/users/",
        None,
        Some(json!({"username": "alice", "password": secret, "email": "alice@example.com"})),
    )
    .await;
    assert_eq!(
        (st, body),
        (400, json!("Username or email already exists")),
        "v1 login goes on"
    );
    assert_eq!(call(&s, M::GET, "/v1/users/", Some(&pat), None).await.0, 200);
    assert_eq!(login_v2(&api, &basic("bobby", &secret)).await, 401, "another login");

    // It pulls its repository, over v2 and v1, and cannot push there.
    let manifest = format!("/v2/alice/app/manifests/{}", app.digest);
    assert_eq!(api.get(&manifest, Some(&pat)).await.status, 200);
    assert_eq!(
        call(&s, M::GET, "/v1/repositories/alice/app/tags", Some(&pat), None)
            .await
            .0,
        200
    );
    assert_eq!(push_blob(&api, "alice/app", &pat).await, 403);
    // What its owner may read besides is absent to it, as to a stranger.
    for repo in ["alice/secret", "bobby/tool"] {
        assert_eq!(
            api.get(&format!("/v2/{repo}/tags/list"), Some(&alice)).await.status,
            200
        );
        let g = api.get(&format!("/v2/{repo}/tags/list"), Some(&pat)).await;
        crate::v2::err(&g, 404, "NAME_UNKNOWN", repo);
        assert_eq!(
            call(&s, M::GET, &format!("/v1/repositories/{repo}/tags"), Some(&pat), None)
                .await
                .0,
            404
        );
    }
    let catalog = api.get("/v2/_catalog", Some(&pat)).await.json();
    assert_eq!(catalog["repositories"], json!(["alice/app"]), "{catalog}");

    // A v2 token asked for with it grants its scopes only, whatever is asked.
    let (jwt, claims) = api
        .token(
            Some(&pat),
            &[
                "repository:alice/app:pull,push",
                "repository:alice/secret:pull",
                "repository:bobby/tool:pull,push",
            ],
        )
        .await;
    assert_eq!(
        access(&claims),
        vec![("alice/app".to_string(), vec!["pull".to_string()])]
    );
    assert_eq!(claims["sub"], "alice");
    assert_eq!(api.get(&manifest, Some(&bearer(&jwt))).await.status, 200);
    assert_eq!(push_blob(&api, "alice/app", &bearer(&jwt)).await, 401);

    // It manages nothing.
    assert_eq!(call(&s, M::GET, "/api/v1/tokens", Some(&pat), None).await.0, 401);
    let (st, _) = call(
        &s,
        M::PUT,
        "/v1/users/alice/",
        Some(&pat),
        Some(json!({"password": "x-pass-9"})),
    )
    .await;
    assert_eq!(st, 401, "no password change with a token");

    // Lists never show the secret: the owner's, an admin's, the CLI's; others see none.
    let (st, list) = call(&s, M::GET, "/api/v1/tokens", Some(&alice), None).await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["id"], made["id"]);
    assert!(list[0]["last_used"].as_u64().is_some(), "{list}");
    assert!(
        list[0].get("secret").is_none() && list[0].get("hash").is_none(),
        "{list}"
    );
    let (_, others) = call(&s, M::GET, "/api/v1/tokens", Some(&bobby), None).await;
    assert_eq!(others, json!([]));
    let root = s.make_root();
    let (_, all) = call(&s, M::GET, "/api/v1/tokens", Some(&root), None).await;
    let (ok, out, err) = cli(&s.dir, &["token", "list"], "");
    assert!(ok, "{err}");
    let id = made["id"].as_str().expect("id");
    assert!(
        out.starts_with("ID") && out.contains(id) && out.contains("alice/app:pull"),
        "{out}"
    );
    for shown in [list.to_string(), all.to_string(), out] {
        assert!(shown.contains(id) && !shown.contains("skiff_pat_"), "{shown}");
    }
}

#[tokio::test]
async fn a_robot_pushes_only_where_its_scopes_allow() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = users(&s).await;
    let root = s.make_root();
    let robot = |ns: &str, repo: &str| json!({"name": "ci", "robot": ns, "scopes": scope(repo, &["pull", "push"])});

    // Who may make which robot.
    let (st, body) = call(
        &s,
        M::POST,
        "/api/v1/tokens",
        Some(&bobby),
        Some(robot("alice", "alice/app")),
    )
    .await;
    assert_eq!(st, 403, "a robot of alice's made by bobby: {body}");
    let (st, body) = call(
        &s,
        M::POST,
        "/api/v1/tokens",
        Some(&alice),
        Some(robot("alice", "bobby/app")),
    )
    .await;
    assert_eq!(st, 400, "a robot works in its namespace only: {body}");
    let (st, _) = call(
        &s,
        M::POST,
        "/api/v1/tokens",
        Some(&alice),
        Some(robot("library", "library/x")),
    )
    .await;
    assert_eq!(st, 403, "library robots are for admins");
    let (id, secret) = create(&s, &alice, robot("alice", "alice/app")).await;
    let (st, _) = call(
        &s,
        M::POST,
        "/api/v1/tokens",
        Some(&alice),
        Some(robot("alice", "alice/app")),
    )
    .await;
    assert_eq!(st, 409, "robot names are unique");
    let ci = basic("robot$alice+ci", &secret);
    assert_eq!(login_v2(&api, &ci).await, 200);
    assert_eq!(
        login_v2(&api, &basic("alice", &secret)).await,
        401,
        "a robot signs in as itself"
    );

    // The Docker flow: a JWT from /v2/token with Basic robot:secret, then the push.
    let (jwt, claims) = api.token(Some(&ci), &["repository:alice/app:pull,push"]).await;
    assert_eq!(
        access(&claims),
        vec![("alice/app".to_string(), vec!["pull".to_string(), "push".to_string()])]
    );
    api.image(&bearer(&jwt), "alice/app", "v1", json!({})).await;
    let (st, shown) = call(&s, M::GET, "/api/v1/repositories/alice/app", Some(&alice), None).await;
    assert_eq!(
        (st, shown["owner"].as_str()),
        (200, Some("alice")),
        "what a robot pushes is its owner's"
    );

    // Anywhere else it is refused, whether asked with a JWT or with Basic.
    let (other_jwt, claims) = api
        .token(
            Some(&ci),
            &["repository:alice/other:pull,push", "repository:bobby/app:push"],
        )
        .await;
    assert_eq!(access(&claims), vec![], "nothing beyond its scopes");
    assert_eq!(push_blob(&api, "alice/other", &bearer(&other_jwt)).await, 401);
    assert_eq!(push_blob(&api, "alice/other", &bearer(&jwt)).await, 401);
    assert_eq!(push_blob(&api, "alice/other", &ci).await, 403);
    assert_eq!(push_blob(&api, "bobby/app", &ci).await, 403);
    assert_eq!(push_blob(&api, "alice/app", &ci).await, 201, "Basic works where it may");

    // The operator makes a robot for library/, owned by an admin; bare names are library's.
    let (ok, out, err) = cli(
        &s.dir,
        &[
            "token",
            "create",
            "deploy",
            "--owner",
            "root",
            "--robot",
            "library",
            "--scope",
            "library/*:push",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("robot$library+deploy") && err.contains("shown only now"),
        "{err}"
    );
    let deploy = basic("robot$library+deploy", out.trim());
    assert_eq!(push_blob(&api, "busybox", &deploy).await, 201);
    assert_eq!(push_blob(&api, "alice/app", &deploy).await, 403);
    let (ok, _, err) = cli(
        &s.dir,
        &[
            "token",
            "create",
            "x",
            "--owner",
            "bobby",
            "--robot",
            "library",
            "--scope",
            "library/*:push",
        ],
        "",
    );
    assert!(!ok && err.contains("administrator"), "{err}");
    let (_, all) = call(&s, M::GET, "/api/v1/tokens", Some(&root), None).await;
    let logins: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["login"].as_str())
        .collect();
    assert_eq!(logins, vec!["robot$alice+ci", "robot$library+deploy"], "{all}");

    // Revoked with the CLI: the robot and the JWT it got stop at once.
    let (ok, out, err) = cli(&s.dir, &["token", "rm", &id], "");
    assert!(ok && out.contains(&id), "{err}");
    assert_eq!(login_v2(&api, &ci).await, 401);
    assert_eq!(push_blob(&api, "alice/app", &bearer(&jwt)).await, 401);
    let (ok, _, err) = cli(&s.dir, &["token", "rm", &id], "");
    assert!(!ok && err.contains("No such token"), "{err}");
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = users(&s).await;
    let (id, secret) = create(&s, &alice, json!({"name": "ci", "scopes": scope("alice/*", &["push"])})).await;
    let pat = basic("alice", &secret);

    // Docker 1.x pushes and pulls with it: Basic at the index, then the tokens it hands out.
    let images = chain(2);
    let v1_token = push_13(&s.url, "alice", &secret, "alice/old", &images, "latest").await;
    let pulled = pull_13(&s.url, Some(("alice", &secret)), "alice/old", "latest").await;
    assert_eq!(pulled.map(|p| p.len()), Ok(2));
    let (jwt, _) = api.token(Some(&pat), &["repository:alice/app:pull,push"]).await;
    assert_eq!(push_blob(&api, "alice/app", &bearer(&jwt)).await, 201);
    // v1 images have no repository in their path: a token reads its owner's images only
    // through the repositories it opens.
    set_private(&api, &alice, "alice/old", true).await;
    let (_, other) = create(
        &s,
        &alice,
        json!({"name": "other", "scopes": scope("alice/app", &["pull"])}),
    )
    .await;
    let image = format!("/v1/images/{}/json", images[0].id);
    assert_eq!(call(&s, M::GET, &image, Some(&pat), None).await.0, 200);
    assert_eq!(call(&s, M::GET, &image, Some(&alice), None).await.0, 200);
    assert_eq!(
        call(&s, M::GET, &image, Some(&basic("alice", &other)), None).await.0,
        404
    );

    // Only its owner (or an admin) revokes it; to anyone else it does not exist.
    let path = format!("/api/v1/tokens/{id}");
    assert_eq!(call(&s, M::DELETE, &path, Some(&bobby), None).await.0, 404);
    assert_eq!(login_v2(&api, &pat).await, 200);
    assert_eq!(call(&s, M::DELETE, &path, Some(&alice), None).await.0, 204);
    assert_eq!(call(&s, M::DELETE, &path, Some(&alice), None).await.0, 404);
    assert_eq!(login_v2(&api, &pat).await, 401, "revoked");
    assert_eq!(call(&s, M::GET, "/v1/users/", Some(&pat), None).await.0, 401);
    assert_eq!(
        push_blob(&api, "alice/app", &bearer(&jwt)).await,
        401,
        "its JWT went with it"
    );
    let tags = call(
        &s,
        M::GET,
        "/v1/repositories/alice/old/tags",
        Some(&token_auth(&v1_token)),
        None,
    )
    .await;
    assert_eq!(tags.0, 401, "and its v1 token: {}", tags.1);

    // Expired: refused, and listed as such.
    let (_, secret) = create(
        &s,
        &alice,
        json!({"name": "short", "scopes": scope("alice/app", &["pull"]), "expires_in": 2}),
    )
    .await;
    let short = basic("alice", &secret);
    assert_eq!(login_v2(&api, &short).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let g = api.get("/v2/", Some(&short)).await;
    assert_eq!(g.status, 401);
    assert!(g.text().contains("expired"), "{}", g.text());
    let (_, list) = call(&s, M::GET, "/api/v1/tokens", Some(&alice), None).await;
    let listed = |name: &str| list.as_array().unwrap().iter().find(|t| t["name"] == name).cloned();
    assert_eq!(
        listed("short").map(|t| t["expired"].clone()),
        Some(json!(true)),
        "{list}"
    );
    assert_eq!(
        listed("other").map(|t| t["expired"].clone()),
        Some(json!(false)),
        "{list}"
    );

    // A password change leaves tokens alone: they are separate credentials, revoked on their own.
    let (_, secret) = create(
        &s,
        &alice,
        json!({"name": "laptop", "scopes": scope("alice/app", &["pull"])}),
    )
    .await;
    let (st, _) = call(
        &s,
        M::PUT,
        "/api/v1/users/alice/password",
        Some(&alice),
        Some(json!({"password": "new-pass-1"})),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(login_v2(&api, &basic("alice", &secret)).await, 200);

    // What a token request may not say.
    let alice = basic("alice", "new-pass-1");
    for bad in [
        json!({"name": "a", "scopes": scope("alice/app", &["pull"]), "expires_in": 0}),
        json!({"name": "a", "scopes": []}),
        json!({"name": "a", "scopes": scope("alice/app", &["delete"])}),
        json!({"name": "a", "scopes": scope("*", &["pull"])}),
        json!({"name": "Not a name", "scopes": scope("alice/app", &["pull"])}),
        json!({"name": "a", "scopes": scope("alice/app", &["pull"]), "expires": 5}),
    ] {
        let (st, body) = call(&s, M::POST, "/api/v1/tokens", Some(&alice), Some(bad.clone())).await;
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (st, _) = call(
        &s,
        M::POST,
        "/api/v1/tokens",
        Some(&alice),
        Some(json!({"name": "a", "owner": "bobby", "scopes": scope("bobby/app", &["pull"])})),
    )
    .await;
    assert_eq!(st, 403, "a token for another account");
    // No password can pass for a token.
    let (st, body) = call(
        &s,
        M::PUT,
        "/api/v1/users/alice/password",
        Some(&alice),
        Some(json!({"password": "skiff_pat_mine"})),
    )
    .await;
    assert_eq!(st, 400, "{body}");
}

#[tokio::test]
async fn owner_deactivation_and_deletion_kill_tokens() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = users(&s).await;
    let root = s.make_root();
    let (_, secret) = create(
        &s,
        &alice,
        json!({"name": "laptop", "scopes": scope("alice/app", &["push"])}),
    )
    .await;
    let pat = basic("alice", &secret);
    let (_, secret) = create(
        &s,
        &alice,
        json!({"name": "ci", "robot": "alice", "scopes": scope("alice/app", &["push"])}),
    )
    .await;
    let ci = basic("robot$alice+ci", &secret);
    let (jwt, _) = api.token(Some(&ci), &["repository:alice/app:pull,push"]).await;
    let (_, secret) = create(
        &s,
        &bobby,
        json!({"name": "laptop", "scopes": scope("bobby/app", &["push"])}),
    )
    .await;
    let bobs = basic("bobby", &secret);
    // An admin's robot for bobby's namespace.
    let (_, secret) = create(
        &s,
        &root,
        json!({"name": "ci", "robot": "bobby", "scopes": scope("bobby/*", &["push"])}),
    )
    .await;
    let bobby_ci = basic("robot$bobby+ci", &secret);
    let jwt = bearer(&jwt);
    for (auth, repo) in [
        (&pat, "alice/app"),
        (&ci, "alice/app"),
        (&jwt, "alice/app"),
        (&bobs, "bobby/app"),
        (&bobby_ci, "bobby/app"),
    ] {
        assert_eq!(push_blob(&api, repo, auth).await, 201, "{repo}");
    }

    // Deactivated: every token of the account ends, and stays ended when it is back.
    let active = |on: bool| json!({"active": on});
    let (st, _) = call(
        &s,
        M::PUT,
        "/api/v1/users/alice/active",
        Some(&root),
        Some(active(false)),
    )
    .await;
    assert_eq!(st, 200);
    for auth in [&pat, &ci] {
        assert_eq!(login_v2(&api, auth).await, 401);
    }
    assert_eq!(push_blob(&api, "alice/app", &jwt).await, 401);
    call(
        &s,
        M::PUT,
        "/api/v1/users/alice/active",
        Some(&root),
        Some(active(true)),
    )
    .await;
    for auth in [&pat, &ci] {
        assert_eq!(login_v2(&api, auth).await, 401, "still revoked");
    }
    let (_, list) = call(&s, M::GET, "/api/v1/tokens", Some(&root), None).await;
    assert!(
        !list.to_string().contains("\"alice\""),
        "alice's tokens are gone: {list}"
    );

    // Deleted: its tokens and its namespace's robots end, and a new account of that name
    // gets none of them.
    let (st, body) = call(
        &s,
        M::DELETE,
        "/api/v1/users/bobby?repositories=delete",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(login_v2(&api, &bobs).await, 401);
    assert_eq!(login_v2(&api, &bobby_ci).await, 401);
    s.register("bobby", "secret2").await;
    assert_eq!(login_v2(&api, &bobs).await, 401);
    assert_eq!(login_v2(&api, &bobby_ci).await, 401);
    let (_, list) = call(&s, M::GET, "/api/v1/tokens", Some(&root), None).await;
    assert_eq!(list, json!([]), "nothing left");
}
