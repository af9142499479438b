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
    // flight (1 MiB and its 32 KiB watermark), and of the page cache, the pages of the current
    // window already sent (at most 1 MiB); nothing is prepared ahead of a client that does not
    // read. (Before: 4-5 MiB in all per stalled download.)
    let (anon, rss) = (status_field(&s, "RssAnon:"), status_field(&s, "VmRSS:"));
    assert!(
        anon < 64 * 1024 + 300 * 1200 && rss < 64 * 1024 + 300 * 2048,
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

/// Requests the HTTP layer cannot parse (a URI with non-UTF-8 bytes, one of 100 KB, a broken
/// header line) get a JSON error body naming the problem, in both protocols' shapes, and the
/// connection is closed; the server goes on serving.
#[tokio::test]
async fn unparseable_requests_get_json_errors() {
    use std::io::Read;
    let s = Server::start("");
    let long = format!("GET /v2/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)).into_bytes();
    let big_header = format!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1_000_000)
    )
    .into_bytes();
    let cases: [(&[u8], u16, &str); 4] = [
        (
            b"GET /v2/\xff\xfe/tags/list HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "Malformed request",
        ),
        (&long, 400, "Malformed request"),
        (&big_header, 431, "Request head too large"),
        (b"GET /v2/ HTTP/1.1\r\nHost x\r\n\r\n", 400, "Malformed request"),
    ];
    for (request, status, message) in cases {
        let mut sock = std::net::TcpStream::connect(&s.addr).expect("connect");
        let _ = sock.write_all(request);
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = out.split_once("\r\n\r\n").expect("a whole answer");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert_eq!(
            header_of(head, "content-type").as_deref(),
            Some("application/json"),
            "{head}"
        );
        assert_eq!(
            header_of(head, "content-length"),
            Some(body.len().to_string()),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert!(v["error"].as_str().is_some_and(|m| m.starts_with(message)), "{v}");
        assert_eq!(v["errors"][0]["code"], "UNSUPPORTED", "{v}");
    }
    let r = client()
        .get(format!("{}/v2/", s.url))
        .send()
        .await
        .expect("still serving");
    assert_eq!(r.status(), 401);
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

/// Item 6: one writer per v1 image. Two users racing `PUT json` of one id, neither able to read
/// the other's image, each get their own copy (each owns theirs; neither can write the
/// other's). Racing it into one repository, where each could read the other's: exactly one wins
/// and owns the repository's image. A second `PUT layer` while one streams is refused, so the
/// stored layer always matches its checksum.
#[tokio::test]
async fn one_writer_per_image_id() {
    let s = Server::start("");
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let (alice, bobby) = (basic("alice", "secret1"), basic("bobby", "secret2"));
    let c = client();
    let put = |auth: String, id: String, json: Vec<u8>| {
        let (c, url) = (c.clone(), s.url.clone());
        tokio::spawn(async move {
            let r = c
                .put(format!("{url}/v1/images/{id}/json"))
                .header("Authorization", auth)
                .body(json)
                .send()
                .await
                .expect("put json");
            r.status().as_u16()
        })
    };
    for round in 0..16 {
        let id = random_id();
        let own = |who: &str| {
            let mut v: serde_json::Value = serde_json::from_slice(&image_json(&id, None)).unwrap();
            v["author"] = serde_json::Value::String(who.into());
            serde_json::to_vec(&v).unwrap()
        };
        let (a, b) = (
            put(alice.clone(), id.clone(), own("alice")),
            put(bobby.clone(), id.clone(), own("bobby")),
        );
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!((a, b), (200, 200), "each pushes their own copy");
        if round >= 2 {
            continue;
        }
        // Each writes only their own copy, and reads back only their own.
        for (who, auth, layer) in [("alice", &alice, vec![1u8; 10]), ("bobby", &bobby, vec![2u8; 20])] {
            let r = c
                .put(format!("{}/v1/images/{id}/layer", s.url))
                .header("Authorization", auth)
                .body(layer.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{who} writes the layer");
            let img = Image {
                id: id.clone(),
                parent: None,
                json: own(who),
                layer,
            };
            let r = c
                .put(format!("{}/v1/images/{id}/checksum", s.url))
                .header("Authorization", auth)
                .header("X-Docker-Checksum-Payload", img.payload_checksum())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{who}'s checksum matches {who}'s json and layer");
        }
        for (who, auth, size) in [("alice", &alice, 10), ("bobby", &bobby, 20)] {
            let r = c
                .get(format!("{}/v1/images/{id}/json", s.url))
                .header("Authorization", auth)
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["x-docker-size"], size.to_string().as_str(), "{who}");
            assert_eq!(
                r.bytes().await.unwrap().as_ref(),
                own(who).as_slice(),
                "{who} reads their own"
            );
        }
    }

    // Into one repository both may write: the repository holds one image of an id.
    let r = c
        .put(format!("{}/v1/repositories/alice/shared/", s.url))
        .header("Authorization", &alice)
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{}/v1/repositories/alice/shared/collaborators/bobby", s.url))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "bobby collaborates");
    let tokens = [
        token_auth(&write_token(&s.url, ("alice", "secret1"), "alice/shared").await),
        token_auth(&write_token(&s.url, ("bobby", "secret2"), "alice/shared").await),
    ];
    for _ in 0..16 {
        let id = random_id();
        let (a, b) = (
            put(tokens[0].clone(), id.clone(), image_json(&id, None)),
            put(tokens[1].clone(), id.clone(), image_json(&id, None)),
        );
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!(
            [a, b].iter().filter(|s| **s == 200).count(),
            1,
            "exactly one of two racing PUT json into one repository wins: {a} {b}"
        );
        assert!([a, b].contains(&409), "the other gets 409: {a} {b}");
        let (winner, loser) = if a == 200 {
            (&tokens[0], &tokens[1])
        } else {
            (&tokens[1], &tokens[0])
        };
        // The loser cannot write the winner's image in any way.
        let r = c
            .put(format!("{}/v1/images/{id}/layer", s.url))
            .header("Authorization", loser)
            .body(vec![1u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409, "loser writes the layer");
        let r = c
            .put(format!("{}/v1/images/{id}/layer", s.url))
            .header("Authorization", winner)
            .body(vec![2u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "winner writes the layer");
    }

    // A layer streaming slowly; a second upload of the same id meanwhile is refused.
    let img = &chain(1)[0];
    let r = c
        .put(format!("{}/v1/images/{}/json", s.url, img.id))
        .header("Authorization", &alice)
        .body(img.json.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    let slow = {
        let (c, url, id, auth) = (c.clone(), s.url.clone(), img.id.clone(), alice.clone());
        tokio::spawn(async move {
            c.put(format!("{url}/v1/images/{id}/layer"))
                .header("Authorization", auth)
                .body(reqwest::Body::wrap_stream(rx))
                .send()
                .await
                .expect("slow layer")
                .status()
                .as_u16()
        })
    };
    let half = img.layer.len() / 2;
    tx.unbounded_send(Ok(img.layer[..half].to_vec())).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let other = random_bytes(4096);
    let r = c
        .put(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &alice)
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        409,
        "a second layer upload of the same id while one streams"
    );
    tx.unbounded_send(Ok(img.layer[half..].to_vec())).unwrap();
    drop(tx);
    assert_eq!(slow.await.unwrap(), 200);
    let r = c
        .put(format!("{}/v1/images/{}/checksum", s.url, img.id))
        .header("Authorization", &alice)
        .header("X-Docker-Checksum-Payload", img.payload_checksum())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the checksum of the layer that was stored");
    let r = c
        .get(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), img.layer.as_slice());
}

/// Item 7: failed logins are throttled per account and per address (429 with `Retry-After`,
/// the right password included, on v1 and on the v2 token endpoint); another account from the
/// same address is unaffected until the address itself is spent.
#[tokio::test]
async fn failed_logins_are_throttled() {
    let s = Server::start(
        "[limits]\nlogin_failures_per_account = 3\nlogin_failures_per_address = 8\nlogin_window_secs = 30\n",
    );
    s.register("alice", "secret1").await;
    s.register("bobby", "secret2").await;
    let c = client();
    let login = |user: &str, pw: &str| {
        c.get(format!("{}/v1/users/", s.url))
            .header("Authorization", basic(user, pw))
            .send()
    };
    for _ in 0..3 {
        expect(login("alice", "wrong").await.unwrap(), 401, "wrong password").await;
    }
    let r = login("alice", "secret1").await.unwrap();
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    let body = expect(r, 429, "right password while throttled").await;
    assert!(body["error"].as_str().unwrap().contains("Too many failed logins"));
    // The v2 token endpoint answers the same, in the v2 format.
    let r = c
        .get(format!("{}/v2/token?service=skiff", s.url))
        .header("Authorization", basic("alice", "secret1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "TOOMANYREQUESTS");
    // Bobby, from the same address, still gets in.
    expect(login("bobby", "secret2").await.unwrap(), 200, "another account").await;
    // Unknown accounts count against the address: 3 (alice) + 5 more spend its 8.
    for i in 0..5 {
        expect(login(&format!("ghost{i}"), "x").await.unwrap(), 401, "unknown user").await;
    }
    expect(login("bobby", "wrong").await.unwrap(), 429, "address spent").await;
}

/// Item 7: password hashing runs on a bounded pool: a burst of 24 wrong-password logins at a
/// realistic round count does not spawn a thread per login, and already verified (cached)
/// credentials are served meanwhile.
#[tokio::test]
async fn password_checks_run_on_a_bounded_pool() {
    let s = Server::start(
        "[index]\npbkdf2_rounds = 100000\n[limits]\nlogin_failures_per_address = 0\nlogin_failures_per_account = 0\npassword_hash_threads = 1\n",
    );
    s.register("alice", "secret1").await;
    let c = client();
    let url = s.url.clone();
    let ok = c
        .get(format!("{url}/v1/users/"))
        .header("Authorization", basic("alice", "secret1"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "warm the credential cache");
    let before = threads(&s);
    let burst: Vec<_> = (0..24)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let user = if i % 2 == 0 {
                    "alice".to_string()
                } else {
                    format!("ghost{i}")
                };
                c.get(format!("{url}/v1/users/"))
                    .header("Authorization", basic(&user, "wrong"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut peak = 0;
    for _ in 0..10 {
        let r = c
            .get(format!("{url}/v1/users/"))
            .header("Authorization", basic("alice", "secret1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "cached credentials during the burst");
        peak = peak.max(threads(&s));
    }
    let mut unfinished = 0;
    for b in &burst {
        if !b.is_finished() {
            unfinished += 1;
        }
    }
    for b in burst {
        assert_eq!(b.await.unwrap().unwrap(), 401);
    }
    assert!(unfinished > 0, "cached requests were served while logins still queued");
    assert!(peak <= before + 4, "threads grew from {before} to {peak} for 24 logins");
}

/// A small filesystem of the test's own (tmpfs), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Needs root (CI runs as root); a test that cannot mount fails rather than skips.
    fn mount(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(path.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .expect("remount");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn used_kib(&self) -> u64 {
        let out = std::process::Command::new("df")
            .args(["-k", "--output=used"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Item 8: a full disk is a clear, documented error on v1 and v2 (507, `DISK_FULL`, a message
/// naming disk space), logged once with the storage's path; nothing half-written stays, what
/// is stored is still served, and pushes work again once there is space.
#[tokio::test]
async fn full_disk_is_a_clear_error_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let disk = SmallDisk::mount(&store, "6m");
    let s = Server::start_in(
        tmp.path(),
        &format!("[storage]\npath = {:?}\n", store.display().to_string()),
    );
    let (alice, _, _) = users(&s).await;
    let api = Api::new(&s);
    let small = api.image(&alice, "alice/app", "small", serde_json::json!({})).await;
    let used_before = disk.used_kib();

    // v2: a blob bigger than the disk.
    let big = random_bytes(8 << 20);
    let digest = crate::v2::sha256(&big);
    let g = crate::v2::go(
        api.req(
            reqwest::Method::POST,
            &format!("/v2/alice/app/blobs/uploads/?digest={digest}"),
            Some(&alice),
        )
        .body(big.clone()),
    )
    .await;
    crate::v2::err(&g, 507, "DISK_FULL", "v2 push on a full disk");
    assert!(g.text().contains("out of disk space"), "{}", g.text());
    // v1: a layer bigger than the disk.
    let img = &chain(1)[0];
    let c = client();
    let r = c
        .put(format!("{}/v1/images/{}/json", s.url, img.id))
        .header("Authorization", &alice)
        .body(img.json.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &alice)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let body = expect(r, 507, "v1 layer on a full disk").await;
    assert!(body["error"].as_str().unwrap().contains("out of disk space"));

    // Logged once per failure, naming where.
    let log = s.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("no space left for the storage at"))
        .count();
    assert_eq!(lines, 2, "one log line per failed push:\n{log}");
    assert!(log.contains(&store.display().to_string()));
    // Nothing half-written is left, and what was stored is served.
    assert!(
        disk.used_kib() <= used_before + 64,
        "temp bytes left: {} KiB",
        disk.used_kib()
    );
    let g = api
        .get(&format!("/v2/alice/app/manifests/{}", small.digest), Some(&alice))
        .await;
    assert_eq!(g.status, 200);
    assert_eq!(
        api.head(&format!("/v2/alice/app/blobs/{digest}"), Some(&alice))
            .await
            .status,
        404
    );

    // Space returns: the same pushes succeed.
    disk.resize("64m");
    assert_eq!(api.blob(&alice, "alice/app", &big).await, digest);
    let r = c
        .put(format!("{}/v1/images/{}/layer", s.url, img.id))
        .header("Authorization", &alice)
        .body(img.layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "v1 layer once there is space");
    drop(s);
}
