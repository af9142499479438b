//! Delegated mode: an index process I and registry processes R (standalone = false,
//! index_endpoint = I) on random ports. Tokens issued by I open R; forged, expired, wrong-repo
//! and read-only tokens do not; R fails closed and fast when I is gone, slow or talks nonsense,
//! and recovers by itself when I is back.

use crate::common::*;
use std::time::{Duration, Instant};

fn registry_config(index_url: &str) -> String {
    format!("standalone = false\nindex_endpoint = \"{index_url}\"\n[delegate]\ntimeout_secs = 1\n")
}

/// `push_13`, split as Docker does it when the index sends it elsewhere: index calls to
/// `index`, data calls to `registry`. Returns the write token.
pub(crate) async fn push_via(
    index: &str,
    registry: &str,
    (user, pw): (&str, &str),
    repo: &str,
    images: &[Image],
    tag: &str,
) -> String {
    let c = client();
    let ping = c.get(format!("{registry}/v1/_ping")).send().await.unwrap();
    assert_eq!(ping.headers()["x-docker-registry-standalone"], "false");
    let mut list: Vec<_> = images.iter().map(|i| serde_json::json!({"id": i.id})).collect();
    if let Some(last) = list.last_mut() {
        last["Tag"] = tag.into();
    }
    let r = c
        .put(format!("{index}/v1/repositories/{repo}/"))
        .header("Authorization", basic(user, pw))
        .header("X-Docker-Token", "true")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "push start on the index");
    assert!(r.headers().contains_key("x-docker-endpoints"));
    let token = r.headers()["x-docker-token"].to_str().unwrap().to_string();
    let tauth = token_auth(&token);
    for img in images {
        let r = c
            .get(format!("{registry}/v1/images/{}/json", img.id))
            .header("Authorization", &tauth)
            .send()
            .await
            .unwrap();
        expect(r, 404, "lookup of a new image").await;
        push_image(&c, registry, &tauth, img).await;
    }
    let top = &images.last().unwrap().id;
    let r = c
        .put(format!("{registry}/v1/repositories/{repo}/tags/{tag}"))
        .header("Authorization", &tauth)
        .json(top)
        .send()
        .await
        .unwrap();
    expect(r, 200, "PUT tag on the registry").await;
    let r = c
        .put(format!("{index}/v1/repositories/{repo}/images"))
        .header("Authorization", basic(user, pw))
        .header("X-Docker-Token", "true")
        .header("X-Docker-Endpoints", format!("{registry}/v1/"))
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "push end on the index");
    token
}

/// Pull start on the index: (read token, `X-Docker-Endpoints`).
pub(crate) async fn pull_start(index: &str, repo: &str) -> (String, String) {
    let r = client()
        .get(format!("{index}/v1/repositories/{repo}/images"))
        .header("X-Docker-Token", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "pull start on the index");
    let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    (h("x-docker-token"), h("x-docker-endpoints"))
}

/// Docker 1.3's pull after the index call: tags from the first registry that has the
/// repository, then each image from the first registry that serves it.
pub(crate) async fn pull_from(registries: &[String], token: &str, repo: &str, tag: &str) -> Vec<Pulled> {
    let c = client();
    let auth = token_auth(token);
    let get = |url: String| c.get(url).header("Authorization", &auth).send();
    let mut top = None;
    for reg in registries {
        let r = get(format!("{reg}/v1/repositories/{repo}/tags")).await.unwrap();
        if r.status() == 200 {
            top = body_json(r).await[tag].as_str().map(str::to_string);
            break;
        }
        expect(r, 404, "tags on a registry without the repository").await;
    }
    let top = top.unwrap_or_else(|| panic!("no registry has {repo}:{tag}"));
    let mut ancestry: Option<Vec<String>> = None;
    for reg in registries {
        let r = get(format!("{reg}/v1/images/{top}/ancestry")).await.unwrap();
        if r.status() == 200 {
            ancestry = Some(serde_json::from_value(body_json(r).await).unwrap());
            break;
        }
    }
    let mut out = Vec::new();
    for id in ancestry.expect("ancestry").iter().rev() {
        let mut got = None;
        for reg in registries {
            let j = get(format!("{reg}/v1/images/{id}/json")).await.unwrap();
            if j.status() != 200 {
                continue;
            }
            let json = j.bytes().await.unwrap().to_vec();
            let l = get(format!("{reg}/v1/images/{id}/layer")).await.unwrap();
            assert_eq!(l.status(), 200, "layer of {id}");
            let layer = l.bytes().await.unwrap().to_vec();
            got = Some(Pulled {
                id: id.clone(),
                json,
                layer,
                size_header: None,
            });
            break;
        }
        out.push(got.unwrap_or_else(|| panic!("no registry serves image {id}")));
    }
    out
}

