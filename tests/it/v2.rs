//! The v2 / OCI distribution API against OCI distribution-spec v1.1, to the letter: every
//! endpoint of the end-1..end-14 table with its exact status codes, headers and error codes,
//! the Docker token flow, and Skiff's access rules (private repositories, collaborators) on v2.
//!
//! Helpers live here; the tests are grouped by spec section in the `v2_*.rs` files.

#[path = "v2_auth.rs"]
mod auth;
#[path = "v2_discovery.rs"]
mod discovery;
#[path = "v2_manage.rs"]
mod manage;
#[path = "v2_pull.rs"]
pub mod pull;
#[path = "v2_push.rs"]
pub mod push;
#[path = "v2_uploads.rs"]
pub mod uploads;

use crate::common::*;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// A response read whole.
pub struct Got {
    /// The request was a HEAD (its answers, errors included, have no body).
    pub head: bool,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    /// The first value of a header.
    pub fn h(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is ASCII").to_string())
    }
    /// Every value of a header, comma-separated lists split (RFC 9110 section 5.3).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().expect("header is ASCII").split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
    /// `Location` made absolute against the server (it may be relative).
    pub fn location(&self, base: &str) -> String {
        let loc = self.h("location").expect("Location header");
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc
        } else {
            assert!(loc.starts_with('/'), "relative Location is a path: {loc}");
            format!("{base}{loc}")
        }
    }
}

/// Sends the request and reads the whole response. Every v2 response, errors included, carries
/// `Docker-Distribution-API-Version: registry/2.0`.
pub async fn go(rb: RequestBuilder) -> Got {
    let got = go_raw(rb).await;
    assert_eq!(
        got.h("docker-distribution-api-version").as_deref(),
        Some("registry/2.0"),
        "API version header missing (status {}, body {})",
        got.status,
        got.text()
    );
    got
}

pub async fn go_raw(rb: RequestBuilder) -> Got {
    let (client, req) = rb.build_split();
    let req = req.expect("request");
    let head = req.method() == Method::HEAD;
    let resp = client.execute(req).await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    Got {
        head,
        status,
        headers,
        body,
    }
}

/// Asserts an error answer: the status and, when there is a body, the spec's JSON error format
/// with `code` first.
#[track_caller]
pub fn err(g: &Got, status: u16, code: &str, what: &str) {
    assert_eq!(g.status, status, "{what}: body {}", g.text());
    if g.head {
        assert!(g.body.is_empty(), "{what}: HEAD answered with a body");
        return;
    }
    let ct = g.h("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "{what}: content-type {ct}");
    let v = g.json();
    let errors = v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors in {v}"));
    assert!(!errors.is_empty(), "{what}: empty errors");
    assert_eq!(errors[0]["code"], code, "{what}: {v}");
    for e in errors {
        let c = e["code"].as_str().expect("code is a string");
        assert!(
            c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{what}: code {c}"
        );
        assert!(e["message"].is_string() || e.get("message").is_none(), "{what}: {v}");
    }
}

#[track_caller]
pub fn ok(g: &Got, status: u16, what: &str) {
    assert_eq!(g.status, status, "{what}: body {}", g.text());
}

/// `Bearer realm="<url>/v2/token",service="skiff"` plus the scope (and error) a request needs.
pub fn challenge(url: &str, scope: Option<&str>, error: Option<&str>) -> String {
    let mut c = format!("Bearer realm=\"{url}/v2/token\",service=\"skiff\"");
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Appends a query parameter to an upload location that may already carry a query.
pub fn with_query(loc: &str, q: &str) -> String {
    if loc.contains('?') {
        format!("{loc}&{q}")
    } else {
        format!("{loc}?{q}")
    }
}

/// A descriptor as manifests carry it.
pub fn desc(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

/// A manifest as pushed: its bytes, digest and media type.
#[derive(Clone)]
pub struct Pushed {
    pub body: Vec<u8>,
    pub digest: String,
    pub media_type: String,
}

impl Pushed {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.body.len()})
    }
}

