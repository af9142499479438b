//! The Docker 1.x client sequences of `v1-protocol.md` §4, as tests drive them over the wire.

use super::Image;
use base64::Engine;
use reqwest::{Client, Response, StatusCode};

pub fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

pub const UA_13: &str = "docker/1.3.2 go/go1.3.3 git-commit/39fa2fa kernel/3.16.0 os/linux arch/amd64";
pub const UA_19: &str = "docker/1.9.1 go/go1.4.3 git-commit/a34a1d5 kernel/4.2.0 os/linux arch/amd64";

/// A client that drops pooled connections before the server's 5 s keep-alive ends them: a
/// request sent on a connection the server is closing that instant fails (Go's client, as
/// docker uses, retries it; reqwest does not), and tests that wait seconds between requests
/// (a gc run) would fail at random.
pub fn client() -> Client {
    Client::builder()
        .user_agent(UA_13)
        .pool_idle_timeout(std::time::Duration::from_secs(3))
        .build()
        .expect("client")
}

pub async fn body_json(resp: Response) -> serde_json::Value {
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

/// Asserts the status and that error bodies are `{"error": ...}`; returns the body.
pub async fn expect(resp: Response, status: u16, what: &str) -> serde_json::Value {
    let got = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got.as_u16(), status, "{what}: body {text}");
    if status >= 400 {
        assert!(ct.starts_with("application/json"), "{what}: error content-type {ct}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON {text}"));
        assert!(
            v.get("error").and_then(|e| e.as_str()).is_some(),
            "{what}: no error field in {text}"
        );
        return v;
    }
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// The token header value Docker sends after receiving `X-Docker-Token` (PYREG-style doubling
/// is harmless: we send what Docker 1.3 sends, `Token ` + the header value).
pub fn token_auth(resp_token: &str) -> String {
    format!("Token {resp_token}")
}

/// Docker 1.3 push over http to a standalone registry (§4.7 transcript). Returns the write token.
pub async fn push_13(base: &str, user: &str, pw: &str, repo: &str, images: &[Image], tag: &str) -> String {
    let c = client();
    let auth = basic(user, pw);
    let ping = c.get(format!("{base}/v1/_ping")).send().await.expect("ping");
    assert_eq!(ping.status(), 200);
    assert_eq!(ping.headers()["x-docker-registry-standalone"], "true");

    let mut index: Vec<serde_json::Value> = images.iter().map(|i| serde_json::json!({"id": i.id})).collect();
    if let Some(last) = index.last_mut() {
        last["Tag"] = serde_json::Value::String(tag.into());
    }
    let resp = c
        .put(format!("{base}/v1/repositories/{repo}/"))
        .header("Authorization", &auth)
        .header("X-Docker-Token", "true")
        .json(&index)
        .send()
        .await
        .expect("index put");
    assert_eq!(resp.status(), 200, "PUT repositories");
    let token = resp.headers()["x-docker-token"].to_str().expect("token").to_string();
    assert!(resp.headers().contains_key("x-docker-endpoints"));
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        format!("Token {token}")
    );
    assert!(token.contains("access=write"), "{token}");
    let tauth = token_auth(&token);

    for img in images {
        let r = c
            .get(format!("{base}/v1/images/{}/json", img.id))
            .header("Authorization", &tauth)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            continue; // already pushed, skipping
        }
        assert_eq!(r.status(), 404, "lookup of a new image");
        push_image(&c, base, &tauth, img).await;
    }
    let last = images.last().expect("images");
    let r = c
        .put(format!("{base}/v1/repositories/{repo}/tags/{tag}"))
        .header("Authorization", &tauth)
        .json(&last.id)
        .send()
        .await
        .unwrap();
    expect(r, 200, "PUT tag").await;
    let r = c
        .put(format!("{base}/v1/repositories/{repo}/images"))
        .header("Authorization", &auth)
        .header("X-Docker-Token", "true")
        .header("X-Docker-Endpoints", format!("{base}/v1/"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "final PUT images");
    token
}

