//! Browsing, stars, comments and image details in the management API, over real HTTP against
//! one running server each: who sees a private repository (nobody but its readers, everywhere),
//! search, paging and sorting, star counts (also in `/v1/search`), comments with their limits
//! and permissions, what a v2 image, an index and a v1 image are made of, and what deleting a
//! repository or an account takes with it.

use crate::common::*;
use crate::v2::{
    desc, random_bytes, sha256, users, Api, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, SCHEMA1_SIGNED,
};
use reqwest::Method as M;
use serde_json::{json, Value};

/// Pushes an OCI image with this config and these layers under `tag`; returns the manifest's
/// digest and the config's bytes.
async fn push_image(
    api: &Api,
    auth: &str,
    repo: &str,
    tag: &str,
    config: &Value,
    layers: &[Vec<u8>],
) -> (String, Vec<u8>) {
    let config = serde_json::to_vec(config).expect("config");
    api.blob(auth, repo, &config).await;
    for l in layers {
        api.blob(auth, repo, l).await;
    }
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, &config),
        "layers": layers.iter().map(|l| desc(OCI_LAYER, l)).collect::<Vec<_>>()});
    let pushed = api
        .manifest(auth, repo, tag, OCI_MANIFEST, serde_json::to_vec(&m).expect("json"))
        .await;
    (pushed.digest, config)
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect()
}

async fn set_private(s: &Server, auth: &str, repo: &str, private: bool) {
    let path = format!("/api/v1/repositories/{repo}/-/visibility");
    let (st, r) = call(s, M::PUT, &path, Some(auth), Some(json!({ "private": private }))).await;
    assert_eq!(st, 200, "{r}");
}

