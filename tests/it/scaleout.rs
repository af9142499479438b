//! Scale-out on S3 (issue 13, "Must hold"): an index and two registry nodes (`standalone =
//! false`) on one bucket and prefix, haproxy (Debian's) round-robin in front of the two nodes,
//! and many clients at once. Every push through the balancer is pullable through each node and
//! the balancer; an upload continues on whichever node a request reaches; concurrent pushes of
//! one tag leave one answer everywhere; killing a node loses no acknowledged push.
//!
//! Needs an S3 server (`S3_ENDPOINT`, `S3_REGION`, `S3_BUCKET`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`; `scripts/garage start DIR` writes them to `DIR/env`) and the
//! `haproxy` binary. Without them each test says so and passes, unless `SKIFF_REQUIRE_S3=1`,
//! when it fails. Each test works in a fresh random prefix of the bucket.

use crate::common::*;
use crate::v2::{go_raw, random_bytes, sha256, Got, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use reqwest::Client;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const USER: (&str, &str) = ("alice", "secret1");

/// Whether a missing prerequisite fails the test instead of skipping it.
fn required() -> bool {
    std::env::var("SKIFF_REQUIRE_S3").as_deref() == Ok("1")
}

fn skip(why: &str) {
    assert!(!required(), "SKIFF_REQUIRE_S3=1 but {why}");
    eprintln!("scale-out test skipped: {why}");
}

/// The `[storage]` section every node of one cluster shares, or `None` (skipped) when no S3
/// server is configured.
fn s3_storage(prefix: &str) -> Option<String> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let endpoint = var("S3_ENDPOINT");
    if endpoint.is_empty() {
        skip("S3_ENDPOINT is not set (scripts/garage start DIR; . DIR/env)");
        return None;
    }
    let region = Some(var("S3_REGION"))
        .filter(|r| !r.is_empty())
        .unwrap_or("garage".into());
    let bucket = Some(var("S3_BUCKET"))
        .filter(|b| !b.is_empty())
        .unwrap_or("skiff-test".into());
    let mut storage = toml::Table::new();
    storage.insert("driver".into(), "s3".into());
    let mut s3 = toml::Table::new();
    for (k, v) in [
        ("endpoint", endpoint),
        ("region", region),
        ("bucket", bucket),
        ("prefix", prefix.to_string()),
        ("access_key_id", var("AWS_ACCESS_KEY_ID")),
        ("secret_access_key", var("AWS_SECRET_ACCESS_KEY")),
    ] {
        s3.insert(k.into(), v.into());
    }
    storage.insert("s3".into(), s3.into());
    let mut root = toml::Table::new();
    root.insert("storage".into(), storage.into());
    Some(toml::to_string(&root).expect("toml"))
}

/// The haproxy binary (Debian puts it in /usr/sbin, which a user's PATH may lack).
fn haproxy_bin() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join("haproxy"))
        .find(|p| p.is_file());
    if found.is_none() {
        skip("haproxy is not installed (scripts/test-deps installs it)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// haproxy in front of the registry nodes, killed when dropped.
struct Balancer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// Round-robin per request (haproxy balances each request of a kept-alive connection on
    /// its own), health checks on `/readyz` every 200 ms (down after 3 failures), and a refused
    /// connection retried on the other node (`retries` + `redispatch`), so a dead node is routed
    /// around. `timeout check` is not left to default to `inter`: on a loaded machine a
    /// readiness answer (an S3 stat) can take longer than 200 ms, and both nodes were then
    /// marked down (503 "No server is available").
    fn start(bin: &Path, nodes: &[&Server]) -> Balancer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, s)| format!("    server node{i} {} check\n", s.addr))
            .collect();
        let config = format!(
            "global\n    maxconn 1024\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\n\
             \x20   timeout check 2s\n    retries 3\n    option redispatch 1\n\
             frontend registry\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n\
             \x20   default-server inter 200ms fall 3 rise 1\n{servers}"
        );
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy log");
        let child = Command::new(bin)
            .arg("-db") // foreground, no daemon: the guard owns the process
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        let mut b = Balancer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let addr = format!("127.0.0.1:{port}");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok() || matches!(b.child.try_wait(), Ok(Some(_)))
        });
        let log = std::fs::read_to_string(b._dir.path().join("haproxy.log")).unwrap_or_default();
        assert!(
            up && matches!(b.child.try_wait(), Ok(None)),
            "haproxy did not start:\n{log}"
        );
        b
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An index and two registry nodes on one bucket prefix, and (optionally) haproxy in front of
/// the two nodes. `None` when S3 or haproxy is missing (skipped).
struct Cluster {
    index: Server,
    a: Server,
    b: Server,
    lb: Option<Balancer>,
}