pub(crate) fn assert_same(pulled: &[Pulled], images: &[Image]) {
    assert_eq!(pulled.len(), images.len());
    for (p, i) in pulled.iter().zip(images) {
        assert_eq!(p.id, i.id);
        assert_eq!(p.json, i.json, "json byte-identical");
        assert_eq!(p.layer, i.layer, "layer byte-identical");
    }
}

async fn metrics(base: &str) -> String {
    let r = client().get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn error_of(resp: reqwest::Response, status: u16, what: &str) -> String {
    expect(resp, status, what).await["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn delegated_push_pull_and_refused_tokens() {
    let i = Server::start("[index]\ntoken_ttl_secs = 5\n");
    let r = Server::start(&registry_config(&i.url));
    let c = client();

    // R is a registry only: its ping says so, and index routes name the index to use.
    for path in ["/_ping", "/v1/_ping"] {
        let p = c.get(format!("{}{path}", r.url)).send().await.unwrap();
        assert_eq!(p.headers()["x-docker-registry-standalone"], "false");
        assert_eq!(body_json(p).await["standalone"], false);
    }
    for (method, path) in [
        ("POST", "/v1/users/"),
        ("GET", "/v1/users/"),
        ("GET", "/v1/repositories/alice/app/images"),
        ("PUT", "/v1/repositories/alice/app/"),
        ("GET", "/v1/search?q=app"),
        ("PUT", "/v1/repositories/alice/app/auth"),
    ] {
        let req = c.request(method.parse().unwrap(), format!("{}{path}", r.url));
        let msg = error_of(req.json(&()).send().await.unwrap(), 404, path).await;
        assert!(msg.contains(&i.url), "{path}: {msg}");
    }

    i.register("alice", "secret1").await;
    i.register("bobby", "secret2").await;
    let images = chain(2);
    let pushed = Instant::now();
    let wtok = push_via(&i.url, &r.url, ("alice", "secret1"), "alice/app", &images, "latest").await;
    let (rtok, _) = pull_start(&i.url, "alice/app").await;
    assert_same(
        &pull_from(std::slice::from_ref(&r.url), &rtok, "alice/app", "latest").await,
        &images,
    );
    let top = &images[1].id;
    let tags = format!("{}/v1/repositories/alice/app/tags", r.url);
    let new_image = chain(1).remove(0);

    // No token, or Basic: only the index hands out tokens; the error says where it is.
    for auth in [None, Some(basic("alice", "secret1"))] {
        let mut req = c.get(&tags);
        if let Some(a) = &auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.headers()["www-authenticate"], "Token");
        let msg = error_of(resp, 401, "no token").await;
        assert!(msg.contains(&i.url) && msg.contains("token"), "{msg}");
    }

    // A forged token: refused by the index, on every kind of route.
    let forged = "Token signature=00ff00ff00ff00ff00ff00ff00ff00ff,repository=\"alice/app\",access=write";
    for (what, req) in [
        ("forged tags", c.get(&tags)),
        (
            "forged image read",
            c.get(format!("{}/v1/images/{top}/ancestry", r.url)),
        ),
        (
            "forged image write",
            c.put(format!("{}/v1/images/{}/json", r.url, new_image.id))
                .body(new_image.json.clone()),
        ),
    ] {
        let resp = req.header("Authorization", forged).send().await.unwrap();
        let msg = error_of(resp, 401, what).await;
        assert!(msg.contains("refused by the index at") && msg.contains(&i.url), "{msg}");
    }

    // Bobby's write token for bobby/other never opens alice/app, even if its text says so.
    let btok = write_token(&i.url, ("bobby", "secret2"), "bobby/other").await;
    let bauth = token_auth(&btok);
    let r1 = c.get(&tags).header("Authorization", &bauth).send().await.unwrap();
    expect(r1, 403, "wrong-repo token reads tags").await;
    let r1 = c
        .put(format!("{tags}/evil"))
        .header("Authorization", &bauth)
        .json(top)
        .send()
        .await
        .unwrap();
    expect(r1, 403, "wrong-repo token writes a tag").await;
    let r1 = c
        .get(format!("{}/v1/images/{top}/json", r.url))
        .header("Authorization", &bauth)
        .send()
        .await
        .unwrap();
    expect(r1, 404, "alice's image is not in bobby's repository").await;
    let relabelled = bauth.replace("bobby/other", "alice/app");
    let r1 = c
        .get(format!("{}/v1/images/{top}/json", r.url))
        .header("Authorization", &relabelled)
        .send()
        .await
        .unwrap();
    expect(r1, 403, "token text edited to claim alice/app").await;

    // A read token never writes, even with its access= text edited: the index decides.
    for auth in [
        token_auth(&rtok),
        token_auth(&rtok.replace("access=read", "access=write")),
    ] {
        let r1 = c
            .put(format!("{tags}/evil"))
            .header("Authorization", &auth)
            .json(top)
            .send()
            .await
            .unwrap();
        let msg = error_of(r1, 403, "read token writes a tag").await;
        assert!(msg.contains("not write"), "{msg}");
        let r1 = c
            .put(format!("{}/v1/images/{}/json", r.url, new_image.id))
            .header("Authorization", &auth)
            .body(new_image.json.clone())
            .send()
            .await
            .unwrap();
        expect(r1, 403, "read token writes an image").await;
    }
    let ok = c
        .get(&tags)
        .header("Authorization", token_auth(&rtok))
        .send()
        .await
        .unwrap();
    expect(ok, 200, "the read token still reads").await;

    // Expired: R cached alice's write token, but never past the token's own life.
    let ok = c
        .get(&tags)
        .header("Authorization", token_auth(&wtok))
        .send()
        .await
        .unwrap();
    expect(ok, 200, "write token before expiry").await;
    tokio::time::sleep((pushed + Duration::from_millis(6200)).saturating_duration_since(Instant::now())).await;
    let resp = c
        .get(&tags)
        .header("Authorization", token_auth(&wtok))
        .send()
        .await
        .unwrap();
    let msg = error_of(resp, 401, "expired token").await;
    assert!(msg.contains("expired"), "{msg}");

    // Both roles count their decisions where an operator can read them, and log them.
    let rm = metrics(&r.url).await;
    assert!(metric(&rm, "skiff_delegate_cache_hits_total") >= 1, "{rm}");
    assert!(metric(&rm, "skiff_delegate_cache_misses_total") >= 5, "{rm}");
    assert!(metric(&rm, "skiff_delegate_denials_total") >= 8, "{rm}");
    assert_eq!(metric(&rm, "skiff_delegate_failures_total"), 0, "{rm}");
    let im = metrics(&i.url).await;
    assert_eq!(metric(&im, "skiff_delegate_cache_misses_total"), 0, "{im}");
    assert!(metric(&im, "skiff_index_token_checks_total{result=\"granted\"}") >= 3);
    assert!(metric(&im, "skiff_index_token_checks_total{result=\"refused\"}") >= 8);
    assert!(r.log().contains("delegated check: write on alice/app"));
    assert!(i.log().contains("token check from a registry"));
}

#[tokio::test]
async fn two_registries_one_index_and_the_index_restarts() {
    let mut i = Server::start("");
    let r1 = Server::start(&registry_config(&i.url));
    let mut r2 = Server::start(&registry_config(&i.url));
    let c = client();
    i.register("alice", "secret1").await;
    let (one, two) = (chain(2), chain(3));
    let alice = ("alice", "secret1");
    let w1 = push_via(&i.url, &r1.url, alice, "alice/one", &one, "latest").await;
    push_via(&i.url, &r2.url, alice, "alice/two", &two, "v2").await;
    let (fresh, _) = pull_start(&i.url, "alice/one").await;
    let tags1 = format!("{}/v1/repositories/alice/one/tags", r1.url);

    // The index dies: an unchecked token fails closed, fast, naming the index.
    i.kill9();
    let started = Instant::now();
    let resp = c
        .get(&tags1)
        .header("Authorization", token_auth(&fresh))
        .send()
        .await
        .unwrap();
    let msg = error_of(resp, 503, "index down").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(msg.contains(&format!("index {} unavailable", i.url)), "{msg}");
    // What needs no token still works, and so does a grant already cached.
    let p = c.get(format!("{}/v1/_ping", r1.url)).send().await.unwrap();
    assert_eq!(p.status(), 200);
    let ok = c
        .get(&tags1)
        .header("Authorization", token_auth(&w1))
        .send()
        .await
        .unwrap();
    expect(ok, 200, "cached grant while the index is down").await;

    // The index comes back on the same address, now index-only in front of both registries.
    let i2 = Server::start_in(
        &i.dir,
        &format!(
            "listen = \"{}\"\nregistry = false\n[index]\nendpoints = [\"{}\", \"{}\"]\n",
            i.addr, r1.addr, r2.addr
        ),
    );
    let ok = c
        .get(&tags1)
        .header("Authorization", token_auth(&fresh))
        .send()
        .await
        .unwrap();
    expect(ok, 200, "R1 recovers without a restart").await;

    // X-Docker-Endpoints names both registries; each pull finds the one holding its data.
    for (repo, tag, images) in [("alice/one", "latest", &one), ("alice/two", "v2", &two)] {
        let (token, endpoints) = pull_start(&i2.url, repo).await;
        assert_eq!(endpoints, format!("{}, {}", r1.addr, r2.addr));
        let registries: Vec<String> = endpoints.split(',').map(|e| format!("http://{}", e.trim())).collect();
        assert_same(&pull_from(&registries, &token, repo, tag).await, images);
    }

    // The index-only process serves the index API only, and says where the data is.
    let p = c.get(format!("{}/v1/_ping", i2.url)).send().await.unwrap();
    assert_eq!(p.headers()["x-docker-registry-standalone"], "true");
    for path in [
        format!("/v1/images/{}/json", one[0].id),
        "/v1/repositories/alice/one/tags".to_string(),
        "/v1/repositories/alice/one/tags/latest".to_string(),
    ] {
        let resp = c.get(format!("{}{path}", i2.url)).send().await.unwrap();
        let msg = error_of(resp, 404, &path).await;
        assert!(msg.contains(&r1.addr) && msg.contains(&r2.addr), "{msg}");
    }
    // The Hub delete flow through the index-only process: 202 and a delete token from the
    // index, the registry deletes the data with it; then the repository is absent everywhere.
    let r = c
        .delete(format!("{}/v1/repositories/alice/one/", i2.url))
        .header("Authorization", basic("alice", "secret1"))
        .header("X-Docker-Token", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "index delete");
    let delete_token = r.headers()["x-docker-token"].to_str().unwrap().to_string();
    let r = c
        .delete(format!("{}/v1/repositories/alice/one/", r1.url))
        .header("Authorization", token_auth(&delete_token))
        .send()
        .await
        .unwrap();
    expect(r, 200, "registry delete with the index's token").await;
    let images = c
        .get(format!("{}/v1/repositories/alice/one/images", i2.url))
        .send()
        .await
        .unwrap();
    expect(images, 404, "index image list after the delete").await;
    let tags = c
        .get(&tags1)
        .header("Authorization", token_auth(&fresh))
        .send()
        .await
        .unwrap();
    expect(tags, 404, "registry tags after the delete").await;

    let rm = metrics(&r1.url).await;
    assert!(metric(&rm, "skiff_delegate_failures_total") >= 1, "{rm}");
    assert!(metric(&rm, "skiff_delegate_cache_hits_total") >= 1, "{rm}");

    // Back to standalone is one line of registry.toml: R2 serves its data on its own.
    r2.kill9();
    let r2s = Server::start_in(
        &r2.dir,
        &registry_config(&i.url).replace("standalone = false", "standalone = true"),
    );
    let pulled = pull_13(&r2s.url, None, "alice/two", "v2").await.expect("pull");
    assert_same(&pulled, &two);
}

/// A fake index on 127.0.0.1:0 that misbehaves according to the repository asked about.
fn fake_index() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let answer = |status: &str, headers: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let reply = if head.contains("/slow/") {
                    std::thread::sleep(Duration::from_secs(4)); // accepts, never answers in time
                    return;
                } else if head.contains("/html/") {
                    answer("200 OK", "Content-Type: text/html\r\n", "<html>login</html>")
                } else if head.contains("/broken/") {
                    answer("500 Internal Server Error", "", "")
                } else if head.contains("/junk/") {
                    "this is not HTTP at all\r\n\r\n".to_string()
                } else if head.contains("/readonly/") {
                    // An index that ignores ?access= but says what the token allows.
                    answer("200 OK", "X-Docker-Token-Access: read\r\n", "\"OK\"")
                } else {
                    // A foreign v1 index: a bare 200 "OK", no headers.
                    answer("200 OK", "", "\"OK\"")
                };
                let _ = conn.write_all(reply.as_bytes());
            });
        }
    });
    url
}

