//! end-1 (`GET /v2/`), the `Docker-Distribution-API-Version` header, and the Docker token flow:
//! challenges, scopes granted by policy, and tokens that must be refused.

use super::*;
use skiff::auth::jwt::{AccessEntry, Claims, Signer, ISSUER};

#[tokio::test]
async fn base_endpoint_challenges_and_version_header() {
    let s = Server::start("");
    s.register("alice", "secret1").await;
    let api = Api::new(&s);
    let alice = basic("alice", "secret1");

    // Anonymous: 401 with the Bearer challenge (no scope: nothing in particular is asked).
    for method in [Method::GET, Method::HEAD] {
        let g = go(api.req(method.clone(), "/v2/", None)).await;
        err(&g, 401, "UNAUTHORIZED", "anonymous /v2/");
        assert_eq!(g.h("www-authenticate"), Some(challenge(&s.url, None, None)), "{method}");
    }
    let g = api.get("/v2/", Some(&alice)).await;
    ok(&g, 200, "Basic /v2/");
    assert_eq!(g.json(), json!({}));
    for wrong in [basic("alice", "wrong"), basic("nobody", "secret1")] {
        let g = api.get("/v2/", Some(&wrong)).await;
        err(&g, 401, "UNAUTHORIZED", "wrong password");
        assert_eq!(g.h("www-authenticate"), Some(challenge(&s.url, None, None)));
    }
    let (token, _) = api.token(Some(&alice), &[]).await;
    ok(&api.get("/v2/", Some(&bearer(&token))).await, 200, "Bearer /v2/");
    let g = api.get("/v2/", Some("Bearer not.a.token")).await;
    err(&g, 401, "UNAUTHORIZED", "garbage bearer");
    assert!(g.h("www-authenticate").is_some_and(|c| c.starts_with("Bearer realm=")));

    // Errors of every kind carry the version header (`go` checks it) and the JSON error format.
    err(
        &api.get("/v2/alice/app/manifests/latest", None).await,
        404,
        "NAME_UNKNOWN",
        "manifest of a repository that does not exist",
    );
    err(
        &api.get("/v2/Alice/App/tags/list", None).await,
        400,
        "NAME_INVALID",
        "invalid name",
    );
    let g = api.get("/v2/alice/app/no-such-endpoint", Some(&alice)).await;
    err(&g, 404, "NAME_UNKNOWN", "unknown v2 route");
    let g = go(api.req(Method::POST, "/v2/alice/app/manifests/latest", Some(&alice))).await;
    assert_eq!(g.status, 405, "method not allowed: {}", g.text());

    // With v2 disabled there is no v2 at all: 404 and no version header (Docker falls back to v1).
    let off = Server::start("[v2]\nenabled = false\n");
    let api = Api::new(&off);
    for path in ["/v2/", "/v2/token", "/v2/alice/app/tags/list", "/v2/_catalog"] {
        let g = go_raw(api.req(Method::GET, path, None)).await;
        assert_eq!(g.status, 404, "{path} with v2 disabled");
        assert_eq!(g.h("docker-distribution-api-version"), None, "{path}");
    }
}