/// A client for one server; `auth` arguments are whole `Authorization` values.
pub struct Api {
    pub url: String,
    pub c: reqwest::Client,
}

impl Api {
    pub fn new(s: &Server) -> Api {
        Api {
            url: s.url.clone(),
            c: reqwest::Client::builder()
                .user_agent("skiff-tests/oci")
                .build()
                .expect("client"),
        }
    }

    /// A request to `path` (relative to the server) or to an absolute URL.
    pub fn req(&self, method: Method, path: &str, auth: Option<&str>) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let rb = self.c.request(method, url);
        match auth {
            Some(a) => rb.header("Authorization", a),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, auth: Option<&str>) -> Got {
        go(self.req(Method::GET, path, auth)).await
    }

    pub async fn head(&self, path: &str, auth: Option<&str>) -> Got {
        go(self.req(Method::HEAD, path, auth)).await
    }

    pub async fn delete(&self, path: &str, auth: Option<&str>) -> Got {
        go(self.req(Method::DELETE, path, auth)).await
    }

    /// `POST /v2/<name>/blobs/uploads/` with an empty body: an upload session.
    pub async fn start_upload(&self, repo: &str, query: &str, auth: Option<&str>) -> Got {
        let path = format!("/v2/{repo}/blobs/uploads/{query}");
        go(self
            .req(Method::POST, &path, auth)
            .header("Content-Length", "0")
            .body(Vec::new()))
        .await
    }

    /// Starts a session and returns its absolute location.
    pub async fn session(&self, repo: &str, auth: &str) -> String {
        let g = self.start_upload(repo, "", Some(auth)).await;
        ok(&g, 202, "POST blobs/uploads/");
        g.location(&self.url)
    }

    pub async fn patch(&self, loc: &str, auth: &str, range: Option<(u64, u64)>, data: &[u8]) -> Got {
        let mut rb = self
            .req(Method::PATCH, loc, Some(auth))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec());
        if let Some((a, b)) = range {
            rb = rb.header("Content-Range", format!("{a}-{b}"));
        }
        go(rb).await
    }

    /// Closes a session with `?digest=` and an optional final chunk.
    pub async fn close(&self, loc: &str, auth: &str, digest: &str, range: Option<(u64, u64)>, data: &[u8]) -> Got {
        let mut rb = self
            .req(Method::PUT, &with_query(loc, &format!("digest={digest}")), Some(auth))
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec());
        if let Some((a, b)) = range {
            rb = rb.header("Content-Range", format!("{a}-{b}"));
        }
        go(rb).await
    }

    /// Monolithic single-POST push; asserts 201 and returns the digest.
    pub async fn blob(&self, auth: &str, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let g = go(self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                Some(auth),
            )
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec()))
        .await;
        ok(&g, 201, "monolithic blob push");
        digest
    }

    pub async fn put_manifest(&self, auth: Option<&str>, repo: &str, reference: &str, ct: &str, body: &[u8]) -> Got {
        let mut rb = self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"), auth);
        if !ct.is_empty() {
            rb = rb.header("Content-Type", ct);
        }
        go(rb.body(body.to_vec())).await
    }

    /// Pushes a manifest by `reference` (a tag, or "" for its digest); asserts 201.
    pub async fn manifest(&self, auth: &str, repo: &str, reference: &str, media_type: &str, body: Vec<u8>) -> Pushed {
        let digest = sha256(&body);
        let reference = if reference.is_empty() {
            digest.as_str()
        } else {
            reference
        };
        let g = self.put_manifest(Some(auth), repo, reference, media_type, &body).await;
        ok(&g, 201, &format!("PUT manifest {repo}:{reference}"));
        assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));
        assert_eq!(g.h("location"), Some(format!("/v2/{repo}/manifests/{digest}")));
        Pushed {
            body,
            digest,
            media_type: media_type.to_string(),
        }
    }

    /// Pushes a small OCI image (config + one layer) and its manifest, tagged `tag` ("" = by
    /// digest). `extra` fields are merged into the manifest (artifactType, subject, annotations).
    pub async fn image(&self, auth: &str, repo: &str, tag: &str, extra: Value) -> Pushed {
        let config = format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{}}}",
            rand::random::<u32>()
        )
        .into_bytes();
        let layer = random_bytes(300);
        self.blob(auth, repo, &config).await;
        self.blob(auth, repo, &layer).await;
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, &config),
            "layers": [desc(OCI_LAYER, &layer)],
        });
        if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
            m.extend(extra);
        }
        self.manifest(
            auth,
            repo,
            tag,
            OCI_MANIFEST,
            serde_json::to_vec_pretty(&m).expect("json"),
        )
        .await
    }

    /// `GET /v2/token` for `scopes`; returns the token and its decoded claims.
    pub async fn token(&self, auth: Option<&str>, scopes: &[&str]) -> (String, Value) {
        let mut q = vec![("service", "skiff")];
        q.extend(scopes.iter().map(|s| ("scope", *s)));
        let g = go(self.req(Method::GET, "/v2/token", auth).query(&q)).await;
        ok(&g, 200, "token");
        let v = g.json();
        let token = v["token"].as_str().expect("token").to_string();
        assert_eq!(v["access_token"], v["token"]);
        assert!(v["expires_in"].as_u64().expect("expires_in") >= 60);
        assert!(v["issued_at"].as_str().expect("issued_at").ends_with('Z'));
        (token.clone(), claims(&token))
    }
}

