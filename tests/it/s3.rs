//! The v1 and v2 flows on the S3 driver (Garage in CI, started by `scripts/test` through
//! `scripts/garage`), each under a prefix of its own in one bucket: the same tests the fs runs
//! take, with `[storage] driver = "s3"`. Without `S3_ENDPOINT` they say so and pass, unless
//! `SKIFF_REQUIRE_S3=1` (set by `scripts/test`), when they fail.

use crate::common::*;
use crate::v1_flows;
use crate::v2::{pull, push, uploads};
use std::time::Duration;

/// The `[storage]` TOML of a fresh prefix on the test bucket, or `None` without a server.
pub fn s3_storage(extra_s3: &str) -> Option<String> {
    let endpoint = std::env::var("S3_ENDPOINT").unwrap_or_default();
    if endpoint.is_empty() {
        assert!(
            std::env::var("SKIFF_REQUIRE_S3").as_deref() != Ok("1"),
            "SKIFF_REQUIRE_S3=1 but S3_ENDPOINT is not set (start one with scripts/garage)"
        );
        eprintln!("S3_ENDPOINT not set: S3 test skipped (scripts/garage starts one)");
        return None;
    }
    let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    Some(format!(
        "[storage]\ndriver = \"s3\"\n[storage.s3]\nendpoint = {endpoint:?}\nregion = {:?}\nbucket = {:?}\nprefix = \"it-{:016x}\"\n{extra_s3}",
        var("S3_REGION", "garage"),
        var("S3_BUCKET", "skiff-test"),
        rand_u64(),
    ))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

macro_rules! on_s3 {
    ($($name:ident => $flow:path;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(storage) = s3_storage("") else { return };
            $flow(&storage).await;
        }
    )*};
}

on_s3! {
    v1_docker_13_push_then_pull => v1_flows::docker_13_push_then_pull_by_other_user_and_anonymously_with;
    v1_repush_and_interrupted_upload => v1_flows::repush_is_skipped_and_interrupted_upload_retries_from_put_json_with;
    v1_wrong_checksum_never_served => v1_flows::wrong_checksum_is_refused_and_the_image_never_served_with;
    v2_monolithic_pushes_and_digest_errors => push::monolithic_pushes_and_digest_errors_with;
    v2_cross_repository_mounts => push::cross_repository_mounts_with;
    v2_sha512_blobs_and_manifests => push::sha512_blobs_and_manifests_with;
    v2_chunked_upload_in_order_416_and_resume => uploads::chunked_upload_in_order_416_status_and_resume_with;
    v2_sessions_unknown_cancelled_and_bound => uploads::sessions_unknown_cancelled_and_bound_to_their_repository_with;
    v2_uploads_resume_across_a_restart => uploads::uploads_resume_across_a_restart_with;
    v2_blobs_get_head_range_and_unknown => pull::blobs_get_head_range_and_unknown_with;
    v2_manifests_of_every_media_type => pull::manifests_of_every_media_type_by_tag_and_digest_with;
    v2_pipelined_blob_downloads => pull::pipelined_blob_downloads_arrive_whole_and_in_order_with;
}

/// `[storage.s3] redirect = true`: a blob GET is a 307 to a presigned URL of the store, which
/// serves the bytes (and ranges) itself; HEAD is still answered by Skiff; a wrong signature is
/// refused by the store; an unknown blob is never redirected.
#[tokio::test]
async fn blob_gets_redirect_to_presigned_urls() {
    let Some(storage) = s3_storage("redirect = true\nredirect_secs = 120\n") else {
        return;
    };
    let s = Server::start(&storage);
    s.register("alice", "secret1").await;
    let auth = basic("alice", "secret1");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = crate::v2::sha256(&data);
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    push_blob(&c, &s, &auth, &data, &digest).await;
    let blob_url = format!("{}/v2/alice/app/blobs/{digest}", s.url);
    let r = c
        .head(&blob_url)
        .header("Authorization", &auth)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status(), 200, "HEAD is answered here");
    assert_eq!(r.headers()["content-length"], data.len().to_string().as_str());
    let r = c
        .get(&blob_url)
        .header("Authorization", &auth)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    let location = r.headers()["location"].to_str().expect("ascii").to_string();
    assert!(
        location.starts_with(&std::env::var("S3_ENDPOINT").expect("endpoint")),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature="), "{location}");
    // The store serves it, whole and by range, to a client with no credentials of its own.
    let whole = c.get(&location).send().await.expect("follow");
    assert_eq!(whole.status(), 200);
    assert!(whole.bytes().await.expect("body") == data);
    let part = c
        .get(&location)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.expect("body") == data[1000..2000]);
    let forged = location.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(c.get(&forged).send().await.expect("forged").status(), 403);
    // A blob the repository does not have is 404 here, not a URL to ask the store.
    let missing = format!("{}/v2/alice/app/blobs/{}", s.url, crate::v2::sha256(b"absent"));
    let r = c
        .get(&missing)
        .header("Authorization", &auth)
        .send()
        .await
        .expect("missing");
    assert_eq!(r.status(), 404);
}

