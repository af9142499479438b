//! Hostile clients: what strangers and ordinary users must not be able to do to the server.

use crate::common::*;
use crate::v2::{random_bytes, users, Api};
use std::io::Write;

/// A number from the server's `/proc/PID/status` (`Threads:`, `RssAnon:` in KiB, ...).
fn status_field(s: &Server, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn threads(s: &Server) -> u64 {
    status_field(s, "Threads:")
}

/// 300 anonymous downloads of a public 16 MiB blob whose clients never read: other requests
/// are served meanwhile, and no thread is held for them: once the burst's short blocking tasks
/// are done, the pool's idle threads retire (tokio keeps one idle for 10 s) and the count falls
/// back near where it was, though all 300 downloads are still stalled; and each holds little
/// memory.
#[tokio::test]
async fn stalled_downloads_hold_no_threads() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let digest = api.blob(&alice, "alice/app", &random_bytes(16 << 20)).await;
    let idle = threads(&s);
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut sock = std::net::TcpStream::connect(&s.addr).expect("connect");
        // A tiny receive buffer, never read: the server's sends stall at once.
        let req = format!("GET /v2/alice/app/blobs/{digest} HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
        sock.write_all(req.as_bytes()).expect("send");
        stalled.push(sock);
    }
    // Let every download start and fill its socket.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let g = api.get("/v2/alice/app/tags/list", None).await;
    assert_eq!(g.status, 200, "served while 300 downloads stall");
    // Memory is bounded per connection: of its own, the HTTP layer's copy of the one piece in
    // flight (256 KiB and its 32 KiB watermark), and of the page cache, the pages of the current
    // window already sent (at most 1 MiB); nothing is prepared ahead of a client that does not
    // read. (Before: ~1 MiB of its own and 4-5 MiB in all per stalled download.)
    let (anon, rss) = (status_field(&s, "RssAnon:"), status_field(&s, "VmRSS:"));
    assert!(
        anon < 64 * 1024 + 300 * 384 && rss < 64 * 1024 + 300 * 1536,
        "RssAnon {anon} KiB, VmRSS {rss} KiB with 300 stalled downloads"
    );
    let settled = wait_until(std::time::Duration::from_secs(30), || threads(&s) <= idle + 8);
    assert!(
        settled,
        "stalled downloads hold threads: {idle} idle, {} with 300 stalled",
        threads(&s)
    );
    drop(stalled);
}

/// Opens a raw connection and asks for a blob; nothing is read yet.
fn start_download(addr: &str, repo: &str, digest: &str) -> std::net::TcpStream {
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    let req = format!("GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    sock.write_all(req.as_bytes()).expect("send");
    sock
}

/// Reads until the server closes or resets the connection (bytes read, and whether it ended
/// with a reset); panics if it stays open, silent, for `silence`.
fn read_to_close(sock: &mut std::net::TcpStream, silence: std::time::Duration) -> (usize, bool) {
    use std::io::Read;
    sock.set_read_timeout(Some(silence)).expect("timeout");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return (total, false),
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (total, true),
            Err(e) => panic!("after {total} bytes: {e} (the server neither sent nor closed)"),
        }
    }
}

/// `[limits] send_timeout_secs`: a download whose client stops reading is closed once it has
/// taken nothing for that long (the server's send buffers drain into the client, then the
/// connection is gone, long before the blob is through). A slow client that keeps reading is
/// never cut, however long its download takes.
#[tokio::test]
async fn stalled_downloads_are_closed_after_the_send_timeout() {
    let s = Server::start("[limits]\nsend_timeout_secs = 2");
    let (alice, _, _) = users(&s).await;
    let size = 48 << 20;
    let digest = Api::new(&s).blob(&alice, "alice/app", &random_bytes(size)).await;

    let mut stalled = start_download(&s.addr, "alice/app", &digest);
    let mut slow = start_download(&s.addr, "alice/app", &digest);
    // The slow client: 64 KiB every 100 ms (~650 KB/s) for three timeouts' worth of time.
    let slow_reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 64 << 10];
        let (mut got, start) = (0, std::time::Instant::now());
        slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        // Then at full speed until the whole body (and its head) has arrived.
        while got < size {
            match slow.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(format!("after {got} bytes: {e}")),
            }
            if start.elapsed() < std::time::Duration::from_secs(6) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Ok(got)
    });

    // The stalled client reads nothing for the timeout plus slack, then drains what is left.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let (got, _) = read_to_close(&mut stalled, std::time::Duration::from_secs(10));
    assert!(
        got < size / 2,
        "the stalled download was not closed: {got} of {size} bytes arrived after it resumed"
    );

    let got = slow_reader
        .join()
        .expect("slow reader")
        .expect("the slow reader is not cut");
    assert!(got >= size, "the slow reader got the whole blob: {got} of {size} bytes");
}

/// The response head of one raw request (no client normalises our hostile headers).
fn raw_head(addr: &str, request: &str) -> String {
    use std::io::Read;
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    sock.write_all(request.as_bytes()).expect("send");
    let mut out = String::new();
    let _ = sock.read_to_string(&mut out);
    out.split("\r\n\r\n").next().unwrap_or_default().to_string()
}

fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The token realm and `X-Docker-Endpoints` never carry a client's text: a `Host` that is not a
/// plain host is replaced by the server's own address, `X-Forwarded-*` counts only when the
/// operator trusts a proxy, and `public_url` wins over both.
#[tokio::test]
async fn realms_never_reflect_hostile_hosts() {
    let s = Server::start("");
    let ask =
        |host: &str, extra: &str| format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    let realm = |head: &str| header_of(head, "www-authenticate").expect("challenge");
    let hostile = realm(&raw_head(&s.addr, &ask("evil.com\",service=\"x", "")));
    assert_eq!(
        hostile,
        format!("Bearer realm=\"http://{}/v2/token\",service=\"skiff\"", s.addr)
    );
    let forwarded = realm(&raw_head(
        &s.addr,
        &ask("reg.lan:5000", "X-Forwarded-Host: evil.com\r\n"),
    ));
    assert_eq!(
        forwarded,
        "Bearer realm=\"http://reg.lan:5000/v2/token\",service=\"skiff\""
    );
    let head = raw_head(
        &s.addr,
        "PUT /v1/repositories/alice/app/ HTTP/1.1\r\nHost: a b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
    );
    assert!(!head.contains("a b"), "{head}");

    let proxied = Server::start("trust_forwarded_headers = true");
    let via = realm(&raw_head(
        &proxied.addr,
        &ask(
            "internal:5000",
            "X-Forwarded-Host: reg.example.com\r\nX-Forwarded-Proto: https\r\n",
        ),
    ));
    assert_eq!(
        via,
        "Bearer realm=\"https://reg.example.com/v2/token\",service=\"skiff\""
    );

    let public = Server::start("public_url = \"https://registry.example.com/\"");
    let fixed = realm(&raw_head(
        &public.addr,
        &ask("other:1", "X-Forwarded-Host: evil.com\r\n"),
    ));
    assert_eq!(
        fixed,
        "Bearer realm=\"https://registry.example.com/v2/token\",service=\"skiff\""
    );
    let dir = tempfile::tempdir().unwrap();
    Server::write_config(dir.path(), "public_url = \"https://a b\"");
    let (ok, _, err) = cli(dir.path(), &["config", "check"], "");
    assert!(!ok && err.contains("public_url"), "a bad public_url is refused: {err}");
}

/// Search paging with a page number near the top of the integer range: an empty page, not an
/// overflow.
#[tokio::test]
async fn search_pages_never_overflow() {
    let s = Server::start("");
    let r = client()
        .get(format!("{}/v1/search?q=&n=100&page={}", s.url, u64::MAX))
        .send()
        .await
        .expect("search");
    assert_eq!(r.status(), 200);
    let body = body_json(r).await;
    assert_eq!(body["results"], serde_json::json!([]));
}

/// Errors actix-web writes itself are JSON too, and no error body grows with the request: a
/// manifest naming 25,000 missing blobs gets a short answer.
#[tokio::test]
async fn error_bodies_are_json_and_bounded() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let c = client();
    let r = c
        .put(format!("{}/v1/images/{}/json", s.url, "a".repeat(64)))
        .header("Authorization", alice.as_str())
        .body(vec![b' '; 9 << 20])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 413);
    assert!(r.headers()["content-type"].to_str().unwrap().contains("json"));
    assert!(body_json(r).await["error"].is_string());

    let layers: Vec<serde_json::Value> = (0..25_000u32)
        .map(|i| {
            let d = crate::v2::sha256(&i.to_le_bytes());
            serde_json::json!({"mediaType": crate::v2::OCI_LAYER, "digest": d, "size": 4})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": crate::v2::OCI_MANIFEST,
        "config": {"mediaType": crate::v2::OCI_CONFIG, "digest": crate::v2::sha256(b"{}"), "size": 2},
        "layers": layers,
    });
    let api = Api::new(&s);
    let g = api
        .put_manifest(
            Some(&alice),
            "alice/app",
            "v1",
            crate::v2::OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    assert_eq!(g.status, 400);
    assert_eq!(g.json()["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert!(g.body.len() < 4096, "error body of {} bytes", g.body.len());
    assert!(g.text().contains("and 24991 more"), "{}", g.text());
}

/// Registration refuses reserved names, white-space-only passwords and passwords over 1 KiB,
/// with a JSON 400, and creates nothing.
#[tokio::test]
async fn registration_refuses_reserved_names_and_odd_passwords() {
    let s = Server::start("");
    let c = client();
    let long = "x".repeat(1025);
    for (user, password) in [
        ("admin", "secret1"),
        ("library", "secret1"),
        ("v2", "secret1"),
        ("alice", "       "),
        ("alice", long.as_str()),
    ] {
        let r = c
            .post(format!("{}/v1/users/", s.url))
            .json(&serde_json::json!({"username": user, "password": password, "email": "a@example.com"}))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 400, "{user}");
        assert!(body_json(r).await["error"].is_string());
    }
    // Nothing was created: the name is still free.
    s.register("alice", "secret1").await;

    // An operator may make `admin` (offline CLI), and Docker 1.x's login, which POSTs first,
    // still reads "already exists" and goes on to log in.
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &["user", "add", "admin", "--email", "root@example.com", "--admin"],
        "s3cret-pass\n",
    );
    assert!(ok, "{err}");
    let s = Server::start_in(dir.path(), "");
    let r = c
        .post(format!("{}/v1/users/", s.url))
        .json(&serde_json::json!({"username": "admin", "password": "s3cret-pass", "email": "x@example.com"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r).await, "Username or email already exists");
}