/// The payload of a JWT, decoded (no verification).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("JWT has a payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url payload");
    serde_json::from_slice(&raw).expect("JSON claims")
}

/// The `access` claim as (name, actions) pairs.
pub fn access(claims: &Value) -> Vec<(String, Vec<String>)> {
    claims["access"]
        .as_array()
        .expect("access claim")
        .iter()
        .map(|a| {
            assert_eq!(a["type"], "repository");
            let actions = a["actions"]
                .as_array()
                .expect("actions")
                .iter()
                .map(|x| x.as_str().expect("action").to_string())
                .collect();
            (a["name"].as_str().expect("name").to_string(), actions)
        })
        .collect()
}

/// Sets a repository's visibility with the v1 API, as its owner.
pub async fn set_private(api: &Api, owner: &str, repo: &str, private: bool) {
    let r = api
        .c
        .put(format!("{}/v1/repositories/{repo}/properties", api.url))
        .header("Authorization", owner)
        .json(&json!({"access": if private { "private" } else { "public" }}))
        .send()
        .await
        .expect("properties");
    assert_eq!(r.status(), 200, "set {repo} private={private}");
}

pub async fn add_collaborator(api: &Api, owner: &str, repo: &str, user: &str) {
    let r = api
        .c
        .put(format!("{}/v1/repositories/{repo}/collaborators/{user}", api.url))
        .header("Authorization", owner)
        .send()
        .await
        .expect("collaborator");
    assert!(r.status().is_success(), "add collaborator: {}", r.status());
}

/// Three users: alice, bobby, carol (Basic credentials in that order).
pub async fn users(s: &Server) -> (String, String, String) {
    for (u, p) in [("alice", "secret1"), ("bobby", "secret2"), ("carol", "secret3")] {
        s.register(u, p).await;
    }
    (
        basic("alice", "secret1"),
        basic("bobby", "secret2"),
        basic("carol", "secret3"),
    )
}

/// Where the server keeps a blob's bytes.
pub fn blob_file(s: &Server, digest: &str) -> std::path::PathBuf {
    let (algo, hex) = digest.split_once(':').expect("digest");
    s.dir.join("data/registry/blobs").join(algo).join(&hex[..2]).join(hex)
}