/// json, layer (chunked, no Content-Length), checksum.
pub async fn push_image(c: &Client, base: &str, auth: &str, img: &Image) {
    let r = c
        .put(format!("{base}/v1/images/{}/json", img.id))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(img.json.clone())
        .send()
        .await
        .unwrap();
    expect(r, 200, "PUT json").await;
    let r = c
        .put(format!("{base}/v1/images/{}/layer", img.id))
        .header("Authorization", auth)
        .header("Content-Type", "application/octet-stream")
        .body(chunked(img.layer.clone()))
        .send()
        .await
        .unwrap();
    expect(r, 200, "PUT layer").await;
    let r = c
        .put(format!("{base}/v1/images/{}/checksum", img.id))
        .header("Authorization", auth)
        .header("X-Docker-Checksum", "tarsum+sha256:0000")
        .header("X-Docker-Checksum-Payload", img.payload_checksum())
        .send()
        .await
        .unwrap();
    expect(r, 200, "PUT checksum").await;
}

/// A streamed body, so reqwest sends `Transfer-Encoding: chunked` with no Content-Length.
pub fn chunked(data: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

pub struct Pulled {
    pub id: String,
    pub json: Vec<u8>,
    pub layer: Vec<u8>,
    pub size_header: Option<u64>,
}

/// Docker 1.3 pull: images list (token), tags, ancestry, then json + layer from base to top.
pub async fn pull_13(base: &str, login: Option<(&str, &str)>, repo: &str, tag: &str) -> Result<Vec<Pulled>, u16> {
    let c = client();
    let mut req = c
        .get(format!("{base}/v1/repositories/{repo}/images"))
        .header("X-Docker-Token", "true");
    if let Some((u, p)) = login {
        req = req.header("Authorization", basic(u, p));
    }
    let r = req.send().await.unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let token = r.headers()["x-docker-token"].to_str().unwrap().to_string();
    assert!(token.contains("access=read"));
    let tauth = token_auth(&token);
    let full = if repo.contains('/') {
        repo.to_string()
    } else {
        format!("library/{repo}")
    };
    let r = c
        .get(format!("{base}/v1/repositories/{full}/tags"))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let tags = body_json(r).await;
    let top = tags[tag].as_str().ok_or(404u16)?.to_string();
    let r = c
        .get(format!("{base}/v1/images/{top}/ancestry"))
        .header("Authorization", &tauth)
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let ancestry: Vec<String> = serde_json::from_value(body_json(r).await).unwrap();
    assert_eq!(ancestry[0], top, "ancestry starts with the image itself");
    let mut out = Vec::new();
    for id in ancestry.iter().rev() {
        let r = c
            .get(format!("{base}/v1/images/{id}/json"))
            .header("Authorization", &tauth)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            return Err(r.status().as_u16());
        }
        let size_header = r
            .headers()
            .get("x-docker-size")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let json = r.bytes().await.unwrap().to_vec();
        let r = c
            .get(format!("{base}/v1/images/{id}/layer"))
            .header("Authorization", &tauth)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            return Err(r.status().as_u16());
        }
        assert_eq!(r.headers()["accept-ranges"], "bytes");
        let layer = r.bytes().await.unwrap().to_vec();
        out.push(Pulled {
            id: id.clone(),
            json,
            layer,
            size_header,
        });
    }
    Ok(out)
}

/// Docker's push start (`PUT /v1/repositories/{repo}/` with Basic and `X-Docker-Token: true`,
/// body `[]`): the write token the index hands out.
pub async fn write_token(index: &str, (user, pw): (&str, &str), repo: &str) -> String {
    let r = client()
        .put(format!("{index}/v1/repositories/{repo}/"))
        .header("Authorization", basic(user, pw))
        .header("X-Docker-Token", "true")
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "write token for {repo}");
    r.headers()["x-docker-token"].to_str().unwrap().to_string()
}
