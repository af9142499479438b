//! Webhooks against real servers and a real receiver: one correctly signed event per push (v1
//! in Docker Hub's shape, v2 in Distribution's envelope), deletes only for hooks that ask, a
//! hanging receiver that slows no push, a receiver down across a restart that still gets every
//! event exactly once, the API's permissions, the delivery log and redeliver.

use crate::common::*;
use crate::v2::{add_collaborator, set_private, users, Api};
use hmac::{Hmac, Mac};
use reqwest::Method as M;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Test servers send to the receiver on 127.0.0.1 and retry fast.
const FAST: &str = "[webhooks]\nallow_loopback = true\nbackoff_secs = 1\ntimeout_secs = 2\n";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok,
    Fail,
    /// Reads the request and answers nothing for 10 s.
    Hang,
}

/// One request the receiver got, and what it answered (0: nothing).
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: u16,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn h(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A minimal HTTP/1.1 receiver that records every request.
#[derive(Clone)]
struct Receiver {
    addr: String,
    state: Arc<Mutex<(Mode, Vec<Hit>)>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        Receiver::start_on("127.0.0.1:0", mode).await
    }

    async fn start_on(addr: &str, mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new((mode, Vec::new())));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, shared.clone()));
            }
        });
        Receiver { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, mode: Mode) {
        self.state.lock().unwrap().0 = mode;
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().1.clone()
    }

    /// The requests answered 200.
    fn delivered(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.answered == 200).collect()
    }

    /// Waits until `n` requests were answered 200, then a little longer for any extra one.
    async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Hit> {
        let start = Instant::now();
        while self.delivered().len() < n && start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.delivered()
    }
}