/// A token signed with `signer` for `access` on alice/app, with the given validity.
fn forge(signer: &Signer, aud: &str, iss: &str, nbf: u64, exp: u64) -> String {
    let now = skiff::index::now_secs();
    signer
        .sign(&Claims {
            iss: iss.into(),
            sub: "alice".into(),
            aud: aud.into(),
            exp,
            nbf,
            iat: now,
            jti: "forged".into(),
            access: vec![AccessEntry {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
            gen: 0,
            pat: None,
        })
        .expect("sign")
}

#[tokio::test]
async fn token_flow_grants_what_policy_allows() {
    let s = Server::start("");
    let (alice, bobby, _) = users(&s).await;
    let api = Api::new(&s);
    let img = api.image(&alice, "alice/app", "latest", json!({})).await;
    let secret = api.image(&alice, "alice/secret", "latest", json!({})).await;
    set_private(&api, &alice, "alice/secret", true).await;
    let manifest = "/v2/alice/app/manifests/latest";

    // Anonymous: a pull token for a public repository pulls; push is silently not granted.
    let (anon, c) = api
        .token(
            None,
            &["repository:alice/app:pull,push", "repository:alice/secret:pull"],
        )
        .await;
    assert_eq!(c["aud"], "skiff");
    assert_eq!(c["sub"], "");
    assert_eq!(access(&c), vec![("alice/app".to_string(), vec!["pull".to_string()])]);
    let g = api.get(manifest, Some(&bearer(&anon))).await;
    ok(&g, 200, "anonymous token pulls");
    assert_eq!(g.body, img.body);
    let g = api.start_upload("alice/app", "", Some(&bearer(&anon))).await;
    err(&g, 401, "UNAUTHORIZED", "pull token pushes");
    assert_eq!(
        g.h("www-authenticate"),
        Some(challenge(
            &s.url,
            Some("repository:alice/app:pull,push"),
            Some("insufficient_scope")
        ))
    );

    // Without any credentials the push challenge names the scope to ask for.
    let g = api.start_upload("alice/app", "", None).await;
    err(&g, 401, "UNAUTHORIZED", "anonymous push");
    assert_eq!(
        g.h("www-authenticate"),
        Some(challenge(&s.url, Some("repository:alice/app:pull,push"), None))
    );
    let g = api.get("/v2/alice/secret/manifests/latest", None).await;
    err(&g, 404, "NAME_UNKNOWN", "anonymous reads a private repository");

    // The owner gets pull and push with Basic at the token endpoint, and pushes with the token.
    let (tok, c) = api.token(Some(&alice), &["repository:alice/app:pull,push"]).await;
    assert_eq!(c["sub"], "alice");
    assert_eq!(
        access(&c),
        vec![("alice/app".to_string(), vec!["pull".to_string(), "push".to_string()])]
    );
    let auth = bearer(&tok);
    api.blob(&auth, "alice/app", b"pushed with a token").await;
    let again = api
        .manifest(&auth, "alice/app", "v2", OCI_MANIFEST, img.body.clone())
        .await;
    assert_eq!(again.digest, img.digest);

    // Policy: nobody pushes into another user's namespace; a private repository grants nothing.
    let (tok, c) = api
        .token(
            Some(&bobby),
            &[
                "repository:alice/app:pull,push,delete",
                "repository:alice/secret:pull",
                "repository:bobby/app:pull,push",
            ],
        )
        .await;
    assert_eq!(
        access(&c),
        vec![
            ("alice/app".to_string(), vec!["pull".to_string()]),
            ("bobby/app".to_string(), vec!["pull".to_string(), "push".to_string()]),
        ]
    );
    let g = api.get("/v2/alice/secret/manifests/latest", Some(&bearer(&tok))).await;
    err(&g, 404, "NAME_UNKNOWN", "stranger's token on a private repository");
    let g = api
        .get(
            &format!("/v2/alice/secret/blobs/{}", secret.digest),
            Some(&bearer(&tok)),
        )
        .await;
    err(&g, 404, "NAME_UNKNOWN", "stranger's token on a private blob");
    let g = api.start_upload("alice/app", "", Some(&bearer(&tok))).await;
    err(&g, 401, "UNAUTHORIZED", "push into another namespace");
    api.blob(&bearer(&tok), "bobby/app", b"bobby's own").await;

    // A token for repository A does not open repository B.
    let (tok, _) = api.token(Some(&alice), &["repository:alice/app:pull,push"]).await;
    let g = api.get("/v2/alice/secret/manifests/latest", Some(&bearer(&tok))).await;
    err(&g, 404, "NAME_UNKNOWN", "token for alice/app reads alice/secret");
    let g = api.start_upload("alice/other", "", Some(&bearer(&tok))).await;
    err(&g, 401, "UNAUTHORIZED", "token for alice/app pushes alice/other");
    assert_eq!(
        g.h("www-authenticate"),
        Some(challenge(
            &s.url,
            Some("repository:alice/other:pull,push"),
            Some("insufficient_scope")
        ))
    );
    let (tok, _) = api.token(Some(&alice), &["repository:alice/secret:pull"]).await;
    ok(
        &api.get("/v2/alice/secret/manifests/latest", Some(&bearer(&tok))).await,
        200,
        "owner's token reads the private repository",
    );

    // The token endpoint itself: wrong password 401, bearer credentials refused.
    let g = go(api
        .req(Method::GET, "/v2/token", Some(&basic("alice", "nope")))
        .query(&[("service", "skiff"), ("scope", "repository:alice/app:pull")]))
    .await;
    err(&g, 401, "UNAUTHORIZED", "token with a wrong password");
    assert_eq!(g.h("www-authenticate").as_deref(), Some("Basic realm=\"skiff\""));
    let g = api.get("/v2/_catalog", Some(&basic("alice", "nope"))).await;
    err(&g, 401, "UNAUTHORIZED", "catalog with a wrong password");
    assert_eq!(
        g.h("www-authenticate"),
        Some(challenge(&s.url, Some("registry:catalog:*"), None))
    );
    let g = go(api.req(Method::GET, "/v2/token", Some(&bearer(&tok)))).await;
    err(&g, 401, "UNAUTHORIZED", "token for a token");

    // Tokens that must be refused, even for a public repository: 401 with the challenge.
    let own = Signer::load_or_create(&s.dir.join("data/index/jwt-ed25519.pk8")).expect("server key");
    let tmp = tempfile::tempdir().unwrap();
    let other = Signer::load_or_create(&tmp.path().join("k")).expect("other key");
    let now = skiff::index::now_secs();
    let good = forge(&own, "skiff", ISSUER, now - 1, now + 300);
    ok(&api.get(manifest, Some(&bearer(&good))).await, 200, "a valid token");
    let mut tampered = good.clone();
    let payload = good.split('.').nth(1).unwrap().to_string();
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut c: Value = serde_json::from_slice(&b64.decode(&payload).unwrap()).unwrap();
        c["access"][0]["name"] = json!("alice/secret");
        tampered = tampered.replace(&payload, &b64.encode(serde_json::to_vec(&c).unwrap()));
    }
    let bad = [
        ("expired", forge(&own, "skiff", ISSUER, now - 600, now - 300)),
        ("not yet valid", forge(&own, "skiff", ISSUER, now + 300, now + 600)),
        (
            "other audience",
            forge(&own, "other-registry", ISSUER, now - 1, now + 300),
        ),
        ("other issuer", forge(&own, "skiff", "someone-else", now - 1, now + 300)),
        ("foreign key", forge(&other, "skiff", ISSUER, now - 1, now + 300)),
        ("tampered claims", tampered),
    ];
    for (what, t) in &bad {
        let g = api.get(manifest, Some(&bearer(t))).await;
        err(&g, 401, "UNAUTHORIZED", what);
        assert_eq!(
            g.h("www-authenticate"),
            Some(challenge(&s.url, Some("repository:alice/app:pull"), None)),
            "{what}"
        );
        err(&api.get("/v2/", Some(&bearer(t))).await, 401, "UNAUTHORIZED", what);
    }
}

#[tokio::test]
async fn library_repositories_are_for_admins() {
    let tmp = tempfile::tempdir().unwrap();
    let (done, _, e) = cli(
        tmp.path(),
        &["user", "add", "root_admin", "--email", "root@example.com", "--admin"],
        "rootpass1\n",
    );
    assert!(done, "{e}");
    let s = Server::start_in(tmp.path(), "");
    s.register("alice", "secret1").await;
    let (root, alice) = (basic("root_admin", "rootpass1"), basic("alice", "secret1"));
    let api = Api::new(&s);

    // `busybox` is `library/busybox`: only admins push there.
    let g = api.start_upload("busybox", "", Some(&alice)).await;
    err(&g, 403, "DENIED", "user pushes to library/");
    let (tok, c) = api.token(Some(&alice), &["repository:busybox:pull,push"]).await;
    // Nothing: pull on a repository that does not exist is granted only to who could create
    // it, as for a private one.
    assert_eq!(access(&c), vec![]);
    err(
        &api.start_upload("busybox", "", Some(&bearer(&tok))).await,
        401,
        "UNAUTHORIZED",
        "user's token pushes to library/",
    );
    let (tok, c) = api.token(Some(&root), &["repository:busybox:pull,push"]).await;
    assert_eq!(
        access(&c),
        vec![(
            "library/busybox".to_string(),
            vec!["pull".to_string(), "push".to_string()]
        )]
    );
    let img = api.image(&bearer(&tok), "busybox", "latest", json!({})).await;

    // Both spellings name the same repository, for pulls, tokens and the catalog.
    for path in ["/v2/busybox/manifests/latest", "/v2/library/busybox/manifests/latest"] {
        let g = api.get(path, None).await;
        ok(&g, 200, path);
        assert_eq!(g.h("docker-content-digest"), Some(img.digest.clone()));
    }
    let (tok, _) = api.token(None, &["repository:library/busybox:pull"]).await;
    ok(
        &api.get("/v2/busybox/tags/list", Some(&bearer(&tok))).await,
        200,
        "token for library/busybox reads busybox",
    );
    let cat = api.get("/v2/_catalog", None).await.json();
    assert_eq!(cat["repositories"], json!(["library/busybox"]));
    ok(
        &api.delete("/v2/busybox/manifests/latest", Some(&root)).await,
        202,
        "admin deletes in library/",
    );
}