#[tokio::test]
async fn index_faults_fail_closed_and_fast() {
    let index = fake_index();
    let r = Server::start(&registry_config(&index));
    let c = client();
    let token = |repo: &str| format!("Token signature=abc123,repository=\"{repo}\",access=write");
    for (repo, reason) in [
        ("slow/app", "no answer within 1s"),
        ("html/app", "not JSON"),
        ("broken/app", "unexpected answer 500"),
        ("junk/app", "bad answer"),
    ] {
        let started = Instant::now();
        let (tags, ping) = tokio::join!(
            c.get(format!("{}/v1/repositories/{repo}/tags", r.url))
                .header("Authorization", token(repo))
                .send(),
            async {
                // The ping never waits for the index, even while a check is stuck on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let t = Instant::now();
                let p = c.get(format!("{}/_ping", r.url)).send().await.unwrap();
                (p.status(), t.elapsed())
            }
        );
        let msg = error_of(tags.unwrap(), 503, repo).await;
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{repo}: {:?}",
            started.elapsed()
        );
        assert!(msg.contains(&format!("index {index} unavailable")), "{msg}");
        assert!(msg.contains(reason), "{repo}: {msg}");
        assert_eq!(ping.0, 200);
        assert!(ping.1 < Duration::from_millis(500), "ping took {:?}", ping.1);
    }

    // A foreign index's bare 200 is a grant (then cached); its access header is believed.
    for _ in 0..2 {
        let resp = c
            .get(format!("{}/v1/repositories/foreign/app/tags", r.url))
            .header("Authorization", token("foreign/app"))
            .send()
            .await
            .unwrap();
        expect(resp, 404, "granted; the repository has no data here").await;
    }
    let resp = c
        .put(format!("{}/v1/repositories/readonly/app/tags/latest", r.url))
        .header("Authorization", token("readonly/app"))
        .json(&"0".repeat(64))
        .send()
        .await
        .unwrap();
    let msg = error_of(resp, 403, "index says the token is read-only").await;
    assert!(msg.contains("grants read access, not write"), "{msg}");

    let m = metrics(&r.url).await;
    assert_eq!(metric(&m, "skiff_delegate_failures_total"), 4, "{m}");
    assert_eq!(metric(&m, "skiff_delegate_denials_total"), 1, "{m}");
    assert_eq!(metric(&m, "skiff_delegate_cache_hits_total"), 1, "{m}");
    assert!(r.log().contains("unavailable: no answer within 1s"));
}

