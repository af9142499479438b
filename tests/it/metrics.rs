//! `GET /metrics` against a running server: request counts and latency by route pattern and
//! status, body bytes in and out, uploads in flight, storage bytes and gc runs move as the
//! requests made here say they must.

use crate::common::*;
use crate::v2::{random_bytes, sha256, users, Api};
use reqwest::Method as M;
use serde_json::json;
use std::collections::BTreeMap;

/// One sample: its name and labels (sorted) as a key.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("labels end")),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once("=\"").expect("label");
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        out.insert((name.to_string(), labels), value.parse().expect("value"));
    }
    out
}

async fn scrape(s: &Server) -> (String, Samples) {
    let r = client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.expect("text");
    let samples = parse(&text);
    (text, samples)
}

fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.get(&(name.to_string(), labels)).copied().unwrap_or(0.0)
}

const BLOBS: &str = "/v2/{name:.+}/blobs/{digest}";
const UPLOADS: &str = "/v2/{name:.+}/blobs/uploads/";
const MANIFESTS: &str = "/v2/{name:.+}/manifests/{reference}";

/// Bytes of every file under the server's blob store, as the disk says.
fn blob_bytes_on_disk(s: &Server) -> (u64, u64) {
    fn walk(dir: &std::path::Path, acc: &mut (u64, u64)) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, acc);
            } else {
                acc.0 += 1;
                acc.1 += e.metadata().expect("metadata").len();
            }
        }
    }
    let mut acc = (0, 0);
    walk(&s.dir.join("data/registry/blobs"), &mut acc);
    acc
}

#[tokio::test]
async fn metrics_follow_requests_bytes_storage_and_gc() {
    let s = Server::start("");
    let (alice, _, _) = users(&s).await;
    let (_, before) = scrape(&s).await;
    assert_eq!(get(&before, "skiff_uploads_in_flight", &[]), 0.0);

    // A push: two blobs of known sizes, then a manifest naming them.
    let api = Api::new(&s);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = random_bytes(40_000);
    api.blob(&alice, "alice/m", &config).await;
    api.blob(&alice, "alice/m", &layer).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
    }))
    .unwrap();
    api.manifest(
        &alice,
        "alice/m",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        manifest.clone(),
    )
    .await;

    // A pull: the manifest, the layer whole and a range of it.
    let g = api.get("/v2/alice/m/manifests/v1", Some(&alice)).await;
    assert_eq!(g.status, 200);
    let path = format!("/v2/alice/m/blobs/{}", sha256(&layer));
    let whole = api.get(&path, Some(&alice)).await;
    assert_eq!((whole.status, whole.body.len()), (200, layer.len()));
    let part = crate::v2::go(api.req(M::GET, &path, Some(&alice)).header("Range", "bytes=0-999")).await;
    assert_eq!((part.status, part.body.len()), (206, 1000));
    // Two misses: a manifest that is not there, a path no route serves.
    assert_eq!(api.get("/v2/alice/m/manifests/nope", Some(&alice)).await.status, 404);
    let r = client()
        .get(format!("{}/no/such/route", s.url))
        .send()
        .await
        .expect("miss");
    assert_eq!(r.status(), 404);

    let (text, after) = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| get(&after, name, labels) - get(&before, name, labels);
    let req = "skiff_http_requests_total";
    assert_eq!(
        delta(req, &[("method", "POST"), ("route", UPLOADS), ("status", "201")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        delta(req, &[("method", "PUT"), ("route", MANIFESTS), ("status", "201")]),
        1.0
    );
    assert_eq!(
        delta(req, &[("method", "GET"), ("route", MANIFESTS), ("status", "200")]),
        1.0
    );
    assert_eq!(
        delta(req, &[("method", "GET"), ("route", MANIFESTS), ("status", "404")]),
        1.0
    );
    assert_eq!(
        delta(req, &[("method", "GET"), ("route", BLOBS), ("status", "200")]),
        1.0
    );
    assert_eq!(
        delta(req, &[("method", "GET"), ("route", BLOBS), ("status", "206")]),
        1.0
    );
    assert_eq!(
        delta(req, &[("method", "GET"), ("route", "unmatched"), ("status", "404")]),
        1.0
    );
    assert!(
        !text.contains("alice/m"),
        "labels carry route patterns, never the raw path:\n{text}"
    );

    // Latency: a true histogram, its count and buckets agreeing with the requests.
    let lat = "skiff_http_request_duration_seconds";
    let blob_gets = [("class", "2xx"), ("method", "GET"), ("route", BLOBS)];
    assert_eq!(delta(&format!("{lat}_count"), &blob_gets), 2.0, "{text}");
    let mut inf = blob_gets.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(delta(&format!("{lat}_bucket"), &inf), 2.0);
    let mut slow = blob_gets.to_vec();
    slow.push(("le", "60"));
    assert_eq!(
        delta(&format!("{lat}_bucket"), &slow),
        2.0,
        "every request took under a minute"
    );
    assert!(delta(&format!("{lat}_sum"), &blob_gets) > 0.0);
    let misses = [("class", "4xx"), ("method", "GET"), ("route", MANIFESTS)];
    assert_eq!(delta(&format!("{lat}_count"), &misses), 1.0);

    // Bytes: request bodies as sent, response bodies as served (a range: its length).
    let bytes_in = "skiff_http_request_body_bytes_total";
    assert_eq!(
        delta(bytes_in, &[("route", UPLOADS)]),
        (config.len() + layer.len()) as f64
    );
    assert_eq!(delta(bytes_in, &[("route", MANIFESTS)]), manifest.len() as f64);
    let bytes_out = "skiff_http_response_body_bytes_total";
    assert_eq!(delta(bytes_out, &[("route", BLOBS)]), (layer.len() + 1000) as f64);
    assert!(delta(bytes_out, &[("route", MANIFESTS)]) >= manifest.len() as f64);
    assert_eq!(get(&after, "skiff_uploads_in_flight", &[]), 0.0, "every upload ended");
    // The older, hand-written counters are still there.
    assert!(text.contains("skiff_delegate_cache_hits_total 0"), "{text}");

    // A garbage collection: counted, timed, and the storage gauges measured after it.
    s.make_root();
    let (ok, _, err) = cli(&s.dir, &["gc"], "");
    assert!(ok, "{err}");
    let (_, end) = scrape(&s).await;
    assert_eq!(get(&end, "skiff_gc_runs_total", &[("result", "ok")]), 1.0);
    assert!(get(&end, "skiff_gc_last_duration_seconds", &[]) > 0.0);
    assert_eq!(
        get(&end, "skiff_gc_freed_bytes_total", &[]),
        0.0,
        "everything is referenced"
    );
    let (files, bytes) = blob_bytes_on_disk(&s);
    assert!(bytes >= (config.len() + layer.len()) as u64);
    assert_eq!(get(&end, "skiff_storage_blobs", &[]), files as f64);
    assert_eq!(get(&end, "skiff_storage_blob_bytes", &[]), bytes as f64);
}