impl Cluster {
    async fn start(with_lb: bool) -> Option<Cluster> {
        let prefix = format!("scaleout-{}", hex::encode(rand::random::<[u8; 6]>()));
        let storage = s3_storage(&prefix)?;
        let bin = if with_lb { Some(haproxy_bin()?) } else { None };
        let index = Server::start(&storage);
        index.register(USER.0, USER.1).await;
        let node = format!("standalone = false\nindex_endpoint = \"{}\"\n{storage}", index.url);
        let a = Server::start(&node);
        let b = Server::start(&node);
        let lb = bin.map(|bin| Balancer::start(&bin, &[&a, &b]));
        Some(Cluster { index, a, b, lb })
    }

    fn lb(&self) -> &str {
        &self.lb.as_ref().expect("balancer").url
    }

    /// A Bearer token from the index for push and pull on `repos`.
    async fn token(&self, repos: &[String]) -> String {
        let mut q = vec![("service".to_string(), "skiff".to_string())];
        q.extend(
            repos
                .iter()
                .map(|r| ("scope".to_string(), format!("repository:{r}:pull,push"))),
        );
        let r = Client::new()
            .get(format!("{}/v2/token", self.index.url))
            .header("Authorization", basic(USER.0, USER.1))
            .query(&q)
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status(), 200, "token from the index");
        let v: serde_json::Value = r.json().await.expect("token JSON");
        format!("Bearer {}", v["token"].as_str().expect("token"))
    }
}

/// One request; `Err` on a transport failure (a node killed under it), never a panic.
async fn send(rb: reqwest::RequestBuilder) -> Result<Got, String> {
    let (client, req) = rb.build_split();
    let req = req.map_err(|e| e.to_string())?;
    let resp = client.execute(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Got {
        head: false,
        status,
        headers,
        body,
    })
}

fn expect_status(g: &Got, status: u16, what: &str) -> Result<(), String> {
    if g.status == status {
        Ok(())
    } else {
        Err(format!("{what}: {} (wanted {status}): {}", g.status, g.text()))
    }
}

/// The path of an upload's `Location` (absolute or relative), to be sent to any node.
fn location_path(g: &Got) -> Result<String, String> {
    let loc = g.h("location").ok_or("no Location")?;
    match loc.strip_prefix("http://").or_else(|| loc.strip_prefix("https://")) {
        Some(rest) => Ok(rest[rest.find('/').unwrap_or(rest.len())..].to_string()),
        None => Ok(loc),
    }
}

fn with_digest(path: &str, digest: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}digest={digest}")
}

