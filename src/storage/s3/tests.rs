//! The driver test-suite on a real S3 server (Garage in CI, started by `scripts/garage`):
//! `S3_ENDPOINT`, `S3_REGION`, `S3_BUCKET`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` name
//! it. Without them the tests say so and pass, unless `SKIFF_REQUIRE_S3=1` (`scripts/test`
//! sets it), when they fail.

use super::*;
use crate::storage::{testsuite, Storage};

/// Settings for a fresh prefix of the test bucket, or `None` when no server is configured.
pub fn test_config() -> Option<S3Config> {
    let endpoint = std::env::var("S3_ENDPOINT").unwrap_or_default();
    if endpoint.is_empty() {
        assert!(
            std::env::var("SKIFF_REQUIRE_S3").as_deref() != Ok("1"),
            "SKIFF_REQUIRE_S3=1 but S3_ENDPOINT is not set (start one with scripts/garage)"
        );
        eprintln!("S3_ENDPOINT not set: S3 driver test skipped (scripts/garage starts one)");
        return None;
    }
    Some(S3Config {
        endpoint,
        region: std::env::var("S3_REGION").unwrap_or_else(|_| "garage".into()),
        bucket: std::env::var("S3_BUCKET").unwrap_or_else(|_| "skiff-test".into()),
        prefix: format!("unit-{}", hex::encode(rand::random::<[u8; 6]>())),
        part_size_mib: 5,
        ..S3Config::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_driver_passes_the_suite() {
    let Some(config) = test_config() else { return };
    let storage = Storage::open(Arc::new(S3Driver::new(&config).expect("client")))
        .await
        .expect("open");
    testsuite::run(&storage).await;
}

/// Objects larger than a part go up as a multipart upload and come back whole, from any
/// offset; an aborted one leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_go_in_parts_and_read_back_in_ranges() {
    let Some(config) = test_config() else { return };
    let driver = S3Driver::new(&config).expect("client");
    let storage = Storage::open(Arc::new(driver.clone())).await.expect("open");
    let data: Vec<u8> = (0..23_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut sink = storage
        .writer("big/obj", vec![Hasher::new(crate::digest::Algorithm::Sha256)])
        .await
        .expect("writer");
    for chunk in data.chunks(1 << 16) {
        sink.send(Bytes::copy_from_slice(chunk)).await.expect("send");
    }
    let out = sink.finish().await.expect("finish");
    assert_eq!(out.written, data.len() as u64);
    let sum = out.hashers.into_iter().next().expect("hasher").finish();
    assert_eq!(sum, crate::digest::Digest::sha256_of(&data));
    assert_eq!(
        storage.stat("big/obj").await.expect("stat").map(|s| s.size),
        Some(data.len() as u64)
    );
    for (from, len) in [(0u64, 23_000_000u64), (5_242_879, 2), (22_999_999, 1), (7, 11_000_000)] {
        let mut stream = storage.read("big/obj", from, len).await.expect("read");
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert!(got == data[from as usize..(from + len) as usize], "range {from}+{len}");
    }
    let mut aborted = storage.writer("big/aborted", vec![]).await.expect("writer");
    aborted.send(Bytes::from(vec![1u8; 12 << 20])).await.expect("send");
    aborted.abort().await.expect("abort");
    assert!(storage.stat("big/aborted").await.expect("stat").is_none());
    let url = driver
        .presigned_get("big/obj", Duration::from_secs(60))
        .await
        .expect("presign");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    storage.delete_all("big").await.expect("clean");
}

/// Listing pages past S3's 1,000 keys a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_past_a_thousand_keys() {
    let Some(config) = test_config() else { return };
    let storage = Storage::open(Arc::new(S3Driver::new(&config).expect("client")))
        .await
        .expect("open");
    let puts = (0..1105).map(|i| {
        let storage = storage.clone();
        async move { storage.put(&format!("many/k{i:05}"), Bytes::from_static(b".")).await }
    });
    futures::stream::iter(puts)
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<io::Result<Vec<()>>>()
        .expect("puts");
    let listed = storage.list("many").await.expect("list");
    assert_eq!(listed.len(), 1105);
    assert_eq!(listed[1104], "k01104");
    assert_eq!(storage.walk("many").await.expect("walk").len(), 1105);
    assert!(storage.delete_all("many").await.expect("delete_all"));
    assert!(storage.walk("many").await.expect("walk").is_empty());
}
