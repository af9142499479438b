//! The driver test-suite: what every [`Driver`](super::Driver) must do, checked against an empty
//! store. The fs driver runs it in this crate's unit tests; a new driver calls [`run`] on a
//! fresh store of its own (a temp bucket, say) and must pass unchanged.

use super::{keys, Storage};
use crate::digest::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use futures::StreamExt;

/// Runs every check; panics with the failing one's name.
pub async fn run(storage: &Storage) {
    small_objects(storage).await;
    listing_and_walking(storage).await;
    blobs_stream_hash_and_commit(storage).await;
    writers(storage).await;
    ranged_reads(storage).await;
    bad_keys(storage).await;
    layout_marker(storage).await;
}

async fn read_all(storage: &Storage, key: &str, offset: u64, len: u64) -> Vec<u8> {
    let mut stream = storage.read(key, offset, len).await.expect("read");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

async fn small_objects(s: &Storage) {
    assert_eq!(s.get("suite/a").await.expect("get"), None, "absent object");
    assert!(s.stat("suite/a").await.expect("stat").is_none());
    s.put("suite/a", Bytes::from_static(b"one")).await.expect("put");
    assert_eq!(s.get("suite/a").await.expect("get").as_deref(), Some(&b"one"[..]));
    s.put("suite/a", Bytes::from_static(b"two!")).await.expect("overwrite");
    let stat = s.stat("suite/a").await.expect("stat").expect("present");
    assert_eq!((stat.size, stat.is_prefix), (4, false), "stat of an object");
    assert!(s.stat("suite").await.expect("stat").expect("prefix").is_prefix);
    s.put("suite/empty", Bytes::new()).await.expect("empty object");
    assert_eq!(s.get("suite/empty").await.expect("get").as_deref(), Some(&b""[..]));
    let many = s
        .get_many(vec!["suite/a".into(), "suite/none".into(), "suite/empty".into()])
        .await
        .expect("get_many");
    assert_eq!(many, vec![Some(Bytes::from_static(b"two!")), None, Some(Bytes::new())]);
    assert!(s.delete("suite/a").await.expect("delete"));
    assert!(
        !s.delete("suite/a").await.expect("delete again"),
        "second delete finds nothing"
    );
    assert!(s.delete_all("suite").await.expect("delete_all"));
    assert!(!s.delete_all("suite").await.expect("delete_all again"));
    assert!(s.stat("suite/empty").await.expect("stat").is_none());
}

async fn listing_and_walking(s: &Storage) {
    for k in ["tree/b/x", "tree/a", "tree/b/y/z", "tree2/other"] {
        s.put(k, Bytes::from_static(b".")).await.expect("put");
    }
    assert_eq!(s.list("tree").await.expect("list"), vec!["a", "b"]);
    assert_eq!(s.list("tree/b").await.expect("list"), vec!["x", "y"]);
    assert!(s.list("nothing/here").await.expect("list").is_empty());
    let (some, complete) = s.list_some("tree", 1).await.expect("list_some");
    assert_eq!((some.len(), complete), (1, false), "one of two, and more to come");
    let (mut all, complete) = s.list_some("tree", 2).await.expect("list_some");
    all.sort();
    assert_eq!((all, complete), (vec!["a".to_string(), "b".to_string()], true));
    assert_eq!(s.list_some("nothing", 5).await.expect("list_some"), (Vec::new(), true));
    assert_eq!(
        s.walk("tree").await.expect("walk"),
        vec!["tree/a", "tree/b/x", "tree/b/y/z"],
        "walk lists objects at any depth, not the sibling prefix tree2"
    );
    assert!(s.walk("nothing").await.expect("walk").is_empty());
    // Deleting one prefix leaves a sibling whose name it is a prefix of.
    assert!(s.delete_all("tree").await.expect("delete_all"));
    assert_eq!(s.walk("tree2").await.expect("walk"), vec!["tree2/other"]);
    s.delete_all("tree2").await.expect("clean");
}

async fn blobs_stream_hash_and_commit(s: &Storage) {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&data);
    let mut blob = s
        .begin_blob(vec![
            Hasher::new(Algorithm::Sha256),
            Hasher::with_prefix(Algorithm::Sha256, b"p"),
        ])
        .await
        .expect("begin");
    for chunk in data.chunks(70_000) {
        blob.sink.send(Bytes::copy_from_slice(chunk)).await.expect("send");
    }
    let mut written = blob.finish().await.expect("finish");
    assert_eq!(written.written, data.len() as u64);
    let sums: Vec<Digest> = std::mem::take(&mut written.hashers)
        .into_iter()
        .map(Hasher::finish)
        .collect();
    let mut prefixed = b"p".to_vec();
    prefixed.extend_from_slice(&data);
    assert_eq!(sums, vec![digest.clone(), Digest::sha256_of(&prefixed)]);
    assert_eq!(
        s.blob_size(&digest).await.expect("size"),
        None,
        "invisible before commit"
    );
    written.commit(s, &digest).await.expect("commit");
    assert_eq!(s.blob_size(&digest).await.expect("size"), Some(data.len() as u64));
    assert_eq!(read_all(s, &keys::blob(&digest), 0, data.len() as u64).await, data);

    // Committing the same content again keeps one copy and drops the new temp object.
    let mut again = s.begin_blob(vec![]).await.expect("begin");
    again.sink.send(Bytes::from(data.clone())).await.expect("send");
    again
        .finish()
        .await
        .expect("finish")
        .commit(s, &digest)
        .await
        .expect("commit twice");
    assert_eq!(s.blob_size(&digest).await.expect("size"), Some(data.len() as u64));
    assert!(
        s.walk(keys::TMP).await.expect("walk tmp").is_empty(),
        "no temp object left"
    );

    // A discarded write and an abandoned one leave nothing behind.
    let mut bad = s.begin_blob(vec![]).await.expect("begin");
    bad.sink.send(Bytes::from_static(b"wrong")).await.expect("send");
    bad.finish().await.expect("finish").discard(s).await.expect("discard");
    let mut dropped = s.begin_blob(vec![]).await.expect("begin");
    dropped.sink.send(Bytes::from_static(b"gone")).await.expect("send");
    dropped.sink.abort().await.expect("abort");
    assert!(
        s.walk(keys::TMP).await.expect("walk tmp").is_empty(),
        "no temp object left"
    );
    assert!(s.delete(&keys::blob(&digest)).await.expect("delete blob"));
}