/// A private repository is absent (404, the body of a missing one) for anonymous visitors and
/// strangers on every route here, and there for its collaborators, owner and admins, with
/// what each may do.
#[tokio::test]
async fn private_repositories_are_absent_for_everyone_who_may_not_read_them() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    api.image(&alice, "alice/open", "v1", json!({})).await;
    let secret = api.image(&alice, "alice/secret", "v1", json!({})).await;
    set_private(&s, &alice, "alice/secret", true).await;
    let (st, _) = call(
        &s,
        M::PUT,
        "/api/v1/repositories/alice/secret/-/collaborators/bobby",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 200);
    for (who, auth) in [("alice", Some(&alice)), ("bobby", Some(&bobby))] {
        let (st, r) = call(
            &s,
            M::POST,
            "/api/v1/repositories/alice/secret/-/comments",
            auth.map(String::as_str),
            Some(json!({"body": format!("hi from {who}")})),
        )
        .await;
        assert_eq!(st, 201, "{who}: {r}");
    }

    let (_, absent) = call(&s, M::GET, "/api/v1/browse/alice/nothing", None, None).await;
    assert_eq!(absent, json!({"error": "Repository not found"}));
    let secret_routes = [
        "/api/v1/browse/alice/secret".to_string(),
        "/api/v1/repositories/alice/secret/-/comments".to_string(),
        "/api/v1/repositories/alice/secret/-/manifests/v1".to_string(),
        format!("/api/v1/repositories/alice/secret/-/manifests/{}", secret.digest),
        "/api/v1/repositories/alice/secret/-/tags".to_string(),
    ];
    for (who, auth) in [("anonymous", None), ("carol", Some(carol.as_str()))] {
        let (st, list) = call(&s, M::GET, "/api/v1/browse", auth, None).await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(names(&list, "results"), ["alice/open"], "{who}");
        assert_eq!(list["total"], 1, "{who}");
        for path in &secret_routes {
            let (st, body) = call(&s, M::GET, path, auth, None).await;
            assert_eq!((st, &body), (404, &absent), "{who} GET {path}");
        }
        if let Some(auth) = auth {
            for (method, path, body) in [
                (M::PUT, "/api/v1/repositories/alice/secret/-/star", None),
                (
                    M::POST,
                    "/api/v1/repositories/alice/secret/-/comments",
                    Some(json!({"body": "x"})),
                ),
                (M::DELETE, "/api/v1/repositories/alice/secret/-/comments/1", None),
            ] {
                let (st, r) = call(&s, method.clone(), path, Some(auth), body).await;
                assert_eq!((st, &r), (404, &absent), "{who} {method} {path}");
            }
        }
    }
    // Changes need an account.
    let (st, _) = call(&s, M::PUT, "/api/v1/repositories/alice/open/-/star", None, None).await;
    assert_eq!(st, 401);
    let (st, _) = call(
        &s,
        M::POST,
        "/api/v1/repositories/alice/open/-/comments",
        None,
        Some(json!({"body": "x"})),
    )
    .await;
    assert_eq!(st, 401);
    let (st, _) = call(&s, M::GET, "/api/v1/stars", None, None).await;
    assert_eq!(st, 401);

    for (who, auth, can_push, can_manage) in [
        ("alice", &alice, true, true),
        ("bobby", &bobby, true, false),
        ("root", &root, true, true),
    ] {
        let (st, list) = call(&s, M::GET, "/api/v1/browse", Some(auth), None).await;
        assert_eq!(st, 200);
        assert_eq!(names(&list, "results"), ["alice/open", "alice/secret"], "{who}");
        let (st, d) = call(&s, M::GET, "/api/v1/browse/alice/secret", Some(auth), None).await;
        assert_eq!(st, 200, "{who}: {d}");
        assert_eq!(
            (d["name"].as_str(), d["owner"].as_str(), d["private"].as_bool()),
            (Some("alice/secret"), Some("alice"), Some(true))
        );
        assert_eq!(
            (d["can_push"].as_bool(), d["can_manage"].as_bool()),
            (Some(can_push), Some(can_manage)),
            "{who}"
        );
        assert_eq!(d["comments"], 2, "{who}");
        assert_eq!(d["tags"], 1);
        assert!(d["size"].as_u64().expect("size") > 300, "{d}");
        assert!(
            d["last_push"].as_u64().is_some() && d["created"].as_u64().is_some(),
            "{d}"
        );
        if can_manage {
            assert_eq!(d["collaborators"], json!(["bobby"]), "{who}");
        } else {
            assert!(
                d.get("collaborators").is_none(),
                "{who} must not see collaborators: {d}"
            );
        }
        let (st, m) = call(
            &s,
            M::GET,
            "/api/v1/repositories/alice/secret/-/manifests/v1",
            Some(auth),
            None,
        )
        .await;
        assert_eq!(
            (st, m["digest"].as_str()),
            (200, Some(secret.digest.as_str())),
            "{who}: {m}"
        );
    }
    // Public again: anyone sees it.
    set_private(&s, &alice, "alice/secret", false).await;
    let (_, list) = call(&s, M::GET, "/api/v1/browse", None, None).await;
    assert_eq!(names(&list, "results"), ["alice/open", "alice/secret"]);
    let (st, d) = call(&s, M::GET, "/api/v1/browse/alice/secret", None, None).await;
    assert_eq!(
        (
            st,
            d["starred"].as_bool(),
            d["can_push"].as_bool(),
            d["can_manage"].as_bool()
        ),
        (200, Some(false), Some(false), Some(false))
    );
}