#[test]
fn roles_are_validated_and_the_readme_example_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, key) in [
        ("registry = false\n", "index.endpoints"),
        ("standalone = false\nindex_endpoint = \"https://index.lan\"\n", "https"),
    ] {
        Server::write_config(tmp.path(), extra);
        let (ok, _, err) = cli(tmp.path(), &["config", "check"], "");
        assert!(!ok && err.contains(key), "{extra}: {err}");
    }

    // Every TOML block of the README's delegated-mode section is a valid registry.toml.
    let blocks = readme_examples_validate(tmp.path(), "Delegated mode");
    assert_eq!(blocks, 2, "the index host and the registry host");
}

/// v2 on a delegated registry: the challenge sends clients to the index's token endpoint, and
/// the registry verifies the index's JWTs with its public key, fetched once: it keeps
/// accepting them while the index is down.
#[tokio::test]
async fn v2_tokens_from_the_index_work_on_the_registry_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut index = Server::start_in(tmp.path(), "");
    index.register("alice", "secret1").await;
    index.register("mallory", "secret2").await;
    let r = Server::start(&registry_config(&index.url));
    let c = client();

    let resp = c
        .get(format!("{}/v2/alice/app/manifests/latest", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(
        challenge.contains(&format!("realm=\"{}/v2/token\"", index.url)),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"repository:alice/app:pull\""), "{challenge}");

    let token = |user: &str, pw: &str, scope: &str| {
        let c = c.clone();
        let url = format!("{}/v2/token?service=skiff&scope={scope}", index.url);
        let auth = basic(user, pw);
        async move {
            body_json(c.get(url).header("Authorization", auth).send().await.unwrap()).await["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let push = format!(
        "Bearer {}",
        token("alice", "secret1", "repository:alice/app:pull,push").await
    );
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = gzip_tar(&[("hello.txt".to_string(), b"hello from v2".to_vec())]);
    let mut descriptors = Vec::new();
    for (blob, media_type) in [
        (&config, "application/vnd.oci.image.config.v1+json"),
        (&layer, "application/vnd.oci.image.layer.v1.tar+gzip"),
    ] {
        use sha2::Digest;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(blob)));
        let resp = c
            .post(format!("{}/v2/alice/app/blobs/uploads/?digest={digest}", r.url))
            .header("Authorization", &push)
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "blob upload with the index's token");
        descriptors.push(serde_json::json!({"mediaType": media_type, "digest": digest, "size": blob.len()}));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptors[0], "layers": [descriptors[1]]
    });
    let resp = c
        .put(format!("{}/v2/alice/app/manifests/latest", r.url))
        .header("Authorization", &push)
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // Mallory's token grants nothing on alice/app: no push; a forged signature is refused.
    let other = format!(
        "Bearer {}",
        token("mallory", "secret2", "repository:alice/app:pull,push").await
    );
    let resp = c
        .put(format!("{}/v2/alice/app/manifests/evil", r.url))
        .header("Authorization", &other)
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    let mut forged = push.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let resp = c
        .get(format!("{}/v2/alice/app/manifests/latest", r.url))
        .header("Authorization", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // The index goes away: the registry still verifies the token by itself.
    index.kill9();
    let resp = c
        .get(format!("{}/v2/alice/app/manifests/latest", r.url))
        .header("Authorization", &push)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "no index round trip per request");
    let resp = c
        .get(format!(
            "{}/v2/alice/app/blobs/{}",
            r.url,
            descriptors[1]["digest"].as_str().unwrap()
        ))
        .header("Authorization", &push)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), layer.as_slice());
}