/// A chunked v2 upload: `POST` on `bases[0]`, one `PATCH` per chunk but the last on the
/// following bases, and the closing `PUT` with the last chunk on the last base (so there are
/// `bases.len() - 2` PATCHes). Each request goes to its own base: a balancer, or a given node.
/// Checks every answer (202 with the `Range` so far, 201 with the digest).
async fn chunked(c: &Client, bases: &[&str], auth: &str, repo: &str, data: &[u8]) -> Result<String, String> {
    assert!(bases.len() >= 3, "POST, at least one PATCH, PUT");
    let digest = sha256(data);
    let g = send(
        c.post(format!("{}/v2/{repo}/blobs/uploads/", bases[0]))
            .header("Authorization", auth)
            .header("Content-Length", "0"),
    )
    .await?;
    expect_status(&g, 202, "POST blobs/uploads/")?;
    let mut path = location_path(&g)?;
    let chunks = bases.len() - 1;
    let size = data.len().div_ceil(chunks);
    let mut offset = 0;
    for (i, base) in bases[1..].iter().enumerate() {
        let end = if i + 1 == chunks {
            data.len()
        } else {
            (offset + size).min(data.len())
        };
        let chunk = &data[offset..end];
        let range = format!("{offset}-{}", end - 1);
        if i + 1 < chunks {
            let g = send(
                c.patch(format!("{base}{path}"))
                    .header("Authorization", auth)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", &range)
                    .body(chunk.to_vec()),
            )
            .await?;
            expect_status(&g, 202, &format!("PATCH {range}"))?;
            let got = g.h("range").unwrap_or_default();
            if got != format!("0-{}", end - 1) {
                return Err(format!("PATCH {range}: Range {got}"));
            }
            path = location_path(&g)?;
        } else {
            let g = send(
                c.put(format!("{base}{}", with_digest(&path, &digest)))
                    .header("Authorization", auth)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", &range)
                    .body(chunk.to_vec()),
            )
            .await?;
            expect_status(&g, 201, "closing PUT")?;
            if g.h("docker-content-digest").as_deref() != Some(digest.as_str()) {
                return Err(format!("closing PUT: digest {:?}", g.h("docker-content-digest")));
            }
        }
        offset = end;
    }
    Ok(digest)
}

/// An image as a client pushes it: a config, two layers, and the manifest naming them.
#[derive(Clone)]
struct Image {
    repo: String,
    tag: String,
    blobs: Vec<Vec<u8>>,
    manifest: Vec<u8>,
    digest: String,
}

impl Image {
    fn new(repo: &str, tag: &str) -> Image {
        let config = json!({"architecture": "amd64", "os": "linux", "n": rand::random::<u64>()})
            .to_string()
            .into_bytes();
        let blobs = vec![config, random_bytes(48 * 1024 + 7), random_bytes(20 * 1024 + 3)];
        let d = |mt: &str, b: &[u8]| json!({"mediaType": mt, "digest": sha256(b), "size": b.len()});
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": d(OCI_CONFIG, &blobs[0]),
            "layers": [d(OCI_LAYER, &blobs[1]), d(OCI_LAYER, &blobs[2])],
        }))
        .expect("manifest");
        Image {
            repo: repo.into(),
            tag: tag.into(),
            digest: sha256(&manifest),
            blobs,
            manifest,
        }
    }

    /// Pushes the blobs through `base`, each as a chunked upload (4 and 3 chunks for the
    /// layers, 2 for the config: every request of an upload may reach another node).
    async fn push_blobs(&self, c: &Client, base: &str, auth: &str) -> Result<(), String> {
        for (blob, requests) in self.blobs.iter().zip([3, 5, 4]) {
            let bases = vec![base; requests];
            chunked(c, &bases, auth, &self.repo, blob).await?;
        }
        Ok(())
    }

    /// PUTs the manifest by tag; `Ok` only on the 201 that acknowledges the push.
    async fn put_manifest(&self, c: &Client, base: &str, auth: &str) -> Result<(), String> {
        let g = send(
            c.put(format!("{base}/v2/{}/manifests/{}", self.repo, self.tag))
                .header("Authorization", auth)
                .header("Content-Type", OCI_MANIFEST)
                .body(self.manifest.clone()),
        )
        .await?;
        expect_status(&g, 201, "PUT manifest")?;
        match g.h("docker-content-digest") {
            Some(d) if d == self.digest => Ok(()),
            other => Err(format!("PUT manifest: digest {other:?}")),
        }
    }

    async fn push(&self, c: &Client, base: &str, auth: &str) -> Result<(), String> {
        self.push_blobs(c, base, auth).await?;
        self.put_manifest(c, base, auth).await
    }
}

/// GETs a manifest by tag or digest: (digest, body), checked against each other.
async fn manifest(c: &Client, base: &str, auth: &str, repo: &str, reference: &str) -> (String, Vec<u8>) {
    let g = go_raw(
        c.get(format!("{base}/v2/{repo}/manifests/{reference}"))
            .header("Authorization", auth)
            .header("Accept", OCI_MANIFEST),
    )
    .await;
    assert_eq!(
        g.status,
        200,
        "GET {base}/v2/{repo}/manifests/{reference}: {}",
        g.text()
    );
    let digest = g.h("docker-content-digest").expect("Docker-Content-Digest");
    assert_eq!(digest, sha256(&g.body), "{base}: the digest is the body's");
    (digest, g.body)
}

