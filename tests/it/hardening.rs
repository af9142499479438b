//! Hostile clients: what strangers and ordinary users must not be able to do to the server.

use crate::common::*;
use crate::v2::{random_bytes, users, Api};
use std::io::Write;

fn threads(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// 300 anonymous downloads of a public 16 MiB blob whose clients never read: other requests
/// are served meanwhile, and no thread is held for them: once the burst's short blocking tasks
/// are done, the pool's idle threads retire (tokio keeps one idle for 10 s) and the count falls
/// back near where it was, though all 300 downloads are still stalled.
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
    let (rss, _) = s.rss_kib();
    assert!(rss < 512 * 1024, "RSS {rss} KiB with 300 stalled downloads");
    let settled = wait_until(std::time::Duration::from_secs(30), || threads(&s) <= idle + 8);
    assert!(
        settled,
        "stalled downloads hold threads: {idle} idle, {} with 300 stalled",
        threads(&s)
    );
    drop(stalled);
}