/// Search matches names and descriptions without regard to case; pages hold `n`; sorts by
/// name, stars, pulls and push time; bad parameters are 400s.
#[tokio::test]
async fn browse_searches_pages_and_sorts() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    for r in ["alice/app1", "alice/app2", "alice/app3", "alice/tool"] {
        api.image(&alice, r, "latest", json!({})).await;
        // Push times are whole seconds: keep them apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let path = "/api/v1/repositories/alice/tool/-/description";
    let (st, _) = call(
        &s,
        M::PUT,
        path,
        Some(&alice),
        Some(json!({"description": "Builds every APP we ship"})),
    )
    .await;
    assert_eq!(st, 200);

    let (st, r) = call(&s, M::GET, "/api/v1/browse?q=app", None, None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        names(&r, "results"),
        ["alice/app1", "alice/app2", "alice/app3", "alice/tool"],
        "description matches too"
    );
    assert_eq!(
        (
            r["query"].as_str(),
            r["page"].as_u64(),
            r["n"].as_u64(),
            r["total"].as_u64()
        ),
        (Some("app"), Some(1), Some(25), Some(4))
    );
    let (_, r) = call(&s, M::GET, "/api/v1/browse?q=TOOL", None, None).await;
    assert_eq!(names(&r, "results"), ["alice/tool"]);
    let (_, r) = call(&s, M::GET, "/api/v1/browse?q=nothing-like-it", None, None).await;
    assert_eq!((r["total"].as_u64(), names(&r, "results").len()), (Some(0), 0));
    let (_, r) = call(&s, M::GET, "/api/v1/browse?n=3&page=2", None, None).await;
    assert_eq!(
        (names(&r, "results"), r["total"].as_u64()),
        (vec!["alice/tool".to_string()], Some(4))
    );
    let (_, r) = call(&s, M::GET, "/api/v1/browse?n=3&page=9", None, None).await;
    assert!(names(&r, "results").is_empty());

    // Stars: app3 twice, app2 once.
    for (auth, repo) in [(&bobby, "alice/app3"), (&carol, "alice/app3"), (&bobby, "alice/app2")] {
        let (st, _) = call(
            &s,
            M::PUT,
            &format!("/api/v1/repositories/{repo}/-/star"),
            Some(auth),
            None,
        )
        .await;
        assert_eq!(st, 200);
    }
    let (_, r) = call(&s, M::GET, "/api/v1/browse?sort=stars", None, None).await;
    assert_eq!(
        names(&r, "results"),
        ["alice/app3", "alice/app2", "alice/app1", "alice/tool"]
    );
    assert_eq!(r["results"][0]["stars"], 2);
    // Pulls: tool twice, app1 once (counted in memory; sorting sees them before any flush).
    for repo in ["alice/tool", "alice/tool", "alice/app1"] {
        let g = api.get(&format!("/v2/{repo}/manifests/latest"), Some(&alice)).await;
        assert_eq!(g.status, 200);
    }
    let (_, r) = call(&s, M::GET, "/api/v1/browse?sort=pulls", None, None).await;
    assert_eq!(
        names(&r, "results"),
        ["alice/tool", "alice/app1", "alice/app2", "alice/app3"]
    );
    assert_eq!(
        (r["results"][0]["pulls"].as_u64(), r["results"][0]["last_pull"].is_u64()),
        (Some(2), true)
    );
    let (_, r) = call(&s, M::GET, "/api/v1/browse?sort=pushed", None, None).await;
    assert_eq!(
        names(&r, "results"),
        ["alice/tool", "alice/app3", "alice/app2", "alice/app1"]
    );
    let row = &r["results"][0];
    for key in [
        "name",
        "owner",
        "description",
        "private",
        "stars",
        "starred",
        "pulls",
        "last_pull",
        "last_push",
        "size",
        "tags",
    ] {
        assert!(row.get(key).is_some(), "row lacks {key}: {row}");
    }
    assert_eq!(
        (row["tags"].as_u64(), row["description"].as_str()),
        (Some(1), Some("Builds every APP we ship"))
    );

    for bad in ["n=0", "n=101", "n=x", "page=0", "sort=size"] {
        let (st, r) = call(&s, M::GET, &format!("/api/v1/browse?{bad}"), None, None).await;
        assert_eq!(st, 400, "{bad}: {r}");
        assert!(r["error"].is_string(), "{r}");
    }
}

