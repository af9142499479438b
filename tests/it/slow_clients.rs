//! Slow and greedy uploaders (issue 10, item 2): uploads that trickle hold no thread, a body
//! that stalls is ended with 408 and its session resumes, and one user's uploads are capped
//! with a 429 that leaves other users alone.

use crate::common::*;
use crate::v2::{random_bytes, sha256, users, Api};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server's thread count, from `/proc/PID/status`.
fn threads(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Sends a request head announcing a body of `len` bytes, and the first bytes of that body.
fn begin_body(addr: &str, method: &str, path: &str, auth: &str, len: usize, first: &[u8]) -> TcpStream {
    let mut sock = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).expect("send head");
    sock.write_all(first).expect("send body");
    sock
}

/// The whole response, once the server has answered and closed the connection; `None` if it
/// has not within `wait`.
fn response(sock: &mut TcpStream, wait: Duration) -> Option<String> {
    sock.set_read_timeout(Some(wait)).expect("timeout");
    let mut out = Vec::new();
    match sock.read_to_end(&mut out) {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn status_of(resp: &str) -> u16 {
    resp.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn body_of(resp: &str) -> serde_json::Value {
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {resp}"))
}

/// Stores the json of a v1 image `id` (step 1 of a v1 push), so its layer may be PUT.
async fn v1_json(s: &Server, auth: &str, id: &str) {
    let r = client()
        .put(format!("{}/v1/images/{id}/json", s.url))
        .header("Authorization", auth)
        .json(&json!({"id": id}))
        .send()
        .await
        .expect("put json");
    assert_eq!(r.status(), 200, "PUT json {id}");
}

fn image_id(i: usize) -> String {
    format!("{i:064x}")
}

/// 300 v2 PATCHes and 30 v1 layer PUTs of three users send one byte a second. The server keeps
/// its threads (uploads have a pool of at most 32; on main each upload held two or three
/// blocking threads: 690 here, and the server froze before all had started),
/// a manifest GET and a whole push complete promptly meanwhile, and every trickled byte is
/// stored: one of the uploads finishes with the offset of all it sent.
#[tokio::test]
async fn trickling_uploads_hold_no_threads() {
    let s = Server::start("[limits]\nuploads_per_user = 200");
    let (alice, bobby, carol) = users(&s).await;
    let api = Api::new(&s);
    let pushed = api.image(&alice, "alice/app", "v1", json!({})).await;
    let idle = threads(&s);

    // Every upload starts while the others trickle; on main the server froze on the way.
    let start_all = async {
        let mut socks = Vec::new();
        let mut first_location = String::new();
        for (i, who) in [&alice, &bobby, &carol].iter().cycle().take(300).enumerate() {
            let repo = ["alice/app", "bobby/app", "carol/app"][i % 3];
            let loc = api.session(repo, who).await;
            let path = loc.trim_start_matches(&s.url).to_string();
            if i == 0 {
                first_location = loc.clone();
            }
            socks.push(begin_body(&s.addr, "PATCH", &path, who, 1000, b"x"));
        }
        for i in 0..30 {
            let id = image_id(i + 1);
            v1_json(&s, &alice, &id).await;
            let path = format!("/v1/images/{id}/layer");
            socks.push(begin_body(&s.addr, "PUT", &path, &alice, 1000, b"x"));
        }
        (socks, first_location)
    };
    let (socks, first_location) = tokio::time::timeout(Duration::from_secs(60), start_all)
        .await
        .unwrap_or_else(|_| panic!("330 uploads did not start within 60 s ({} threads)", threads(&s)));

    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        let mut socks = socks;
        std::thread::spawn(move || {
            let mut sent = 1;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                for sock in socks.iter_mut() {
                    let _ = sock.write_all(b"x");
                }
                sent += 1;
            }
            (socks, sent)
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    let started = Instant::now();
    let g = tokio::time::timeout(
        Duration::from_secs(5),
        api.get(&format!("/v2/alice/app/manifests/{}", pushed.digest), Some(&alice)),
    )
    .await
    .expect("manifest GET answered within 5 s while 330 uploads trickle");
    assert_eq!(g.status, 200);
    let get_time = started.elapsed();
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(10),
        api.image(&bobby, "bobby/other", "v1", json!({})),
    )
    .await
    .expect("a whole push completes within 10 s while 330 uploads trickle");
    let push_time = started.elapsed();

    let busy = threads(&s);
    eprintln!("threads: {idle} idle, {busy} with 330 trickling uploads; manifest GET {get_time:?}, push {push_time:?}");
    assert!(
        busy <= idle + 48,
        "330 trickling uploads hold threads: {idle} before, {busy} during (manifest GET {get_time:?}, push {push_time:?})"
    );

    stop.store(true, Ordering::SeqCst);
    let (mut socks, sent) = trickle.join().expect("trickle thread");
    // The first upload sends the rest of its 1000 bytes: every trickled byte is in the file.
    let first = &mut socks[0];
    first.write_all(&vec![b'x'; 1000 - sent]).expect("rest");
    let resp = response(first, Duration::from_secs(10)).map(|r| r.lines().next().unwrap_or_default().to_string());
    assert_eq!(resp.as_deref(), Some("HTTP/1.1 202 Accepted"));
    // A new client: the old one's pooled connections may have timed out meanwhile.
    let g = Api::new(&s).get(&first_location, Some(&alice)).await;
    assert_eq!(g.status, 204);
    assert_eq!(g.h("range").as_deref(), Some("0-999"));
}

/// A PATCH whose body stops arriving is ended after `limits.body_timeout_secs` with 408 and
/// the v2 error body, and the connection is closed. The session keeps the bytes that reached
/// the server (its `GET` says so), and the upload continues from there to the right digest. A
/// v1 layer PUT that stalls gets 408 with `{"error"}`. A client that goes away mid-chunk
/// leaves the session in the same state. On main the requests hung until the client gave up.
#[tokio::test]
async fn stalled_bodies_time_out_and_the_session_resumes() {
    let s = Server::start("[limits]\nbody_timeout_secs = 2");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let data = random_bytes(3 << 20);
    let loc = api.session("alice/app", &alice).await;
    let path = loc.trim_start_matches(&s.url).to_string();

    // 1.5 MiB of a 3 MiB chunk, then nothing: more than one write batch, and some held back.
    let sent = (3 << 19) + 12345;
    let started = Instant::now();
    let mut sock = begin_body(&s.addr, "PATCH", &path, &alice, data.len(), &data[..sent]);
    let resp = response(&mut sock, Duration::from_secs(15)).expect("answered and closed within 15 s");
    let waited = started.elapsed();
    assert_eq!(status_of(&resp), 408, "{resp}");
    assert!(waited >= Duration::from_secs(2), "ended after {waited:?}");
    let body = body_of(&resp);
    assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID", "{resp}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("body_timeout_secs"),
        "{resp}"
    );

    // The session reports what was stored, and the client continues from there.
    let g = api.get(&loc, Some(&alice)).await;
    assert_eq!(g.status, 204);
    assert_eq!(g.h("range"), Some(format!("0-{}", sent - 1)));
    let g = api
        .patch(&loc, &alice, Some((sent as u64, data.len() as u64 - 1)), &data[sent..])
        .await;
    assert_eq!(g.status, 202, "{}", g.text());
    let digest = sha256(&data);
    let g = api.close(&loc, &alice, &digest, None, b"").await;
    assert_eq!(g.status, 201, "{}", g.text());
    let g = api.get(&format!("/v2/alice/app/blobs/{digest}"), Some(&alice)).await;
    assert_eq!(g.status, 200);
    assert_eq!(sha256(&g.body), digest);

    // A client that goes away mid-chunk gets the same rule: what reached the server is kept,
    // the session says so, and the upload continues from there.
    let loc = api.session("alice/app", &alice).await;
    let path = loc.trim_start_matches(&s.url).to_string();
    let mut sock = begin_body(&s.addr, "PATCH", &path, &alice, data.len(), &data[..sent]);
    sock.flush().expect("flush");
    drop(sock);
    // (Polled: the server may not have taken the chunk up yet when the first GET comes.)
    let want = format!("0-{}", sent - 1);
    let mut range = None;
    for _ in 0..50 {
        let g = api.get(&loc, Some(&alice)).await;
        assert_eq!(g.status, 204);
        range = g.h("range");
        if range.as_deref() == Some(want.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(range, Some(want), "offset after the client went away");
    let g = api
        .close(
            &loc,
            &alice,
            &digest,
            Some((sent as u64, data.len() as u64 - 1)),
            &data[sent..],
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.text());

    // A monolithic POST and a v1 layer PUT that stall end the same way (nothing is kept).
    let post = format!("/v2/alice/app/blobs/uploads/?digest={digest}");
    let mut sock = begin_body(&s.addr, "POST", &post, &alice, 1000, b"abc");
    let resp = response(&mut sock, Duration::from_secs(15)).expect("POST answered");
    assert_eq!(status_of(&resp), 408, "{resp}");
    assert_eq!(body_of(&resp)["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
    let id = image_id(7);
    v1_json(&s, &alice, &id).await;
    let mut sock = begin_body(&s.addr, "PUT", &format!("/v1/images/{id}/layer"), &alice, 1000, b"abc");
    let resp = response(&mut sock, Duration::from_secs(15)).expect("layer PUT answered");
    assert_eq!(status_of(&resp), 408, "{resp}");
    assert!(body_of(&resp)["error"].as_str().unwrap_or_default().contains("stalled"));
    let left = crate::common::temp_files(&s.dir.join("data/registry"));
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// With `uploads_per_user = 3`, alice's fourth concurrent upload body gets 429 with
/// `Retry-After` and `TOOMANYREQUESTS` (v1: `{"error"}`), while bobby pushes as usual and
/// alice's own pushes without a body (session start, close) still work. Once one of her
/// uploads ends (its client goes away) she may upload again. On main the fourth was accepted.
#[tokio::test]
async fn one_user_cannot_take_every_upload_slot() {
    let s = Server::start("[limits]\nuploads_per_user = 3");
    let (alice, bobby, _) = users(&s).await;
    let api = Api::new(&s);
    let mut held = Vec::new();
    for _ in 0..3 {
        let loc = api.session("alice/app", &alice).await;
        let path = loc.trim_start_matches(&s.url).to_string();
        held.push(begin_body(&s.addr, "PATCH", &path, &alice, 1000, b"x"));
    }
    // Let the server take the three slots (generously: the machine may be busy).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let loc = api.session("alice/app", &alice).await;
    let g = api.patch(&loc, &alice, None, b"more").await;
    assert_eq!(g.status, 429, "{}", g.text());
    assert_eq!(g.h("retry-after").as_deref(), Some("5"));
    assert_eq!(g.json()["errors"][0]["code"], "TOOMANYREQUESTS");
    assert!(g.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("3 per user"));
    let data = random_bytes(1000);
    let post = format!("/v2/alice/app/blobs/uploads/?digest={}", sha256(&data));
    let g = crate::v2::go(
        api.req(reqwest::Method::POST, &post, Some(&alice))
            .header("Content-Type", "application/octet-stream")
            .body(data.clone()),
    )
    .await;
    assert_eq!(g.status, 429, "monolithic POST: {}", g.text());
    let id = image_id(9);
    v1_json(&s, &alice, &id).await;
    let r = client()
        .put(format!("{}/v1/images/{id}/layer", s.url))
        .header("Authorization", alice.as_str())
        .body(vec![1u8; 100])
        .send()
        .await
        .expect("layer");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(body_json(r).await["error"]
        .as_str()
        .unwrap_or_default()
        .contains("uploads_per_user"));

    // Another user is not affected; alice's requests without a body are not counted.
    api.image(&bobby, "bobby/app", "v1", json!({})).await;
    let empty = sha256(b"");
    let g = api.close(&loc, &alice, &empty, None, b"").await;
    assert_eq!(g.status, 201, "closing without a body: {}", g.text());

    // One of alice's uploads ends (the client goes away): its slot is free again.
    drop(held.pop());
    let freed = async {
        loop {
            let loc = api.session("alice/app", &alice).await;
            let g = api.patch(&loc, &alice, None, b"more").await;
            if g.status == 202 {
                break;
            }
            assert_eq!(g.status, 429);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), freed)
        .await
        .expect("a slot is given back when its upload ends");
}