/// The index changes its token key (restarted with a new one): a delegated registry fetches
/// the new keys when it first sees a token signed with one, once however many requests arrive
/// together, and accepts the new tokens without a restart.
#[tokio::test]
async fn a_new_index_key_is_fetched_once_by_the_registry() {
    let mut index = Server::start("");
    let r = Server::start(&registry_config(&index.url));
    index.register("alice", "secret1").await;
    let c = client();
    let token = |index_url: String| {
        // A new client each time: a pooled connection to the killed index would fail.
        let c = client();
        async move {
            let url = format!("{index_url}/v2/token?service=skiff&scope=repository:alice/app:pull");
            let v = body_json(
                c.get(url)
                    .header("Authorization", basic("alice", "secret1"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            format!("Bearer {}", v["token"].as_str().unwrap())
        }
    };
    let tags = format!("{}/v2/alice/app/tags/list", r.url);
    let status = |auth: String| {
        let (c, tags) = (c.clone(), tags.clone());
        async move {
            c.get(tags)
                .header("Authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Alice's own (absent) repository: 404 NAME_UNKNOWN once the token is accepted.
    let old = token(index.url.clone()).await;
    assert_eq!(status(old.clone()).await, 404, "first token accepted");

    index.kill9();
    std::fs::remove_file(index.dir.join("data/index/jwt-ed25519.pk8")).expect("remove the key");
    let index = Server::start_in(&index.dir, &format!("listen = \"{}\"\n", index.addr));
    let new = token(index.url.clone()).await;
    let before = index.log().matches("/v2/token/keys").count();
    let answers = futures::future::join_all((0..16).map(|_| status(new.clone()))).await;
    assert!(answers.iter().all(|s| *s == 404), "tokens of the new key: {answers:?}");
    let fetches = index.log().matches("/v2/token/keys").count() - before;
    assert_eq!(fetches, 1, "16 requests, one fetch of the keys");
    // Tokens of the old key are refused; the first makes the registry look once more (the
    // key might be new to it), which finds nothing, so the rest wait for the refresh interval.
    for _ in 0..8 {
        assert_eq!(status(old.clone()).await, 401, "the old key's token");
    }
    assert_eq!(index.log().matches("/v2/token/keys").count() - before, 2);
}