/// Starring counts once per account, says whether the caller starred, lists the caller's
/// stars (only those they may still read) and shows in `/v1/search` as Docker Hub's does.
#[tokio::test]
async fn stars_count_once_per_account_and_show_in_search() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    api.image(&alice, "alice/other", "v1", json!({})).await;
    let star = "/api/v1/repositories/alice/app/-/star";
    let (st, r) = call(&s, M::PUT, star, Some(&bobby), None).await;
    assert_eq!((st, r), (200, json!({"stars": 1, "starred": true})));
    let (st, r) = call(&s, M::PUT, star, Some(&bobby), None).await;
    assert_eq!((st, r), (200, json!({"stars": 1, "starred": true})), "idempotent");
    let (_, r) = call(&s, M::PUT, star, Some(&carol), None).await;
    assert_eq!(r, json!({"stars": 2, "starred": true}));
    let (_, r) = call(
        &s,
        M::PUT,
        "/api/v1/repositories/alice/other/-/star",
        Some(&bobby),
        None,
    )
    .await;
    assert_eq!(r, json!({"stars": 1, "starred": true}));

    let (_, d) = call(&s, M::GET, "/api/v1/browse/alice/app", Some(&bobby), None).await;
    assert_eq!((d["stars"].as_u64(), d["starred"].as_bool()), (Some(2), Some(true)));
    let (_, d) = call(&s, M::GET, "/api/v1/browse/alice/app", Some(&alice), None).await;
    assert_eq!((d["stars"].as_u64(), d["starred"].as_bool()), (Some(2), Some(false)));
    let (_, d) = call(&s, M::GET, "/api/v1/browse/alice/app", None, None).await;
    assert_eq!((d["stars"].as_u64(), d["starred"].as_bool()), (Some(2), Some(false)));

    let (st, r) = call(&s, M::GET, "/api/v1/stars", Some(&bobby), None).await;
    assert_eq!(st, 200);
    assert_eq!(names(&r, "results"), ["alice/app", "alice/other"]);
    assert_eq!(r["results"][0]["starred"], true);
    let (_, r) = call(&s, M::GET, "/api/v1/stars", Some(&alice), None).await;
    assert_eq!(r, json!({"results": []}));

    let search = client()
        .get(format!("{}/v1/search?q=alice", s.url))
        .send()
        .await
        .expect("search");
    let search = body_json(search).await;
    let counts: Vec<(String, u64)> = search["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["star_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("alice/app".to_string(), 2), ("alice/other".to_string(), 1)]);

    let (st, r) = call(&s, M::DELETE, star, Some(&carol), None).await;
    assert_eq!((st, r), (200, json!({"stars": 1, "starred": false})));
    let (st, r) = call(&s, M::DELETE, star, Some(&carol), None).await;
    assert_eq!((st, r), (200, json!({"stars": 1, "starred": false})), "idempotent");

    // Made private, it leaves the stars of those who may no longer read it, and comes back.
    set_private(&s, &alice, "alice/other", true).await;
    let (_, r) = call(&s, M::GET, "/api/v1/stars", Some(&bobby), None).await;
    assert_eq!(names(&r, "results"), ["alice/app"]);
    set_private(&s, &alice, "alice/other", false).await;
    let (_, r) = call(&s, M::GET, "/api/v1/stars", Some(&bobby), None).await;
    assert_eq!(names(&r, "results"), ["alice/app", "alice/other"]);
}

