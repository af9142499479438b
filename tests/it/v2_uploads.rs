//! Upload sessions: end-5 (PATCH chunks, 416), end-13 (status), end-14 (cancel), resuming after
//! a broken chunk, sessions bound to their repository, expiry, and a 1 GiB streamed upload.

use super::*;
use futures::StreamExt;
use std::io::Write;
use std::time::Duration;

/// Sends a PATCH announcing `declared` bytes, writes only `sent`, then drops the connection.
fn broken_patch(addr: &str, path: &str, auth: &str, start: u64, declared: u64, sent: &[u8]) {
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Range: {start}-{}\r\nContent-Length: {declared}\r\n\r\n",
        start + declared - 1
    );
    sock.write_all(head.as_bytes()).expect("write head");
    sock.write_all(sent).expect("write body");
    sock.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    drop(sock);
}

/// The `Range` an upload's status reports, polled until it equals `want` (the server notices a
/// dropped connection asynchronously).
async fn wait_range(api: &Api, loc: &str, auth: &str, want: &str) -> Got {
    let start = std::time::Instant::now();
    loop {
        let g = go(api.req(Method::GET, loc, Some(auth))).await;
        ok(&g, 204, "upload status");
        assert_eq!(g.h("content-length"), None, "204 has no Content-Length (RFC 9110)");
        if g.h("range").as_deref() == Some(want) || start.elapsed() > Duration::from_secs(10) {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn chunked_upload_in_order_416_status_and_resume() {
    chunked_upload_in_order_416_status_and_resume_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn chunked_upload_in_order_416_status_and_resume_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let data = random_bytes(200);
    let digest = sha256(&data);

    let g = api.start_upload("alice/app", "", Some(&alice)).await;
    ok(&g, 202, "POST");
    let first = g.location(&s.url);
    assert_eq!(
        g.h("range").as_deref(),
        Some("0-0"),
        "empty upload (Distribution's form)"
    );

    let g = api.patch(&first, &alice, Some((0, 9)), &data[..10]).await;
    ok(&g, 202, "first chunk");
    assert_eq!(g.h("range").as_deref(), Some("0-9"));
    assert!(g.h("location").is_some(), "PATCH answers Location");
    let loc = g.location(&s.url);

    // Out of order: the same chunk again, a gap, a range whose length does not match.
    for (range, body, what) in [
        ((0, 9), &data[..10], "chunk repeated"),
        ((20, 29), &data[20..30], "chunk after a gap"),
        ((5, 14), &data[5..15], "overlapping chunk"),
    ] {
        let g = api.patch(&loc, &alice, Some(range), body).await;
        err(&g, 416, "BLOB_UPLOAD_INVALID", what);
    }
    // A Content-Length that disagrees with the range, or a range that cannot be read: 400, and
    // the upload is left as it was.
    let g = go(api
        .req(Method::PATCH, &loc, Some(&alice))
        .header("Content-Range", "10-19")
        .body(data[10..15].to_vec()))
    .await;
    err(&g, 400, "SIZE_INVALID", "Content-Length differs from Content-Range");
    for bad in ["ten-twenty", "10", "bytes=10-19"] {
        let g = go(api
            .req(Method::PATCH, &loc, Some(&alice))
            .header("Content-Range", bad)
            .body(data[10..20].to_vec()))
        .await;
        err(&g, 400, "BLOB_UPLOAD_INVALID", bad);
    }
    // A stale location (the POST's) still reports where the upload stands.
    let g = wait_range(&api, &first, &alice, "0-9").await;
    assert_eq!(g.h("range").as_deref(), Some("0-9"), "status after 416");
    assert!(g.h("location").is_some());
    assert!(g.body.is_empty(), "204 has no body");

    // A chunk broken off mid-way: the bytes that arrived count, the client resumes from there.
    let path = loc.trim_start_matches(&s.url).to_string();
    broken_patch(&s.addr, &path, &alice, 10, 100, &data[10..50]);
    let g = wait_range(&api, &loc, &alice, "0-49").await;
    assert_eq!(g.h("range").as_deref(), Some("0-49"), "offset after a broken chunk");
    let loc = g.location(&s.url);
    let g = api.patch(&loc, &alice, Some((50, 149)), &data[50..150]).await;
    ok(&g, 202, "chunk after resume");
    assert_eq!(g.h("range").as_deref(), Some("0-149"));
    // The final chunk goes with the closing PUT; out of order there is 416 too.
    let loc = g.location(&s.url);
    let g = api.close(&loc, &alice, &digest, Some((160, 199)), &data[160..]).await;
    err(&g, 416, "BLOB_UPLOAD_INVALID", "final chunk out of order");
    let g = api.close(&loc, &alice, &digest, Some((150, 199)), &data[150..]).await;
    ok(&g, 201, "PUT with the final chunk");
    assert_eq!(g.h("location"), Some(format!("/v2/alice/app/blobs/{digest}")));
    assert_eq!(g.h("docker-content-digest"), Some(digest.clone()));
    let g = api.get(&format!("/v2/alice/app/blobs/{digest}"), None).await;
    assert_eq!(g.body, data, "the blob is the chunks in order");
    // The session is closed.
    err(
        &go(api.req(Method::GET, &loc, Some(&alice))).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "closed session",
    );

    // Chunks without Content-Range (Docker's streamed PATCH), closed by an empty PUT.
    let loc = api.session("alice/app", &alice).await;
    let g = api.patch(&loc, &alice, None, &data[..120]).await;
    assert_eq!(g.h("range").as_deref(), Some("0-119"));
    let g = api.patch(&g.location(&s.url), &alice, None, &data[120..]).await;
    assert_eq!(g.h("range").as_deref(), Some("0-199"));
    let g = api.close(&g.location(&s.url), &alice, &digest, None, b"").await;
    ok(&g, 201, "empty closing PUT");
}

#[tokio::test]
async fn sessions_unknown_cancelled_and_bound_to_their_repository() {
    sessions_unknown_cancelled_and_bound_to_their_repository_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn sessions_unknown_cancelled_and_bound_to_their_repository_with(extra: &str) {
    let s = Server::start(extra);
    let (alice, bobby, _) = users(&s).await;
    let api = Api::new(&s);

    // Unknown (well-formed or not) session ids: 404 BLOB_UPLOAD_UNKNOWN on every method.
    for uuid in [
        "0123456789abcdef0123456789abcdef",
        "not-a-session",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        let loc = format!("/v2/alice/app/blobs/uploads/{uuid}");
        let d = sha256(b"x");
        for g in [
            go(api.req(Method::GET, &loc, Some(&alice))).await,
            api.patch(&loc, &alice, None, b"x").await,
            api.close(&loc, &alice, &d, None, b"x").await,
            api.close(&loc, &alice, "sha256:bad", None, b"x").await,
            go(api.req(Method::PUT, &loc, Some(&alice))).await,
            api.delete(&loc, Some(&alice)).await,
        ] {
            err(&g, 404, "BLOB_UPLOAD_UNKNOWN", &loc);
        }
    }

    // Cancel: 204, then the session is gone and its bytes never become a blob.
    let data = random_bytes(64);
    let loc = api.session("alice/app", &alice).await;
    ok(&api.patch(&loc, &alice, Some((0, 63)), &data).await, 202, "chunk");
    let g = go(api
        .req(Method::DELETE, &loc, Some(&alice))
        .header("Content-Length", "0"))
    .await;
    ok(&g, 204, "DELETE upload");
    err(
        &api.delete(&loc, Some(&alice)).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "second DELETE",
    );
    err(
        &go(api.req(Method::GET, &loc, Some(&alice))).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "status after cancel",
    );
    err(
        &api.patch(&loc, &alice, Some((64, 127)), &data).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "PATCH after cancel",
    );
    err(
        &api.close(&loc, &alice, &sha256(&data), None, b"").await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "PUT after cancel",
    );
    assert!(!blob_file(&s, &sha256(&data)).exists());
    let uuid = loc.rsplit('/').next().unwrap();
    assert!(
        !s.dir.join("data/registry/_uploads").join(uuid).exists(),
        "session files removed"
    );

    // A session belongs to the repository it was started in.
    let loc = api.session("alice/app", &alice).await;
    ok(&api.patch(&loc, &alice, Some((0, 63)), &data).await, 202, "chunk");
    let moved = loc.replace("/v2/alice/app/", "/v2/alice/elsewhere/");
    err(
        &go(api.req(Method::GET, &moved, Some(&alice))).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "status under another repository",
    );
    err(
        &api.patch(&moved, &alice, Some((64, 127)), &data).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "PATCH under another repository",
    );
    err(
        &api.close(&moved, &alice, &sha256(&data), None, b"").await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "PUT under another repository",
    );
    err(
        &api.delete(&moved, Some(&alice)).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "DELETE elsewhere",
    );
    // ... and to those who may push there.
    let g = go(api.req(Method::GET, &loc, Some(&bobby))).await;
    err(&g, 403, "DENIED", "someone else's session");
    let g = go(api.req(Method::GET, &loc, None)).await;
    err(&g, 401, "UNAUTHORIZED", "anonymous status");
    // The session was not disturbed by any of this.
    let g = go(api.req(Method::GET, &loc, Some(&alice))).await;
    ok(&g, 204, "status");
    assert_eq!(g.h("range").as_deref(), Some("0-63"));
    ok(&api.close(&loc, &alice, &sha256(&data), None, b"").await, 201, "close");
}

#[tokio::test]
async fn uploads_resume_across_a_restart() {
    uploads_resume_across_a_restart_with("").await
}

/// On the storage `extra` configures (`s3` runs it on S3).
pub(crate) async fn uploads_resume_across_a_restart_with(extra: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(tmp.path(), extra);
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let data = random_bytes(3000);
    let loc = api.session("alice/app", &alice).await;
    let g = api.patch(&loc, &alice, Some((0, 999)), &data[..1000]).await;
    ok(&g, 202, "chunk before the crash");
    let path = g.h("location").unwrap();
    s.kill9();

    let s = Server::start_in(tmp.path(), extra);
    let api = Api::new(&s);
    let loc = format!("{}{path}", s.url);
    let g = go(api.req(Method::GET, &loc, Some(&alice))).await;
    ok(&g, 204, "status after a restart");
    assert_eq!(g.h("range").as_deref(), Some("0-999"));
    err(
        &api.patch(&loc, &alice, Some((0, 999)), &data[..1000]).await,
        416,
        "BLOB_UPLOAD_INVALID",
        "the first chunk again",
    );
    let g = api.patch(&loc, &alice, Some((1000, 1999)), &data[1000..2000]).await;
    ok(&g, 202, "chunk after the restart");
    let g = api
        .close(
            &g.location(&s.url),
            &alice,
            &sha256(&data),
            Some((2000, 2999)),
            &data[2000..],
        )
        .await;
    ok(&g, 201, "close after the restart");
    assert_eq!(
        api.get(&format!("/v2/alice/app/blobs/{}", sha256(&data)), None)
            .await
            .body,
        data
    );
}

#[tokio::test]
async fn abandoned_uploads_are_swept() {
    let s = Server::start("[v2]\nupload_expiry_secs = 1\n");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let data = random_bytes(1000);
    let loc = api.session("alice/app", &alice).await;
    ok(&api.patch(&loc, &alice, Some((0, 999)), &data).await, 202, "chunk");
    let uuid = loc.rsplit('/').next().unwrap().to_string();
    let dir = s.dir.join("data/registry/_uploads").join(&uuid);
    assert!(dir.exists(), "session files exist while the upload is active");
    assert!(
        wait_until(Duration::from_secs(8), || !dir.exists()),
        "abandoned upload not swept"
    );
    err(
        &go(api.req(Method::GET, &loc, Some(&alice))).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "swept session",
    );
    err(
        &api.close(&loc, &alice, &sha256(&data), None, b"").await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "closing a swept session",
    );
    assert!(
        !blob_file(&s, &sha256(&data)).exists(),
        "no blob from an abandoned upload"
    );
    err(
        &api.head(&format!("/v2/alice/app/blobs/{}", sha256(&data)), None).await,
        404,
        "BLOB_UNKNOWN",
        "no blob",
    );
}

/// Deterministic pseudo-random bytes (xorshift), cheap enough for a GiB.
fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let b = state.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

#[tokio::test]
async fn one_gib_chunked_upload_streams_in_bounded_memory() {
    const CHUNK: u64 = 256 << 20;
    const PIECE: usize = 1 << 20;
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let loc = api.session("alice/big", &alice).await;
    let (rss_before, _) = s.rss_kib();

    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut loc = loc;
    for i in 0..4u64 {
        // Generated and hashed as it is sent: the test holds one MiB at a time, too.
        let (h, mut st) = (hasher.clone(), state);
        let body = futures::stream::iter(0..CHUNK as usize / PIECE).map(move |_| {
            let mut buf = vec![0u8; PIECE];
            fill(&mut buf, &mut st);
            h.lock().unwrap().update(&buf);
            Ok::<_, std::io::Error>(buf)
        });
        // Advance our copy of the generator past this chunk for the next one.
        let mut skip = vec![0u8; PIECE];
        for _ in 0..CHUNK as usize / PIECE {
            fill(&mut skip, &mut state);
        }
        let g = go(api
            .req(Method::PATCH, &loc, Some(&alice))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{}-{}", i * CHUNK, (i + 1) * CHUNK - 1))
            .header("Content-Length", CHUNK.to_string())
            .body(reqwest::Body::wrap_stream(body)))
        .await;
        ok(&g, 202, &format!("chunk {i}"));
        assert_eq!(g.h("range"), Some(format!("0-{}", (i + 1) * CHUNK - 1)));
        loc = g.location(&s.url);
    }
    let digest = format!(
        "sha256:{}",
        hex::encode(std::mem::take(&mut *hasher.lock().unwrap()).finalize())
    );
    let g = api.close(&loc, &alice, &digest, None, b"").await;
    ok(&g, 201, "close 1 GiB");
    let (_, peak) = s.rss_kib();
    assert!(
        peak.saturating_sub(rss_before) < 32 * 1024,
        "server memory grew from {rss_before} KiB to a peak of {peak} KiB"
    );

    // HEAD gives the size without reading the bytes (Docker HEADs every layer before a push).
    let read_bytes = || {
        let io = std::fs::read_to_string(format!("/proc/{}/io", s.pid())).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    let before = read_bytes();
    for _ in 0..3 {
        let g = api.head(&format!("/v2/alice/big/blobs/{digest}"), None).await;
        ok(&g, 200, "HEAD 1 GiB");
        assert_eq!(g.h("content-length"), Some((4 * CHUNK).to_string()));
    }
    let read = read_bytes() - before;
    assert!(read < 16 << 20, "three HEADs read {read} bytes");

    // Download it back, streamed, and compare.
    let resp = api
        .req(Method::GET, &format!("/v2/alice/big/blobs/{digest}"), None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(4 * CHUNK));
    let mut stream = resp.bytes_stream();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    assert_eq!(n, 4 * CHUNK);
    assert_eq!(format!("sha256:{}", hex::encode(h.finalize())), digest);
    let (_, peak) = s.rss_kib();
    assert!(
        peak.saturating_sub(rss_before) < 32 * 1024,
        "server memory grew to a peak of {peak} KiB while serving"
    );
}
