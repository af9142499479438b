use super::*;
use crate::storage::ByteStream;
use futures::StreamExt;
use std::time::Duration;

fn digest_of(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// `data` as a store read would give it, in pieces of 1,000 bytes.
fn pieces(data: &[u8]) -> ByteStream {
    let chunks: Vec<io::Result<Bytes>> = data.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(chunks).boxed()
}

async fn drain(mut stream: ByteStream) -> Vec<u8> {
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        got.extend_from_slice(&piece.expect("piece"));
    }
    got
}

/// The copy of `digest`, once the writer has put it in place (or `None` after 5 s).
async fn settled(cache: &BlobCache, digest: &Digest) -> Option<Vec<u8>> {
    for _ in 0..500 {
        if cache.lock().filling.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut file = cache.file(digest)?;
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut got).expect("read copy");
    Some(got)
}

/// The files in `dir` but the lock.
fn files(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| n != ".lock").collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[actix_web::test]
async fn a_whole_read_leaves_a_copy_that_later_reads_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::open(dir.path(), 1 << 20).expect("open");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let d = digest_of(&data);
    assert!(cache.file(&d).is_none());
    assert_eq!(
        drain(cache.tee(&d, data.len() as u64, pieces(&data))).await,
        data,
        "the client gets every byte"
    );
    assert_eq!(settled(&cache, &d).await.as_deref(), Some(&data[..]));
    assert_eq!(cache.used(), data.len() as u64);
    assert_eq!(
        files(dir.path()),
        vec![format!("sha256-{}", d.hex())],
        "no temp file left"
    );
    assert_eq!(cache.hits(), 1);

    // Not for two processes at once; a second start finds it.
    let err = BlobCache::open(dir.path(), 1 << 20)
        .err()
        .expect("refused while in use");
    assert!(err.to_string().contains("one per process"), "{err}");
    drop(cache);
    let again = BlobCache::open(dir.path(), 1 << 20).expect("reopen");
    assert_eq!(settled(&again, &d).await.as_deref(), Some(&data[..]));
}

#[actix_web::test]
async fn a_read_cut_short_or_failed_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::open(dir.path(), 1 << 20).expect("open");
    let data = vec![7u8; 10_000];
    let d = digest_of(&data);

    // The client goes away after two pieces.
    let mut stream = cache.tee(&d, data.len() as u64, pieces(&data));
    stream.next().await.expect("one").expect("piece");
    stream.next().await.expect("two").expect("piece");
    drop(stream);
    assert_eq!(settled(&cache, &d).await, None);

    // The store's read fails midway.
    let failing = pieces(&data[..3000])
        .chain(futures::stream::once(async { Err(io::Error::other("cut")) }))
        .boxed();
    let mut stream = cache.tee(&d, data.len() as u64, failing);
    while let Some(Ok(_)) = stream.next().await {}
    drop(stream);
    assert_eq!(settled(&cache, &d).await, None);

    // A read that ends early without an error (the store has fewer bytes than said).
    assert_eq!(
        drain(cache.tee(&d, data.len() as u64, pieces(&data[..9000])))
            .await
            .len(),
        9000
    );
    assert_eq!(settled(&cache, &d).await, None);
    assert!(
        files(dir.path()).is_empty(),
        "no copy, no temp file: {:?}",
        names(dir.path())
    );
    assert_eq!(cache.used(), 0);
}