/// Comments: posted, listed oldest first in pages, edited by their author only, deleted by
/// their author, the repository's owner or an admin; bodies checked (400) and kept verbatim
/// (markup included: escaping is the display's job); posts limited per account (429).
#[tokio::test]
async fn comments_are_posted_paged_edited_deleted_and_limited() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    let path = "/api/v1/repositories/alice/app/-/comments";
    let post = |auth: String, body: Value| {
        let s = &s;
        async move { call(s, M::POST, path, Some(&auth), Some(body)).await }
    };

    let script = "<script>alert(1)</script>";
    let img = "\"><img src=x onerror=alert(document.cookie)>";
    let (st, a) = post(alice.clone(), json!({"body": format!("  {script}\n")})).await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(
        (a["author"].as_str(), a["body"].as_str()),
        (Some("alice"), Some(script)),
        "trimmed, verbatim"
    );
    assert_eq!(
        (
            a["can_edit"].as_bool(),
            a["can_delete"].as_bool(),
            a["edited"].is_null()
        ),
        (Some(true), Some(true), true)
    );
    assert!(a["created"].as_u64().is_some());
    let (st, b) = post(bobby.clone(), json!({"body": img})).await;
    assert_eq!((st, b["body"].as_str()), (201, Some(img)));
    // The answer is JSON (never HTML), the markup inside a JSON string.
    let raw = client().get(format!("{}{path}", s.url)).send().await.expect("list");
    assert!(raw.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = raw.text().await.expect("text");
    assert!(
        text.contains(r#""body":"\"><img src=x onerror=alert(document.cookie)>""#),
        "{text}"
    );
    let (st, c) = post(carol.clone(), json!({"body": "é".repeat(2000)})).await;
    assert_eq!(st, 201, "2,000 characters are allowed: {c}");

    for (body, what) in [
        (json!({"body": "   \n\t "}), "empty"),
        (json!({"body": "a".repeat(2001)}), "too long"),
        (json!({"body": "a\u{7}b"}), "control character"),
        (json!({"text": "x"}), "no body"),
    ] {
        let (st, r) = post(carol.clone(), body).await;
        assert_eq!(st, 400, "{what}: {r}");
    }

    // Listing: oldest first, with what each viewer may do.
    let (st, list) = call(&s, M::GET, path, None, None).await;
    assert_eq!(st, 200);
    let ids: Vec<u64> = list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            a["id"].as_u64().unwrap(),
            b["id"].as_u64().unwrap(),
            c["id"].as_u64().unwrap()
        ]
    );
    assert_eq!((list["total"].as_u64(), list["next"].is_null()), (Some(3), true));
    assert!(list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["can_edit"] == false && c["can_delete"] == false));
    let (_, list) = call(&s, M::GET, path, Some(&bobby), None).await;
    let flags: Vec<(bool, bool)> = list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["can_edit"].as_bool().unwrap(), c["can_delete"].as_bool().unwrap()))
        .collect();
    assert_eq!(flags, [(false, false), (true, true), (false, false)]);
    let (_, list) = call(&s, M::GET, path, Some(&alice), None).await;
    let flags: Vec<(bool, bool)> = list["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["can_edit"].as_bool().unwrap(), c["can_delete"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        flags,
        [(true, true), (false, true), (false, true)],
        "the owner moderates"
    );
    let (_, page) = call(&s, M::GET, &format!("{path}?n=2"), None, None).await;
    assert_eq!(
        (page["comments"].as_array().unwrap().len(), page["next"].as_u64()),
        (2, Some(ids[1]))
    );
    let (_, page) = call(&s, M::GET, &format!("{path}?n=2&after={}", ids[1]), None, None).await;
    assert_eq!(
        (
            page["comments"][0]["id"].as_u64(),
            page["next"].is_null(),
            page["total"].as_u64()
        ),
        (Some(ids[2]), true, Some(3))
    );
    for bad in ["n=0", "n=101", "after=x"] {
        let (st, _) = call(&s, M::GET, &format!("{path}?{bad}"), None, None).await;
        assert_eq!(st, 400, "{bad}");
    }

    // Editing: the author only.
    let one = |id: u64| format!("{path}/{id}");
    let (st, _) = call(
        &s,
        M::PUT,
        &one(ids[0]),
        Some(&bobby),
        Some(json!({"body": "mine now"})),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = call(
        &s,
        M::PUT,
        &one(ids[0]),
        Some(&root),
        Some(json!({"body": "admin edit"})),
    )
    .await;
    assert_eq!(st, 403, "not even an admin edits another's words");
    let (st, _) = call(&s, M::PUT, &one(ids[0]), Some(&alice), Some(json!({"body": ""}))).await;
    assert_eq!(st, 400);
    let (st, e) = call(&s, M::PUT, &one(ids[0]), Some(&alice), Some(json!({"body": "fixed"}))).await;
    assert_eq!(
        (st, e["body"].as_str(), e["edited"].is_u64()),
        (200, Some("fixed"), true),
        "{e}"
    );
    let (st, _) = call(&s, M::PUT, &one(999_999), Some(&alice), Some(json!({"body": "x"}))).await;
    assert_eq!(st, 404);

    // Deleting: the author, the owner, an admin; nobody else.
    let (st, _) = call(&s, M::DELETE, &one(ids[0]), Some(&bobby), None).await;
    assert_eq!(st, 403);
    let (st, _) = call(&s, M::DELETE, &one(ids[1]), Some(&carol), None).await;
    assert_eq!(st, 403);
    let (st, _) = call(&s, M::DELETE, &one(ids[1]), Some(&bobby), None).await;
    assert_eq!(st, 204, "the author");
    let (st, _) = call(&s, M::DELETE, &one(ids[2]), Some(&alice), None).await;
    assert_eq!(st, 204, "the owner");
    let (st, _) = call(&s, M::DELETE, &one(ids[0]), Some(&root), None).await;
    assert_eq!(st, 204, "an admin");
    let (st, _) = call(&s, M::DELETE, &one(ids[0]), Some(&root), None).await;
    assert_eq!(st, 404, "gone");
    let (_, list) = call(&s, M::GET, path, None, None).await;
    assert_eq!(list, json!({"comments": [], "next": null, "total": 0}));

    // Five posts a minute per account, then 429 with Retry-After; others still post.
    for i in 0..4 {
        let (st, r) = post(carol.clone(), json!({"body": format!("n{i}")})).await;
        assert_eq!(st, 201, "{r}");
    }
    let r = client()
        .post(format!("{}{path}", s.url))
        .header("Authorization", &carol)
        .json(&json!({"body": "one too many"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(body_json(r).await["error"].is_string());
    let (st, _) = post(bobby.clone(), json!({"body": "still fine"})).await;
    assert_eq!(st, 201);

    // The audit log has them.
    let (_, log) = call(&s, M::GET, "/api/v1/audit?action=comment", Some(&root), None).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["action"].as_str()).collect())
        .unwrap_or_default();
    for want in ["comment.create", "comment.edit", "comment.delete"] {
        assert!(actions.contains(&want), "{want} in {log}");
    }
}

/// A v2 image's layers, config and history; an index's children; a v1 image's ancestry.
#[tokio::test]
async fn image_details_show_layers_history_platforms_and_ancestry() {
    let s = Server::start("");
    let (alice, _, carol) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/app";
    let layers = vec![random_bytes(1234), random_bytes(777)];
    let config = json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "created": "2024-02-29T13:14:15.123Z",
        "config": {"Cmd": ["serve", "--port=80"], "Entrypoint": ["/app"], "Env": ["PATH=/bin", "MODE=prod"],
                   "Labels": {"org.opencontainers.image.source": "https://example.com/app"},
                   "WorkingDir": "/srv", "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layers[0]), sha256(&layers[1])]},
        "history": [
            {"created": "2024-02-29T13:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created": "2024-02-29T13:10:00Z", "created_by": "/bin/sh -c #(nop)  ENV MODE=prod", "empty_layer": true},
            {"created": "2024-02-29T13:14:15Z", "created_by": "COPY app /app # buildkit", "comment": "buildkit.dockerfile.v0"}
        ]
    });
    let (digest, config_bytes) = push_image(&api, &alice, repo, "v1.0", &config, &layers).await;
    let expect_size = (config_bytes.len() + layers[0].len() + layers[1].len()) as u64;

    for reference in ["v1.0", digest.as_str()] {
        let (st, m) = call(
            &s,
            M::GET,
            &format!("/api/v1/repositories/{repo}/-/manifests/{reference}"),
            None,
            None,
        )
        .await;
        assert_eq!(st, 200, "{m}");
        assert_eq!(
            (m["kind"].as_str(), m["digest"].as_str(), m["media_type"].as_str()),
            (Some("image"), Some(digest.as_str()), Some(OCI_MANIFEST))
        );
        assert_eq!(
            (m["size"].as_u64(), m["platform"].as_str()),
            (Some(expect_size), Some("linux/arm64/v8"))
        );
        assert_eq!(m["created"], 1_709_212_455);
        assert_eq!(
            m["layers"],
            json!([
                {"digest": sha256(&layers[0]), "size": 1234, "media_type": OCI_LAYER},
                {"digest": sha256(&layers[1]), "size": 777, "media_type": OCI_LAYER},
            ])
        );
        assert_eq!(
            m["config"],
            json!({"digest": sha256(&config_bytes), "size": config_bytes.len(),
                "cmd": ["serve", "--port=80"], "entrypoint": ["/app"], "env": ["PATH=/bin", "MODE=prod"],
                "labels": {"org.opencontainers.image.source": "https://example.com/app"},
                "working_dir": "/srv", "user": "app"})
        );
        assert_eq!(
            m["history"],
            json!([
                {"created": 1_709_211_600, "created_by": "/bin/sh -c #(nop) ADD file:abc in / ", "empty_layer": false, "comment": null},
                {"created": 1_709_212_200, "created_by": "/bin/sh -c #(nop)  ENV MODE=prod", "empty_layer": true, "comment": null},
                {"created": 1_709_212_455, "created_by": "COPY app /app # buildkit", "empty_layer": false, "comment": "buildkit.dockerfile.v0"},
            ])
        );
    }

    // An index: two platforms and an attestation.
    let amd_config = json!({"architecture": "amd64", "os": "linux"});
    let amd_layer = vec![random_bytes(500)];
    let (amd, amd_cfg) = push_image(&api, &alice, repo, "", &amd_config, &amd_layer).await;
    let (arm, _) = push_image(&api, &alice, repo, "", &config, &layers).await;
    let mut lens = Vec::new();
    for d in [&amd, &arm] {
        let g = api.get(&format!("/v2/{repo}/manifests/{d}"), Some(&alice)).await;
        assert_eq!(g.status, 200);
        lens.push(g.body.len() as u64);
    }
    let (amd_len, arm_len) = (lens[0], lens[1]);
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_len, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_len, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_len, "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd}},
    ]});
    let multi = api
        .manifest(&alice, repo, "multi", OCI_INDEX, serde_json::to_vec(&index).unwrap())
        .await;
    let (st, m) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/manifests/multi"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(
        (m["kind"].as_str(), m["digest"].as_str(), m["media_type"].as_str()),
        (Some("index"), Some(multi.digest.as_str()), Some(OCI_INDEX))
    );
    let amd_size = (amd_cfg.len() + 500) as u64;
    assert_eq!(
        m["size"].as_u64(),
        Some(amd_size + expect_size),
        "every child's blobs once"
    );
    assert_eq!(
        m["manifests"],
        json!([
            {"digest": amd, "media_type": OCI_MANIFEST, "size": amd_len, "platform": "linux/amd64", "attestation": false},
            {"digest": arm, "media_type": OCI_MANIFEST, "size": arm_len, "platform": "linux/arm64/v8", "attestation": false},
            {"digest": amd, "media_type": OCI_MANIFEST, "size": amd_len, "platform": "unknown/unknown", "attestation": true},
        ])
    );
    let (st, _) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/manifests/nope"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/manifests/sha256:{}", "0".repeat(64)),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);

    // Docker's legacy signed schema1: layers base first, history from v1Compatibility.
    let old = vec![
        api.blob(&alice, repo, &random_bytes(100)).await,
        api.blob(&alice, repo, &random_bytes(120)).await,
    ];
    let (signed, payload) = crate::v2::push::schema1_signed(repo, "legacy", &old);
    let g = api
        .put_manifest(Some(&alice), repo, "legacy", SCHEMA1_SIGNED, &signed)
        .await;
    assert_eq!(g.status, 201);
    let (st, m) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/manifests/legacy"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(
        (m["kind"].as_str(), m["digest"].clone(), m["media_type"].as_str()),
        (Some("image"), json!(sha256(&payload)), Some(SCHEMA1_SIGNED))
    );
    assert_eq!(
        (m["platform"].as_str(), m["size"].as_u64(), m["created"].as_u64()),
        (Some("linux/amd64"), Some(220), Some(1_433_116_800))
    );
    let got: Vec<(&str, u64)> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["digest"].as_str().unwrap(), l["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [(old[1].as_str(), 120), (old[0].as_str(), 100)]);
    assert_eq!(m["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(m["history"][0]["created_by"], "/bin/sh");

    // A v1 image and its ancestry, itself first.
    let images = chain(3);
    push_13(&s.url, "alice", "secret1", repo, &images, "old").await;
    let top = &images[2];
    let (st, v) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/images/{}", top.id),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["parent"].as_str()),
        (Some(top.id.as_str()), Some(images[1].id.as_str()))
    );
    assert_eq!(
        (v["created"].as_u64(), v["size"].as_u64()),
        (Some(1_413_559_697), Some(top.layer.len() as u64))
    );
    assert_eq!(v["checksum"].as_str(), Some(top.payload_checksum().as_str()), "{v}");
    let ancestry: Vec<(String, u64, u64, String)> = v["ancestry"]
        .as_array()
        .expect("ancestry")
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["size"].as_u64().unwrap(),
                a["created"].as_u64().unwrap(),
                a["created_by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, String)> = images
        .iter()
        .rev()
        .map(|i| (i.id.clone(), i.layer.len() as u64, 1_413_559_697, "/bin/sh".to_string()))
        .collect();
    assert_eq!(ancestry, want);
    // Only through a repository that holds it.
    api.image(&carol, "carol/mine", "x", json!({})).await;
    let (st, _) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/carol/mine/-/images/{}", top.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/images/{}", random_id()),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/images/not-an-id"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
}

/// A deleted repository takes its stars and comments (a new one of the same name starts with
/// none); a deleted account takes its stars.
#[tokio::test]
async fn deletes_take_stars_and_comments_with_them() {
    let s = Server::start("");
    let (alice, bobby, carol) = users(&s).await;
    let root = s.make_root();
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    api.image(&alice, "alice/keep", "v1", json!({})).await;
    for (auth, repo) in [
        (&bobby, "alice/app"),
        (&carol, "alice/app"),
        (&bobby, "alice/keep"),
        (&carol, "alice/keep"),
    ] {
        let (st, _) = call(
            &s,
            M::PUT,
            &format!("/api/v1/repositories/{repo}/-/star"),
            Some(auth),
            None,
        )
        .await;
        assert_eq!(st, 200);
    }
    let (st, _) = call(
        &s,
        M::POST,
        "/api/v1/repositories/alice/app/-/comments",
        Some(&bobby),
        Some(json!({"body": "nice"})),
    )
    .await;
    assert_eq!(st, 201);
    let path = "/api/v1/repositories/alice/keep/-/comments";
    let (st, kept) = call(&s, M::POST, path, Some(&bobby), Some(json!({"body": "mine"}))).await;
    assert_eq!(st, 201);

    let (st, _) = call(&s, M::DELETE, "/api/v1/repositories/alice/app", Some(&alice), None).await;
    assert_eq!(st, 204);
    let (_, r) = call(&s, M::GET, "/api/v1/stars", Some(&bobby), None).await;
    assert_eq!(names(&r, "results"), ["alice/keep"]);
    api.image(&alice, "alice/app", "v1", json!({})).await;
    let (_, d) = call(&s, M::GET, "/api/v1/browse/alice/app", Some(&bobby), None).await;
    assert_eq!(
        (d["stars"].as_u64(), d["starred"].as_bool(), d["comments"].as_u64()),
        (Some(0), Some(false), Some(0)),
        "{d}"
    );
    let (_, list) = call(&s, M::GET, "/api/v1/repositories/alice/app/-/comments", None, None).await;
    assert_eq!(list["total"], 0);

    let (st, r) = call(&s, M::DELETE, "/api/v1/users/bobby", Some(&root), None).await;
    assert_eq!(st, 200, "{r}");
    let (_, d) = call(&s, M::GET, "/api/v1/browse/alice/keep", None, None).await;
    assert_eq!(d["stars"], 1, "carol's star only");
    s.register("bobby", "secret2").await;
    let (_, r) = call(&s, M::GET, "/api/v1/stars", Some(&bobby), None).await;
    assert_eq!(r, json!({"results": []}), "a new bobby inherits nothing");
    // Not even the old account's comments: they stay, under the name, but are not the new one's.
    let (_, list) = call(&s, M::GET, path, Some(&bobby), None).await;
    let c = &list["comments"][0];
    let seen = (c["author"].as_str(), c["can_edit"].as_bool(), c["can_delete"].as_bool());
    assert_eq!(seen, (Some("bobby"), Some(false), Some(false)), "{list}");
    let one = format!("{path}/{}", kept["id"]);
    let (st, _) = call(&s, M::PUT, &one, Some(&bobby), Some(json!({"body": "hijacked"}))).await;
    assert_eq!(st, 403);
    let (st, _) = call(&s, M::DELETE, &one, Some(&bobby), None).await;
    assert_eq!(st, 403);
}

/// A repository with 1,000 tags: the first page of 50 answers quickly and holds the first 50
/// tag names in order, with the next page's cursor.
#[tokio::test]
async fn a_page_of_a_thousand_tags_is_quick() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let repo = "alice/many";
    let first = api.image(&alice, repo, "t0000", json!({})).await;
    let tags: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::new();
    for t in tags.iter().skip(1) {
        let (c, url, auth, body, t) = (
            api.c.clone(),
            s.url.clone(),
            alice.clone(),
            first.body.clone(),
            t.clone(),
        );
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("permit");
            let r = c
                .put(format!("{url}/v2/{repo}/manifests/{t}"))
                .header("Authorization", auth)
                .header("Content-Type", OCI_MANIFEST)
                .body(body)
                .send()
                .await
                .expect("put");
            assert_eq!(r.status(), 201, "tag {t}");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let path = format!("/api/v1/repositories/{repo}/-/tags?n=50");
    call(&s, M::GET, &path, Some(&alice), None).await; // warm
    let started = std::time::Instant::now();
    let (st, page) = call(&s, M::GET, &path, Some(&alice), None).await;
    let took = started.elapsed();
    println!("GET {path} of 1,000 tags: {took:?}");
    assert_eq!(st, 200, "{page}");
    let got: Vec<&str> = page["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, tags[..50].iter().map(String::as_str).collect::<Vec<_>>());
    assert!(page["tags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["digest"] == first.digest.as_str() && t["size"].as_u64() > Some(300)));
    assert_eq!(page["next"], "t0049");
    let (_, last) = call(
        &s,
        M::GET,
        &format!("/api/v1/repositories/{repo}/-/tags?n=50&last=t0949"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        (last["tags"].as_array().unwrap().len(), last["next"].is_null()),
        (50, true)
    );
    let started = std::time::Instant::now();
    let (_, d) = call(&s, M::GET, "/api/v1/browse/alice/many", None, None).await;
    println!("GET /api/v1/browse/alice/many (1,000 tags): {:?}", started.elapsed());
    assert_eq!(d["tags"], 1000);
}