async fn blob(c: &Client, base: &str, auth: &str, repo: &str, digest: &str) -> Vec<u8> {
    let g = go_raw(
        c.get(format!("{base}/v2/{repo}/blobs/{digest}"))
            .header("Authorization", auth),
    )
    .await;
    assert_eq!(g.status, 200, "GET {base} blob {digest} of {repo}: {}", g.text());
    assert_eq!(sha256(&g.body), digest, "{base}: blob {digest} of {repo} is whole");
    g.body
}

/// Pulls `image` through `base` by its tag: the manifest pushed, byte for byte, and every
/// blob it names, verified against its digest and the bytes pushed.
async fn pull(c: &Client, base: &str, auth: &str, image: &Image) {
    let (digest, body) = manifest(c, base, auth, &image.repo, &image.tag).await;
    assert_eq!(
        digest, image.digest,
        "{base}: {}:{} is the pushed manifest",
        image.repo, image.tag
    );
    assert_eq!(body, image.manifest);
    for b in &image.blobs {
        assert_eq!(&blob(c, base, auth, &image.repo, &sha256(b)).await, b);
    }
}

/// The upload ids each node's access log shows requests for.
fn uploads_seen(node: &Server) -> BTreeSet<String> {
    node.log()
        .lines()
        .filter_map(|l| {
            let path = l.split('"').nth(1)?.split(' ').nth(1)?;
            let id = path.split_once("/blobs/uploads/")?.1.split('?').next()?;
            (!id.is_empty()).then(|| id.to_string())
        })
        .collect()
}

fn client() -> Client {
    Client::builder()
        .user_agent("skiff-tests/scaleout")
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// 16 clients push 16 images through the balancer at once, every blob a chunked upload whose
/// requests round-robin over both nodes; then every image is pulled, whole and verified,
/// through node A alone, node B alone, and the balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_push_through_the_balancer_is_pullable_through_every_node() {
    let Some(cl) = Cluster::start(true).await else { return };
    let repos: Vec<String> = (0..CLIENTS).map(|i| format!("alice/scale-{i}")).collect();
    let auth = cl.token(&repos).await;
    let started = Instant::now();
    let pushes = repos.iter().map(|repo| {
        let (lb, auth, image) = (cl.lb().to_string(), auth.clone(), Image::new(repo, "v1"));
        tokio::spawn(async move { image.push(&client(), &lb, &auth).await.map(|()| image) })
    });
    let mut images = Vec::new();
    for p in futures::future::join_all(pushes).await {
        images.push(
            p.expect("task")
                .unwrap_or_else(|e| panic!("push through the balancer: {e}")),
        );
    }
    eprintln!("{CLIENTS} chunked pushes through haproxy: {:?}", started.elapsed());

    // Each upload's requests were spread: some upload ids reached both nodes.
    let (on_a, on_b) = (uploads_seen(&cl.a), uploads_seen(&cl.b));
    let both = on_a.intersection(&on_b).count();
    eprintln!("uploads: {} on A, {} on B, {both} on both", on_a.len(), on_b.len());
    assert!(
        both > 0,
        "no upload had requests on both nodes: the balancer did not spread them"
    );

    let c = client();
    for base in [&cl.a.url, &cl.b.url, &cl.lb().to_string()] {
        let pulls = images.iter().map(|image| pull(&c, base, &auth, image));
        futures::future::join_all(pulls).await;
    }
}