/// Every TOML block of the README's "Scaling out on S3" section is a valid registry.toml
/// (`skiff config check`; no store is contacted).
#[test]
fn readme_scale_out_examples_validate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let blocks = readme_examples_validate(tmp.path(), "Scaling out on S3");
    assert_eq!(blocks, 3, "the storage settings, the index, the registry nodes");
    // And a bad one does not.
    std::fs::write(tmp.path().join("registry.toml"), "[storage]\ndriver = \"s3\"\n").expect("write");
    let (ok, _, err) = cli(tmp.path(), &["config", "check"], "");
    assert!(!ok && err.contains("storage.s3.bucket"), "{err}");
}

/// The node's blob cache (`[storage.s3] cache_mib`, on by default): the first whole read of a
/// blob from the store leaves a copy, whole and range reads after it are served from the copy
/// (counted in `/metrics`), and the copy is only served while the store says the repository
/// has the blob. With `cache_mib = 0` nothing is kept.
#[tokio::test]
async fn blob_reads_are_served_from_the_node_cache_while_the_store_has_them() {
    let Some(storage) = s3_storage("") else { return };
    let s = Server::start(&storage);
    s.register("alice", "secret1").await;
    let auth = basic("alice", "secret1");
    let data = crate::v2::random_bytes(3_000_000);
    let digest = crate::v2::sha256(&data);
    let c = client();
    push_blob(&c, &s, &auth, &data, &digest).await;
    let blob_url = format!("{}/v2/alice/app/blobs/{digest}", s.url);
    let copy = s.dir.join("data/s3-cache").join(digest.replace(':', "-"));
    assert!(!copy.exists(), "a push leaves no copy");
    let get = |range: Option<&str>| {
        let mut rb = c.get(&blob_url).header("Authorization", &auth);
        if let Some(range) = range {
            rb = rb.header("Range", range);
        }
        rb.send()
    };
    let first = get(None).await.expect("first get");
    assert_eq!(first.status(), 200);
    assert!(first.bytes().await.expect("body") == data);
    // The copy is counted once it is in place.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache_metric(&s, "skiff_blob_cache_bytes").await != data.len() as u64 {
        assert!(std::time::Instant::now() < deadline, "the first read leaves a copy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read(&copy).expect("copy"), data);
    assert_eq!(cache_metric(&s, "skiff_blob_cache_hits_total").await, 0);

    let again = get(None).await.expect("second get");
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["docker-content-digest"], digest.as_str());
    assert!(again.bytes().await.expect("body") == data);
    let part = get(Some("bytes=1000-1999")).await.expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/3000000");
    assert!(part.bytes().await.expect("body") == data[1000..2000]);
    assert_eq!(
        cache_metric(&s, "skiff_blob_cache_hits_total").await,
        2,
        "both from the copy"
    );

    // The repository lets go of the blob: the copy is not served to it any more.
    let r = c
        .delete(&blob_url)
        .header("Authorization", &auth)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 202);
    assert_eq!(get(None).await.expect("get after delete").status(), 404);
    assert_eq!(cache_metric(&s, "skiff_blob_cache_hits_total").await, 2);
    drop(s);

    // No cache: reads go to the store and leave nothing.
    let Some(storage) = s3_storage("cache_mib = 0\n") else {
        return;
    };
    let s = Server::start(&storage);
    s.register("alice", "secret1").await;
    push_blob(&c, &s, &auth, &data, &digest).await;
    for _ in 0..2 {
        let r = c
            .get(format!("{}/v2/alice/app/blobs/{digest}", s.url))
            .header("Authorization", &auth)
            .send()
            .await
            .expect("get");
        assert!(r.bytes().await.expect("body") == data);
    }
    assert!(!s.dir.join("data/s3-cache").exists());
    let text = c
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("skiff_blob_cache"), "no cache, no cache metrics");
}

/// A monolithic v2 push of `data` to `alice/app` (POST with `?digest=`).
async fn push_blob(c: &reqwest::Client, s: &Server, auth: &str, data: &[u8], digest: &str) {
    let r = c
        .post(format!("{}/v2/alice/app/blobs/uploads/?digest={digest}", s.url))
        .header("Authorization", auth)
        .body(data.to_vec())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 201);
}

/// The value of an unlabelled metric in `/metrics`.
async fn cache_metric(s: &Server, name: &str) -> u64 {
    let text = client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}