#[actix_web::test]
async fn the_least_recently_used_copies_make_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = BlobCache::open(dir.path(), 25_000).expect("open");
    let blobs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10_000]).collect();
    let digests: Vec<Digest> = blobs.iter().map(|b| digest_of(b)).collect();
    for (blob, d) in blobs.iter().zip(&digests).take(2) {
        drain(cache.tee(d, blob.len() as u64, pieces(blob))).await;
        assert!(settled(&cache, d).await.is_some());
    }
    // Blob 0 is read again: blob 1 is the least recently used when blob 2 needs the room.
    assert!(cache.file(&digests[0]).is_some());
    drain(cache.tee(&digests[2], 10_000, pieces(&blobs[2]))).await;
    assert!(settled(&cache, &digests[2]).await.is_some());
    assert!(cache.file(&digests[1]).is_none(), "least recently used: gone");
    assert!(cache.file(&digests[0]).is_some());
    assert_eq!(cache.used(), 20_000);
    assert_eq!(files(dir.path()).len(), 2, "its file is removed too");

    // Larger than the whole cache: served, not kept.
    let big = vec![9u8; 30_000];
    let d = digest_of(&big);
    assert_eq!(drain(cache.tee(&d, big.len() as u64, pieces(&big))).await.len(), 30_000);
    assert_eq!(settled(&cache, &d).await, None);

    // A smaller limit at the next start drops the oldest copies at once.
    drop(cache);
    let smaller = BlobCache::open(dir.path(), 15_000).expect("reopen");
    assert_eq!(smaller.used(), 10_000);
    assert_eq!(files(dir.path()).len(), 1);
}

#[actix_web::test]
async fn temp_files_of_a_previous_run_are_removed_and_other_files_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tmp-0123456789abcdef"), b"half a blob").expect("write");
    std::fs::write(dir.path().join("README"), b"not ours").expect("write");
    let cache = BlobCache::open(dir.path(), 1 << 20).expect("open");
    assert_eq!(files(dir.path()), vec!["README".to_string()]);
    assert_eq!(cache.used(), 0);
}

/// A tee on a fill whose queue holds 4 KiB, with its receiving end.
fn tee_with_small_queue(data: &[u8]) -> (ByteStream, mpsc::Receiver<Piece>) {
    let (tx, rx) = mpsc::channel();
    let fill = Fill {
        tx,
        room: Arc::new(Semaphore::new(4)),
    };
    let tee = Tee {
        inner: pieces(data),
        fill: Some(fill),
        held: None,
        waited: Duration::ZERO,
    };
    (Box::pin(tee), rx)
}

#[actix_web::test]
async fn a_full_queue_holds_the_client_back_until_the_writer_takes_more() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 249) as u8).collect();
    let (tee, rx) = tee_with_small_queue(&data);
    // A writer that takes a piece every 20 ms: the client can be at most 4 pieces ahead.
    let writer = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Ok(piece) = rx.recv() {
            match piece {
                Piece::Bytes(bytes, room) => {
                    std::thread::sleep(Duration::from_millis(20));
                    got.extend_from_slice(&bytes);
                    drop(room);
                }
                Piece::End => return (got, true),
            }
        }
        (got, false)
    });
    let started = Instant::now();
    assert_eq!(drain(tee).await, data, "the client gets every byte, in order");
    assert!(
        started.elapsed() >= Duration::from_millis(15 * 20),
        "held back: {:?}",
        started.elapsed()
    );
    let (written, ended) = writer.join().expect("writer");
    assert!(ended, "the writer saw the end");
    assert_eq!(written, data, "and every byte");
}

#[actix_web::test]
async fn a_writer_that_stops_taking_pieces_costs_the_client_one_wait_then_the_copy() {
    let data = vec![3u8; 50_000];
    let (tee, rx) = tee_with_small_queue(&data);
    let started = Instant::now();
    assert_eq!(drain(tee).await, data, "the client gets every byte");
    let took = started.elapsed();
    assert!(
        took >= WAIT_MAX && took < WAIT_MAX * 3,
        "one wait of about {WAIT_MAX:?}: {took:?}"
    );
    let queued: Vec<Piece> = rx.try_iter().collect();
    assert_eq!(queued.len(), 4, "the 4 pieces that had room");
    assert!(
        !queued.iter().any(|p| matches!(p, Piece::End)),
        "no end: the copy was given up"
    );
}