/// One upload, each request on another node: started on A, a chunk on B, one on A, closed on
/// B. Each node sees the other's progress (status, and a stale chunk refused with 416), and
/// the blob both serve is the bytes sent.
#[tokio::test]
async fn an_upload_continues_on_whichever_node_a_request_reaches() {
    let Some(cl) = Cluster::start(false).await else { return };
    let repo = "alice/hop".to_string();
    let auth = cl.token(std::slice::from_ref(&repo)).await;
    let c = client();
    let (a, b) = (cl.a.url.as_str(), cl.b.url.as_str());
    let data = random_bytes(3 * 40_000 + 11);
    let digest = chunked(&c, &[a, b, a, b], &auth, &repo, &data)
        .await
        .unwrap_or_else(|e| panic!("A, B, A, B: {e}"));
    assert_eq!(blob(&c, a, &auth, &repo, &digest).await, data);
    assert_eq!(blob(&c, b, &auth, &repo, &digest).await, data);

    // Step by step, with the status asked of the node that did not take the chunk.
    let status = |base: &str, path: &str| send(c.get(format!("{base}{path}")).header("Authorization", &auth));
    let g = send(
        c.post(format!("{a}/v2/{repo}/blobs/uploads/"))
            .header("Authorization", &auth)
            .header("Content-Length", "0"),
    )
    .await
    .expect("POST");
    assert_eq!(g.status, 202, "POST on A: {}", g.text());
    let path = location_path(&g).expect("Location");
    let g = status(b, &path).await.expect("status");
    assert_eq!(g.status, 204, "B knows the upload A opened: {}", g.text());
    let patch = |base: &str, path: &str, from: usize, to: usize| {
        send(
            c.patch(format!("{base}{path}"))
                .header("Authorization", &auth)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{from}-{}", to - 1))
                .body(data[from..to].to_vec()),
        )
    };
    let g = patch(b, &path, 0, 50_000).await.expect("PATCH");
    assert_eq!(g.status, 202, "first chunk on B: {}", g.text());
    let path = location_path(&g).expect("Location");
    let g = status(a, &path).await.expect("status");
    assert_eq!(g.status, 204);
    assert_eq!(g.h("range").as_deref(), Some("0-49999"), "A sees B's chunk");
    let g = patch(a, &path, 0, 50_000).await.expect("PATCH");
    assert_eq!(g.status, 416, "A refuses B's chunk again: it knows the offset moved");
    let g = patch(a, &path, 50_000, 100_000).await.expect("PATCH");
    assert_eq!(g.status, 202, "second chunk on A: {}", g.text());
    let path = location_path(&g).expect("Location");
    let g = status(b, &path).await.expect("status");
    assert_eq!(g.h("range").as_deref(), Some("0-99999"), "B sees A's chunk");
    let g = send(
        c.put(format!("{b}{}", with_digest(&path, &digest)))
            .header("Authorization", &auth)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("100000-{}", data.len() - 1))
            .body(data[100_000..].to_vec()),
    )
    .await
    .expect("PUT");
    assert_eq!(g.status, 201, "closed on B: {}", g.text());
    assert_eq!(blob(&c, a, &auth, &repo, &digest).await, data);
    assert_eq!(blob(&c, b, &auth, &repo, &digest).await, data);
}

/// 16 clients push 16 different manifests to one tag at the same moment (blobs first, then
/// all manifest PUTs together): every PUT is acknowledged, and afterwards the tag names the
/// same manifest through A, B and the balancer, again and again; it is one of those pushed,
/// with all its blobs, and every pushed manifest is still there by digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_of_one_tag_leave_one_answer() {
    let Some(cl) = Cluster::start(true).await else { return };
    let repo = "alice/contended".to_string();
    let auth = cl.token(std::slice::from_ref(&repo)).await;
    let images: Vec<Image> = (0..CLIENTS).map(|_| Image::new(&repo, "latest")).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let pushes = images.iter().cloned().map(|image| {
        let (lb, auth, barrier) = (cl.lb().to_string(), auth.clone(), barrier.clone());
        tokio::spawn(async move {
            let c = client();
            let blobs = image.push_blobs(&c, &lb, &auth).await;
            barrier.wait().await;
            blobs?;
            image.put_manifest(&c, &lb, &auth).await
        })
    });
    for p in futures::future::join_all(pushes).await {
        p.expect("task")
            .unwrap_or_else(|e| panic!("push of {repo}:latest: {e}"));
    }

    let by_digest: BTreeMap<&str, &Image> = images.iter().map(|i| (i.digest.as_str(), i)).collect();
    assert_eq!(by_digest.len(), CLIENTS, "16 different manifests");
    let c = client();
    let bases = [cl.a.url.clone(), cl.b.url.clone(), cl.lb().to_string()];
    let mut answers = BTreeSet::new();
    for _round in 0..5 {
        for base in &bases {
            let (digest, body) = manifest(&c, base, &auth, &repo, "latest").await;
            let pushed = by_digest
                .get(digest.as_str())
                .unwrap_or_else(|| panic!("{base}: latest is {digest}, which nobody pushed"));
            assert_eq!(body, pushed.manifest);
            answers.insert(digest);
        }
    }
    assert_eq!(
        answers.len(),
        1,
        "latest differs between A, B and the balancer: {answers:?}"
    );
    let winner = by_digest[answers.first().expect("an answer").as_str()];
    for base in &bases {
        pull(&c, base, &auth, winner).await;
        for image in &images {
            let (digest, _) = manifest(&c, base, &auth, &repo, &image.digest).await;
            assert_eq!(digest, image.digest, "{base}: acknowledged manifest kept by digest");
        }
    }
}