async fn serve(mut sock: tokio::net::TcpStream, state: Arc<Mutex<(Mode, Vec<Hit>)>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    let mode = state.lock().unwrap().0;
    let answered = match mode {
        Mode::Ok => 200,
        Mode::Fail => 500,
        Mode::Hang => 0,
    };
    state.lock().unwrap().1.push(Hit {
        path,
        headers,
        body,
        answered,
    });
    match mode {
        Mode::Hang => tokio::time::sleep(Duration::from_secs(10)).await,
        _ => {
            let reason = if answered == 200 { "OK" } else { "Internal Server Error" };
            let resp = format!("HTTP/1.1 {answered} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Makes an empty public repository (a hook belongs to an existing repository).
async fn create_repo(s: &Server, auth: &str, repo: &str) {
    let r = client()
        .put(format!("{}/v1/repositories/{repo}/properties", s.url))
        .header("Authorization", auth)
        .json(&json!({"access": "public"}))
        .send()
        .await
        .expect("properties");
    assert_eq!(r.status(), 200, "create {repo}");
}

/// A hook on `repo` for `url`: its id and secret.
async fn add_hook(s: &Server, auth: &str, repo: &str, body: Value) -> (u64, String) {
    let path = format!("/api/v1/repositories/{repo}/-/webhooks");
    let (st, hook) = call(s, M::POST, &path, Some(auth), Some(body)).await;
    assert_eq!(st, 201, "{hook}");
    let secret = hook["secret"].as_str().expect("the secret, once").to_string();
    (hook["id"].as_u64().expect("id"), secret)
}

async fn deliveries(s: &Server, auth: &str, repo: &str, id: u64) -> Vec<Value> {
    let path = format!("/api/v1/repositories/{repo}/-/webhooks/{id}/deliveries");
    let (st, page) = call(s, M::GET, &path, Some(auth), None).await;
    assert_eq!(st, 200, "{page}");
    page["deliveries"].as_array().expect("deliveries").clone()
}

/// The delivery log once `done` holds of it (fails after 20 s).
async fn log_until(s: &Server, auth: &str, repo: &str, id: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let log = deliveries(s, auth, repo, id).await;
        if done(&log) {
            return log;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event ids of Distribution envelopes, or the Hub payloads' images, in `hits`.
fn event_ids(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| {
            let v = h.json();
            match v["events"][0]["id"].as_str() {
                Some(id) => id.to_string(),
                None => v["push_data"]["images"].to_string(),
            }
        })
        .collect()
}

#[tokio::test]
async fn each_push_sends_one_signed_event_v1_and_v2() {
    let global = Receiver::start(Mode::Ok).await;
    let extra = format!(
        "{FAST}[[webhooks.hook]]\nurl = \"{}\"\nsecret = \"global-secret\"\nrepositories = \"alice/*\"\n",
        global.url("/global")
    );
    let s = Server::start(&extra);
    let (alice, bobby, _) = users(&s).await;
    let rx = Receiver::start(Mode::Ok).await;
    create_repo(&s, &alice, "alice/app").await;
    create_repo(&s, &alice, "alice/old").await;
    let (v2_hook, v2_secret) = add_hook(&s, &alice, "alice/app", json!({"url": rx.url("/v2hook")})).await;
    let (v1_hook, v1_secret) = add_hook(
        &s,
        &alice,
        "alice/old",
        json!({"url": rx.url("/v1hook"), "secret": "my-own-secret"}),
    )
    .await;
    assert_eq!(v1_secret, "my-own-secret");
    assert_eq!(v2_secret.len(), 64, "a generated secret: {v2_secret}");

    // v2: a pushed manifest.
    let api = Api::new(&s);
    let pushed = api.image(&alice, "alice/app", "1.0", json!({})).await;
    let got = rx.wait_delivered(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "exactly one event per push: {got:#?}");
    let hit = &got[0];
    assert_eq!(hit.path, "/v2hook");
    assert_eq!(hit.h("x-skiff-signature-256"), sign(&v2_secret, &hit.body));
    assert_ne!(hit.h("x-skiff-signature-256"), sign("wrong", &hit.body));
    assert_eq!(hit.h("x-skiff-event"), "push");
    assert!(hit.h("user-agent").starts_with("skiff/"), "{:?}", hit.headers);
    assert_eq!(
        hit.h("content-type"),
        "application/vnd.docker.distribution.events.v1+json"
    );
    let e = &hit.json()["events"][0];
    assert_eq!(e["action"], "push");
    assert_eq!(e["target"]["repository"], "alice/app");
    assert_eq!(e["target"]["tag"], "1.0");
    assert_eq!(e["target"]["digest"], pushed.digest.as_str());
    assert_eq!(e["target"]["mediaType"], pushed.media_type.as_str());
    assert_eq!(e["target"]["size"], pushed.body.len());
    assert_eq!(e["target"]["length"], pushed.body.len());
    assert_eq!(
        e["target"]["url"],
        format!("{}/v2/alice/app/manifests/{}", s.url, pushed.digest)
    );
    assert_eq!(e["actor"]["name"], "alice");
    assert_eq!(e["request"]["method"], "PUT");
    assert_eq!(e["request"]["useragent"], "skiff-tests/oci");
    let first_delivery = hit.h("x-skiff-delivery").to_string();

    // v1: Docker 1.3's push (two index calls, one event, at the end).
    let images = chain(2);
    push_13(&s.url, "alice", "secret1", "alice/old", &images, "latest").await;
    let got = rx.wait_delivered(2, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2, "one more event: {got:#?}");
    let hit = &got[1];
    assert_eq!(hit.path, "/v1hook");
    assert_eq!(hit.h("x-skiff-signature-256"), sign("my-own-secret", &hit.body));
    assert_ne!(hit.h("x-skiff-delivery"), first_delivery);
    let v = hit.json();
    assert_eq!(v["push_data"]["pusher"], "alice");
    assert_eq!(v["push_data"]["tag"], "latest");
    let ids: Vec<&str> = v["push_data"]["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for img in &images {
        assert!(ids.contains(&img.id.as_str()), "{ids:?}");
    }
    assert_eq!(v["repository"]["repo_name"], "alice/old");
    assert_eq!(v["repository"]["namespace"], "alice");
    assert_eq!(v["repository"]["name"], "old");
    assert_eq!(v["repository"]["owner"], "alice");
    assert_eq!(v["repository"]["is_private"], false);

    // Another user's push to another namespace reaches neither alice's hooks nor the global one.
    api.image(&bobby, "bobby/app", "1", json!({})).await;
    // The global hook got both of alice's pushes, signed with its own secret.
    let g = global.wait_delivered(2, Duration::from_secs(20)).await;
    assert_eq!(g.len(), 2, "{g:#?}");
    for hit in &g {
        assert_eq!(hit.h("x-skiff-signature-256"), sign("global-secret", &hit.body));
    }
    assert_eq!(rx.hits().len(), 2, "no event of bobby's push");

    // The delivery log says so.
    for (repo, id) in [("alice/app", v2_hook), ("alice/old", v1_hook)] {
        let log = deliveries(&s, &alice, repo, id).await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["status"], "delivered");
        assert_eq!(log[0]["response_code"], 200);
        assert_eq!(log[0]["attempts"], 1);
        assert_eq!(log[0]["event"], "push");
    }
    let (st, hooks) = call(
        &s,
        M::GET,
        "/api/v1/repositories/alice/app/-/webhooks",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(hooks["webhooks"][0]["last_status"], "delivered", "{hooks}");
    assert!(
        hooks["webhooks"][0].get("secret").is_none(),
        "never shown again: {hooks}"
    );
}

#[tokio::test]
async fn deletes_go_only_to_hooks_that_ask() {
    let s = Server::start(FAST);
    let (alice, _, _) = users(&s).await;
    let pushes = Receiver::start(Mode::Ok).await;
    let all = Receiver::start(Mode::Ok).await;
    create_repo(&s, &alice, "alice/app").await;
    add_hook(&s, &alice, "alice/app", json!({"url": pushes.url("/")})).await;
    add_hook(
        &s,
        &alice,
        "alice/app",
        json!({"url": all.url("/"), "events": ["push", "delete"]}),
    )
    .await;
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "a", json!({})).await;
    let b = api.image(&alice, "alice/app", "b", json!({})).await;
    assert_eq!(pushes.wait_delivered(2, Duration::from_secs(20)).await.len(), 2);
    // v2 tag delete, then the management API's.
    let g = api.delete("/v2/alice/app/manifests/a", Some(&alice)).await;
    assert_eq!(g.status, 202);
    let (st, out) = call(
        &s,
        M::DELETE,
        "/api/v1/repositories/alice/app/-/tags/b",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(st, 200, "{out}");
    let got = all.wait_delivered(4, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 4, "two pushes, two deletes: {got:#?}");
    let deletes: Vec<Value> = got
        .iter()
        .filter(|h| h.h("x-skiff-event") == "delete")
        .map(|h| h.json()["events"][0].clone())
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    assert!(deletes
        .iter()
        .all(|e| e["action"] == "delete" && e["target"]["repository"] == "alice/app"));
    assert_eq!(deletes[0]["target"]["tag"], "a");
    assert_eq!(deletes[1]["target"]["tag"], "b");
    assert_eq!(deletes[1]["target"]["digest"], b.digest.as_str());
    assert_eq!(deletes[1]["actor"]["name"], "alice");
    assert_eq!(pushes.hits().len(), 2, "no delete event to a push-only hook");
}

#[tokio::test]
async fn a_hanging_receiver_slows_no_push_and_gets_every_event_later() {
    let s = Server::start(FAST);
    let (alice, _, _) = users(&s).await;
    let rx = Receiver::start(Mode::Hang).await;
    create_repo(&s, &alice, "alice/app").await;
    create_repo(&s, &alice, "alice/old").await;
    add_hook(&s, &alice, "alice/app", json!({"url": rx.url("/")})).await;
    add_hook(&s, &alice, "alice/old", json!({"url": rx.url("/")})).await;
    let api = Api::new(&s);
    for tag in ["1", "2", "3"] {
        let start = Instant::now();
        api.image(&alice, "alice/app", tag, json!({})).await;
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "push took {:?}",
            start.elapsed()
        );
    }
    let start = Instant::now();
    push_13(&s.url, "alice", "secret1", "alice/old", &chain(1), "latest").await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "v1 push took {:?}",
        start.elapsed()
    );
    // The receiver got the attempts and hangs on them; the server still answers at once.
    let start = Instant::now();
    while rx.hits().len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "attempts made: {:?}",
            rx.hits()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = Instant::now();
    assert_eq!(api.get("/v2/", Some(&alice)).await.status, 200);
    assert!(start.elapsed() < Duration::from_secs(1));
    // Back to answering: each event arrives, once.
    rx.set(Mode::Ok);
    let got = rx.wait_delivered(4, Duration::from_secs(30)).await;
    let mut ids = event_ids(&got);
    assert_eq!(ids.len(), 4, "{got:#?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each event once");
}

#[tokio::test]
async fn events_for_a_down_receiver_arrive_after_a_restart() {
    // A port with nothing listening (yet).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let url = format!("http://{port}/hook");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut s = Server::start_in(dir, FAST);
    let (alice, _, _) = users(&s).await;
    create_repo(&s, &alice, "alice/app").await;
    create_repo(&s, &alice, "alice/old").await;
    let (hook, secret) = add_hook(&s, &alice, "alice/app", json!({"url": url})).await;
    add_hook(&s, &alice, "alice/old", json!({"url": url})).await;
    let api = Api::new(&s);
    let pushed = api.image(&alice, "alice/app", "1", json!({})).await;
    api.image(&alice, "alice/app", "2", json!({})).await;
    push_13(&s.url, "alice", "secret1", "alice/old", &chain(1), "latest").await;
    // Attempted, refused, pending.
    let log = log_until(&s, &alice, "alice/app", hook, |log| {
        log.len() == 2 && log.iter().all(|d| d["attempts"].as_u64() >= Some(1))
    })
    .await;
    assert!(log.iter().all(|d| d["status"] == "pending"), "{log:#?}");
    assert!(log[0]["error"].as_str().unwrap_or("").contains("connect"), "{log:#?}");
    assert!(log[0]["next_attempt"].as_u64().is_some());

    // A clean stop while they wait, a new start on the same data, then the receiver.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(s.child.wait().expect("wait").success(), "clean exit");
    let s = Server::start_in(dir, FAST);
    let rx = Receiver::start_on(&port.to_string(), Mode::Ok).await;
    let got = rx.wait_delivered(3, Duration::from_secs(40)).await;
    let mut ids = event_ids(&got);
    assert_eq!(ids.len(), 3, "every event: {got:#?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each once: {got:#?}");
    let first = got
        .iter()
        .find(|h| h.json()["events"][0]["target"]["tag"] == "1")
        .expect("the first push's event");
    assert_eq!(first.h("x-skiff-signature-256"), sign(&secret, &first.body));
    assert_eq!(first.json()["events"][0]["target"]["digest"], pushed.digest.as_str());
    let log = deliveries(&s, &alice, "alice/app", hook).await;
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:#?}");
}

#[tokio::test]
async fn managers_only_and_a_log_to_redeliver_from() {
    let extra = format!("{FAST}max_attempts = 2\n");
    let s = Server::start(&extra);
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    api.image(&alice, "alice/priv", "1", json!({})).await;
    set_private(&api, &alice, "alice/priv", true).await;
    add_collaborator(&api, &alice, "alice/priv", "carol").await;
    let hooks = "/api/v1/repositories/alice/priv/-/webhooks";
    let body = json!({"url": "http://10.1.2.3/"});
    for (who, want) in [(Some(&bobby), 404), (Some(&carol), 403), (None, 401)] {
        let (st, out) = call(&s, M::GET, hooks, who.map(String::as_str), None).await;
        assert_eq!(st, want, "{out}");
        let (st, out) = call(&s, M::POST, hooks, who.map(String::as_str), Some(body.clone())).await;
        assert_eq!(st, want, "{out}");
    }
    for bad in [
        json!({"url": "ftp://x/"}),
        json!({}),
        json!({"url": "http://x/", "events": ["pull"]}),
    ] {
        let (st, out) = call(&s, M::POST, hooks, Some(&alice), Some(bad)).await;
        assert_eq!(st, 400, "{out}");
    }

    // A receiver that fails: two attempts, then failed, in the log.
    let rx = Receiver::start(Mode::Fail).await;
    let (id, secret) = add_hook(&s, &alice, "alice/priv", json!({"url": rx.url("/x")})).await;
    for who in [&bobby, &carol] {
        let path = format!("{hooks}/{id}/deliveries");
        let (st, _) = call(&s, M::GET, &path, Some(who), None).await;
        assert!(st == 404 || st == 403, "{st}");
    }
    api.image(&alice, "alice/priv", "2", json!({})).await;
    let log = log_until(&s, &alice, "alice/priv", id, |log| {
        log.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["response_code"], 500);
    assert_eq!(log[0]["tag"], "2");
    assert_eq!(rx.hits().len(), 2, "max_attempts = 2");

    // Redelivered once the receiver is back: the same event, a new delivery.
    rx.set(Mode::Ok);
    let did = log[0]["id"].as_u64().expect("id");
    let redeliver = format!("{hooks}/{id}/deliveries/{did}/redeliver");
    let (st, _) = call(&s, M::POST, &redeliver, Some(&carol), None).await;
    assert_eq!(st, 403, "a collaborator may not");
    let (st, out) = call(&s, M::POST, &redeliver, Some(&alice), None).await;
    assert_eq!(st, 202, "{out}");
    let got = rx.wait_delivered(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, rx.hits()[0].body, "the same event");
    assert_eq!(got[0].h("x-skiff-signature-256"), sign(&secret, &got[0].body));
    let log = deliveries(&s, &alice, "alice/priv", id).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["id"], out["id"]);
    assert_eq!(log[0]["status"], "delivered");

    // Switched off: no event; deleted: gone, with its log.
    let path = format!("{hooks}/{id}");
    let (st, out) = call(&s, M::PUT, &path, Some(&alice), Some(json!({"active": false}))).await;
    assert_eq!((st, &out["active"]), (200, &json!(false)), "{out}");
    api.image(&alice, "alice/priv", "3", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.hits().len(), 3, "an inactive hook gets nothing");
    assert_eq!(call(&s, M::DELETE, &path, Some(&carol), None).await.0, 403);
    assert_eq!(call(&s, M::DELETE, &path, Some(&alice), None).await.0, 204);
    let (st, _) = call(&s, M::GET, &format!("{path}/deliveries"), Some(&alice), None).await;
    assert_eq!(st, 404);
}

/// Without `allow_loopback`, a repository's hook may not send to this host or a link-local
/// address; a repository deleted takes its hooks with it.
#[tokio::test]
async fn repository_hooks_may_not_target_this_host() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let hooks = "/api/v1/repositories/alice/app/-/webhooks";
    let api = Api::new(&s);
    api.image(&alice, "alice/app", "1", json!({})).await;
    for url in [
        "http://127.0.0.1:9/",
        "http://localhost/",
        "http://169.254.169.254/",
        "http://[::1]/",
    ] {
        let (st, out) = call(&s, M::POST, hooks, Some(&alice), Some(json!({ "url": url }))).await;
        assert_eq!(st, 400, "{url}: {out}");
    }
    add_hook(&s, &alice, "alice/app", json!({"url": "http://10.1.2.3/"})).await;
    let (st, out) = call(&s, M::DELETE, "/api/v1/repositories/alice/app", Some(&alice), None).await;
    assert_eq!(st, 204, "{out}");
    api.image(&alice, "alice/app", "1", json!({})).await;
    let (st, out) = call(&s, M::GET, hooks, Some(&alice), None).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["webhooks"], json!([]), "a new repository of that name has no hooks");
}
