//! A private repository answers, byte for byte, like a repository that does not exist, on every
//! route, for every caller who may not read it (anonymous, a stranger with a password, a
//! stranger's v1 token for another repository, a stranger's v2 bearer token).

use crate::common::*;
use crate::v2::{bearer, sha256, Api, OCI_MANIFEST};
use reqwest::Method;

const PRIVATE: &str = "alice/secret";
const ABSENT: &str = "alice/nothing";

/// One request, with `{R}` standing for the repository and `{I}` for an image id or digest
/// that exists only in the private repository.
struct Probe {
    method: Method,
    path: &'static str,
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const fn p(method: Method, path: &'static str) -> Probe {
    Probe {
        method,
        path,
        body: "",
        headers: &[],
    }
}

fn probes() -> Vec<Probe> {
    vec![
        p(Method::GET, "/v1/repositories/{R}/json"),
        p(Method::GET, "/v1/repositories/{R}/tags"),
        p(Method::GET, "/v1/repositories/{R}/tags/latest"),
        p(Method::GET, "/v1/repositories/{R}/tags/nosuchtag"),
        p(Method::GET, "/v1/repositories/{R}/tags/latest/json"),
        p(Method::GET, "/v1/repositories/{R}/images"),
        Probe {
            headers: &[("X-Docker-Token", "true")],
            ..p(Method::GET, "/v1/repositories/{R}/images")
        },
        p(Method::GET, "/v1/repositories/{R}/properties"),
        p(Method::GET, "/v1/repositories/{R}/collaborators"),
        Probe {
            body: "\"{I}\"",
            ..p(Method::PUT, "/v1/repositories/{R}/tags/other")
        },
        p(Method::DELETE, "/v1/repositories/{R}/tags/latest"),
        p(Method::DELETE, "/v1/repositories/{R}/tags"),
        p(Method::DELETE, "/v1/repositories/{R}/"),
        Probe {
            body: "[]",
            ..p(Method::PUT, "/v1/repositories/{R}/")
        },
        p(Method::PUT, "/v1/repositories/{R}/auth"),
        p(Method::GET, "/v2/{R}/tags/list"),
        p(Method::GET, "/v2/{R}/manifests/v2"),
        p(Method::HEAD, "/v2/{R}/manifests/v2"),
        p(Method::GET, "/v2/{R}/manifests/{D}"),
        p(Method::GET, "/v2/{R}/blobs/{D}"),
        p(Method::GET, "/v2/{R}/referrers/{D}"),
        p(Method::DELETE, "/v2/{R}/manifests/{D}"),
        p(Method::POST, "/v2/{R}/blobs/uploads/"),
        p(Method::POST, "/v2/{R}/blobs/uploads/?mount={D}&from=alice/secret"),
    ]
}

/// (status, challenge, body) with the repository's name replaced by `R`.
async fn answer(api: &Api, probe: &Probe, repo: &str, id: &str, digest: &str, auth: Option<&str>) -> String {
    let path = probe
        .path
        .replace("{R}", repo)
        .replace("{I}", id)
        .replace("{D}", digest);
    let mut rb = api.req(probe.method.clone(), &path, auth);
    for (k, v) in probe.headers {
        rb = rb.header(*k, *v);
    }
    let body = probe.body.replace("{I}", id);
    let r = rb.body(body).send().await.expect("request");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or("?").to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap_or_default();
    format!("{status} [{challenge}] {text}").replace(repo, "R")
}

#[tokio::test]
async fn private_answers_like_absent_everywhere() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = crate::v2::users(&s).await;
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", PRIVATE, &images, "latest").await;
    let pushed = api.image(&alice, PRIVATE, "v2", serde_json::json!({})).await;
    crate::v2::set_private(&api, &alice, PRIVATE, true).await;
    let id = images[1].id.clone();
    let digest = pushed.digest.clone();

    let v1_token = format!(
        "Token {}",
        write_token(&s.url, ("bobby", "secret2"), "bobby/mine").await
    );
    let mut callers: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("stranger", Some(bobby.clone())),
        ("token for another repository", Some(v1_token)),
    ];
    for (label, scope_repo) in [("bearer", PRIVATE), ("bearer", ABSENT)] {
        let scope = format!("repository:{scope_repo}:pull,push,delete");
        let (jwt, claims) = api.token(Some(&bobby), &[&scope]).await;
        // The token endpoint itself grants the same for both.
        let granted = claims["access"].to_string().replace(scope_repo, "R");
        assert_eq!(granted, "[]", "{label} grant for {scope_repo}");
        if scope_repo == PRIVATE {
            callers.push((label, Some(bearer(&jwt))));
        }
    }

    let mut differences = Vec::new();
    for (who, auth) in &callers {
        for probe in probes() {
            let private = answer(&api, &probe, PRIVATE, &id, &digest, auth.as_deref()).await;
            let absent = answer(&api, &probe, ABSENT, &id, &digest, auth.as_deref()).await;
            if private != absent {
                differences.push(format!(
                    "{who}: {} {}\n   private: {private}\n   absent:  {absent}",
                    probe.method, probe.path
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "private differs from absent:\n{}",
        differences.join("\n")
    );
    // The owner still sees everything.
    let g = api.get(&format!("/v2/{PRIVATE}/manifests/v2"), Some(&alice)).await;
    assert_eq!(g.status, 200);
    let _ = (sha256(b""), OCI_MANIFEST);
}

/// v1 images: a new image whose parent is a private image answers like one whose parent does
/// not exist; the private image's own routes answer like an absent image's.
#[tokio::test]
async fn private_images_answer_like_absent_images() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = crate::v2::users(&s).await;
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", PRIVATE, &images, "latest").await;
    crate::v2::set_private(&api, &alice, PRIVATE, true).await;
    let hidden = images[1].id.clone();
    let absent = random_id();
    let c = client();
    for (who, auth) in [("anonymous", None), ("stranger", Some(bobby.as_str()))] {
        for route in ["json", "ancestry", "layer"] {
            let get = |id: &str| {
                let mut rb = c.get(format!("{}/v1/images/{id}/{route}", s.url));
                if let Some(a) = auth {
                    rb = rb.header("Authorization", a);
                }
                rb.send()
            };
            let (a, b) = (get(&hidden).await.unwrap(), get(&absent).await.unwrap());
            assert_eq!(a.status(), b.status(), "{who} GET {route}");
            assert_eq!(a.text().await.unwrap(), b.text().await.unwrap(), "{who} GET {route}");
        }
    }
    // A stranger's new image naming the private image as its parent.
    let answer = |parent: String| {
        let id = random_id();
        let body = serde_json::json!({"id": id, "parent": parent}).to_string();
        c.put(format!("{}/v1/images/{id}/json", s.url))
            .header("Authorization", &bobby)
            .body(body)
            .send()
    };
    let (a, b) = (
        answer(hidden.clone()).await.unwrap(),
        answer(absent.clone()).await.unwrap(),
    );
    assert_eq!(a.status(), b.status(), "parent private vs absent");
    assert_eq!(
        a.text().await.unwrap(),
        b.text().await.unwrap(),
        "parent private vs absent"
    );
}