/// 16 clients push 3 images each through the balancer; node B is killed (SIGKILL) once a few
/// pushes are acknowledged. Clients retry a failed push through the balancer, which routes
/// around the dead node; every push acknowledged (201 on the manifest PUT), before or after the
/// kill, is pullable whole through node A and the balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_node_loses_no_acknowledged_push() {
    const PER_CLIENT: usize = 3;
    const ATTEMPTS: usize = 20;
    let Some(mut cl) = Cluster::start(true).await else {
        return;
    };
    let repos: Vec<String> = (0..CLIENTS).map(|i| format!("alice/kill-{i}")).collect();
    let auth = cl.token(&repos).await;
    let acked = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let clients = repos.iter().map(|repo| {
        let (lb, auth, repo) = (cl.lb().to_string(), auth.clone(), repo.clone());
        let (acked, failures) = (acked.clone(), failures.clone());
        tokio::spawn(async move {
            let c = client();
            let mut done = Vec::new();
            for n in 0..PER_CLIENT {
                let image = Image::new(&repo, &format!("t{n}"));
                let mut outcome = Err(String::new());
                for _ in 0..ATTEMPTS {
                    outcome = image.push(&c, &lb, &auth).await;
                    if outcome.is_ok() {
                        break;
                    }
                    failures.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if let Err(e) = outcome {
                    panic!("{repo}:t{n} never acknowledged in {ATTEMPTS} attempts: {e}");
                }
                acked.fetch_add(1, Ordering::SeqCst);
                done.push(image);
            }
            done
        })
    });
    let clients: Vec<_> = clients.collect();

    let total = CLIENTS * PER_CLIENT;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "no pushes acknowledged within 60 s");
        // A client that gave up (panicked) ends the wait: its join below reports why.
        if clients.iter().any(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cl.b.kill9();
    let at_kill = acked.load(Ordering::SeqCst);
    assert!(
        at_kill < total,
        "node B was killed after every push: nothing was in flight"
    );
    eprintln!("node B killed after {at_kill} of {total} acknowledged pushes");

    let mut images = Vec::new();
    for cl_task in futures::future::join_all(clients).await {
        images.extend(cl_task.expect("client task"));
    }
    eprintln!("failed attempts (retried): {}", failures.load(Ordering::SeqCst));
    let c = client();
    for base in [cl.a.url.clone(), cl.lb().to_string()] {
        futures::future::join_all(images.iter().map(|image| pull(&c, &base, &auth, image))).await;
    }
}

/// Docker 1.x through the balancer: the index hands out the token, the image data goes to the
/// balancer (each request to either node), and the image comes back byte for byte from node A
/// alone, node B alone and the balancer.
#[tokio::test]
async fn a_v1_push_through_the_balancer_is_pullable_through_every_node() {
    let Some(cl) = Cluster::start(true).await else { return };
    let images = chain(3);
    let lb = cl.lb().to_string();
    crate::delegated::push_via(&cl.index.url, &lb, USER, "alice/legacy", &images, "latest").await;
    for base in [&cl.a.url, &cl.b.url, &lb] {
        let (token, _) = crate::delegated::pull_start(&cl.index.url, "alice/legacy").await;
        let pulled = crate::delegated::pull_from(std::slice::from_ref(base), &token, "alice/legacy", "latest").await;
        crate::delegated::assert_same(&pulled, &images);
    }
}
