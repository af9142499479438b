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

/// One step of a v1 image push or pull on image `id`, as the client sees it: status, the headers
/// Docker reads, body; `id` written `{I}` and the image's own payload checksum `{SUM}`, so the
/// answers for two ids compare.
struct Step {
    method: Method,
    leaf: &'static str,
    what: &'static str,
    /// The status either id gets (so the comparison is of the push going as it should).
    want: u16,
}

async fn step(s: &Server, auth: &str, id: &str, img: &Image, st: &Step) -> String {
    let c = client();
    let url = format!("{}/v1/images/{id}/{}", s.url, st.leaf);
    let mut rb = c.request(st.method.clone(), url).header("Authorization", auth);
    rb = match (st.method.clone(), st.leaf, st.what) {
        (Method::PUT, "json", _) => rb.body(img.json.clone()),
        (Method::PUT, "layer", _) => rb.body(chunked(img.layer.clone())),
        (Method::PUT, "checksum", "wrong") => {
            rb.header("X-Docker-Checksum-Payload", format!("sha256:{}", "0".repeat(64)))
        }
        (Method::PUT, "checksum", _) => rb
            .header("X-Docker-Checksum", "tarsum+sha256:0000")
            .header("X-Docker-Checksum-Payload", img.payload_checksum()),
        _ => rb,
    };
    let r = rb.send().await.expect("request");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("?").to_string())
            .unwrap_or_default()
    };
    let headers = format!(
        "type={} size={} sum={} cache={} expires={} ranges={} challenge={}",
        header("content-type"),
        header("x-docker-size"),
        header("x-docker-checksum-payload"),
        header("cache-control"),
        !header("expires").is_empty(),
        header("accept-ranges"),
        header("www-authenticate"),
    );
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    let body = if body.as_ref() == img.layer.as_slice() {
        "{LAYER}".to_string()
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    format!("{status} {headers} {body}")
        .replace(&img.payload_checksum(), "{SUM}")
        .replace(id, "{I}")
}

/// The image a stranger pushes under `id`: their own json and layer.
fn strangers_image(id: &str) -> Image {
    let mut img = chain(1).remove(0);
    img.json = image_json(id, None);
    img.id = id.to_string();
    img
}