/// Writers on any key (an upload's parts are written where they stay, not in the temp area):
/// each write makes a fresh object, replacing what the key held, hashed as it goes; an empty
/// one is an empty object; an aborted one leaves nothing; a written object commits as a blob.
async fn writers(s: &Storage) {
    let key = "writers/part";
    s.put(key, Bytes::from_static(b"older and longer")).await.expect("seed");
    for part in [&b"abc"[..], b"", b"defgh"] {
        let mut sink = s
            .writer(key, vec![Hasher::new(Algorithm::Sha256)])
            .await
            .expect("writer");
        sink.send(Bytes::copy_from_slice(part)).await.expect("send");
        let out = sink.finish().await.expect("finish");
        assert_eq!(out.written, part.len() as u64, "a write counts its own bytes");
        let sums: Vec<Digest> = out.hashers.into_iter().map(Hasher::finish).collect();
        assert_eq!(sums, vec![Digest::sha256_of(part)]);
        assert_eq!(
            s.get(key).await.expect("get").as_deref(),
            Some(part),
            "a write replaces the object, it never appends"
        );
    }
    // An aborted write leaves nothing, flushed bytes included.
    let mut sink = s.writer("writers/aborted", vec![]).await.expect("writer");
    sink.send(Bytes::from(vec![9u8; 2_000_000])).await.expect("send");
    sink.flush().await.expect("flush");
    sink.abort().await.expect("abort");
    assert!(
        s.stat("writers/aborted").await.expect("stat").is_none(),
        "aborted write left"
    );
    let digest = Digest::sha256_of(b"defgh");
    s.commit_blob(key, &digest).await.expect("commit a written object");
    assert!(s.stat(key).await.expect("stat").is_none(), "moved away");
    assert_eq!(s.blob_size(&digest).await.expect("size"), Some(5));
    s.delete_all("writers").await.expect("clean");
    s.delete(&keys::blob(&digest)).await.expect("clean");
}

async fn ranged_reads(s: &Storage) {
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    s.put("ranges/obj", Bytes::from(data.clone())).await.expect("put");
    assert_eq!(read_all(s, "ranges/obj", 0, 10).await, data[..10]);
    assert_eq!(
        read_all(s, "ranges/obj", 1_048_570, 20).await,
        data[1_048_570..1_048_590]
    );
    assert_eq!(read_all(s, "ranges/obj", 5, data.len() as u64 - 5).await, data[5..]);
    assert_eq!(read_all(s, "ranges/obj", 0, 0).await, b"");
    assert!(
        s.read("ranges/missing", 0, 1).await.is_err(),
        "reading an absent object fails"
    );
    s.delete_all("ranges").await.expect("clean");
}

async fn bad_keys(s: &Storage) {
    for key in ["", "/abs", "a/../b", "a//b", "./a", "a/."] {
        assert!(s.get(key).await.is_err(), "key {key:?} must be refused");
        assert!(s.put(key, Bytes::new()).await.is_err(), "key {key:?} must be refused");
    }
}

async fn layout_marker(s: &Storage) {
    let raw = s
        .get(keys::LAYOUT)
        .await
        .expect("get")
        .expect("opened storage records its layout");
    let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(v["version"], super::layout::CURRENT);
}

#[cfg(test)]
mod tests {
    use super::super::layout::LayoutError;
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fs_driver_passes_the_suite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        run(&storage).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_layout_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        storage
            .put(keys::LAYOUT, Bytes::from_static(br#"{"version": 99}"#))
            .await
            .expect("put");
        let err = Storage::open_fs(dir.path()).await.err().expect("refused");
        assert!(matches!(err, LayoutError::TooNew { found: 99, .. }), "{err:?}");
        assert!(err.to_string().contains("layout version 99"), "{err}");
        storage
            .put(keys::LAYOUT, Bytes::from_static(b"junk"))
            .await
            .expect("put");
        let err = Storage::open_fs(dir.path()).await.err().expect("refused");
        assert!(matches!(err, LayoutError::Unreadable { .. }), "{err:?}");
    }
}