/// A stranger (with a password, or with a write token for their own repository) pushing their
/// own image under the id of a private image: every step of the push and of reading it back
/// answers exactly as for an id nobody pushed. Then they push and pull, the Docker way, an image
/// built on another private id; the private images stay exactly as their owner pushed them.
#[tokio::test]
async fn a_strangers_push_under_a_private_id_answers_like_a_new_id() {
    let s = Server::start("");
    let api = Api::new(&s);
    let (alice, bobby, _) = crate::v2::users(&s).await;
    let images = chain(3);
    push_13(&s.url, "alice", "secret1", PRIVATE, &images, "latest").await;
    crate::v2::set_private(&api, &alice, PRIVATE, true).await;
    let token = token_auth(&write_token(&s.url, ("bobby", "secret2"), "bobby/other").await);

    let steps = [
        Step {
            method: Method::GET,
            leaf: "json",
            what: "before",
            want: 404,
        },
        Step {
            method: Method::HEAD,
            leaf: "json",
            what: "before",
            want: 404,
        },
        Step {
            method: Method::GET,
            leaf: "layer",
            what: "before",
            want: 404,
        },
        Step {
            method: Method::GET,
            leaf: "ancestry",
            what: "before",
            want: 404,
        },
        Step {
            method: Method::PUT,
            leaf: "layer",
            what: "before json",
            want: 404,
        },
        Step {
            method: Method::PUT,
            leaf: "checksum",
            what: "before json",
            want: 404,
        },
        Step {
            method: Method::PUT,
            leaf: "json",
            what: "push",
            want: 200,
        },
        Step {
            method: Method::GET,
            leaf: "json",
            what: "in progress",
            want: 400,
        },
        Step {
            method: Method::GET,
            leaf: "ancestry",
            what: "in progress",
            want: 400,
        },
        Step {
            method: Method::PUT,
            leaf: "checksum",
            what: "before the layer",
            want: 400,
        },
        Step {
            method: Method::PUT,
            leaf: "layer",
            what: "push",
            want: 200,
        },
        Step {
            method: Method::PUT,
            leaf: "checksum",
            what: "wrong",
            want: 400,
        },
        Step {
            method: Method::PUT,
            leaf: "layer",
            what: "again",
            want: 200,
        },
        Step {
            method: Method::PUT,
            leaf: "checksum",
            what: "push",
            want: 200,
        },
        Step {
            method: Method::GET,
            leaf: "json",
            what: "pushed",
            want: 200,
        },
        Step {
            method: Method::HEAD,
            leaf: "json",
            what: "pushed",
            want: 200,
        },
        Step {
            method: Method::GET,
            leaf: "layer",
            what: "pushed",
            want: 200,
        },
        Step {
            method: Method::HEAD,
            leaf: "layer",
            what: "pushed",
            want: 200,
        },
        Step {
            method: Method::GET,
            leaf: "ancestry",
            what: "pushed",
            want: 200,
        },
        Step {
            method: Method::PUT,
            leaf: "json",
            what: "again",
            want: 409,
        },
        Step {
            method: Method::PUT,
            leaf: "layer",
            what: "after completion",
            want: 409,
        },
        Step {
            method: Method::PUT,
            leaf: "checksum",
            what: "again",
            want: 409,
        },
    ];
    let mut differences = Vec::new();
    for (who, auth, hidden) in [
        ("stranger", &bobby, &images[2].id),
        ("stranger's token for their own repository", &token, &images[1].id),
    ] {
        let absent = random_id();
        let (theirs, fresh) = (strangers_image(hidden), strangers_image(&absent));
        // The same layer bytes under both ids, so the answers are the same bytes too.
        let fresh = Image {
            layer: theirs.layer.clone(),
            ..fresh
        };
        for st in &steps {
            let private = step(&s, auth, hidden, &theirs, st).await;
            let new = step(&s, auth, &absent, &fresh, st).await;
            assert!(
                new.starts_with(&format!("{} ", st.want)),
                "{who}: {} {} ({}) of a new id: {new}",
                st.method,
                st.leaf,
                st.what
            );
            if private != new {
                differences.push(format!(
                    "{who}: {} {} ({})\n   private id: {private}\n   new id:     {new}",
                    st.method, st.leaf, st.what
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "a private id answers unlike a new one:\n{}",
        differences.join("\n")
    );

    // Docker 1.3 push of a chain whose base takes the id of alice's private base, into the
    // stranger's own (public) repository; they, and anyone, pull it back.
    let base = images[0].id.clone();
    let mut mine = chain(2);
    mine[0] = strangers_image(&base);
    mine[1].parent = Some(base.clone());
    mine[1].json = image_json(&mine[1].id, Some(&base));
    push_13(&s.url, "bobby", "secret2", "bobby/mine", &mine, "latest").await;
    for login in [Some(("bobby", "secret2")), None, Some(("alice", "secret1"))] {
        let pulled = pull_13(&s.url, login, "bobby/mine", "latest").await.expect("pull");
        assert_eq!(pulled.len(), 2, "{login:?}");
        for (p, img) in pulled.iter().zip(&mine) {
            assert_eq!(
                (&p.id, &p.json, &p.layer),
                (&img.id, &img.json, &img.layer),
                "{login:?}"
            );
        }
    }

    // The private images: untouched, for their owner.
    let pulled = pull_13(&s.url, Some(("alice", "secret1")), PRIVATE, "latest")
        .await
        .expect("owner pulls");
    for (p, img) in pulled.iter().zip(&images) {
        assert_eq!((&p.id, &p.json, &p.layer), (&img.id, &img.json, &img.layer));
    }
    let c = client();
    for img in &images {
        let r = c
            .get(format!("{}/v1/images/{}/json", s.url, img.id))
            .header("Authorization", &alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-docker-checksum-payload"].to_str().unwrap(),
            img.payload_checksum(),
            "the owner's checksum"
        );
        // Which copy an id means depends on who asks: no shared cache may keep the answer.
        assert_eq!(r.headers()["cache-control"], "private, max-age=31536000");
        assert_eq!(r.bytes().await.unwrap().as_ref(), img.json.as_slice());
    }
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, images[0].id))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "private, max-age=31536000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), images[0].layer.as_slice());
    // Still hidden from the stranger's repository's readers, and from strangers.
    let r = c
        .get(format!("{}/v1/repositories/{PRIVATE}/tags", s.url))
        .header("Authorization", &bobby)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
