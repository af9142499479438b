use super::*;

fn body(parts: &[&'static [u8]]) -> futures::stream::Iter<std::vec::IntoIter<Result<Bytes, io::Error>>> {
    let items: Vec<Result<Bytes, io::Error>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
    futures::stream::iter(items)
}

/// A complete v1 image (alice's copy) pushed through the domain API, as the HTTP handlers do.
async fn push(images: &Images, copy: &ImageCopy, parent: Option<&ImageCopy>, layer: &'static [u8]) -> LayerLink {
    let id = &copy.id;
    let json = match parent {
        Some(p) => format!("{{\"id\":\"{id}\",\"parent\":\"{}\"}}", p.id),
        None => format!("{{\"id\":\"{id}\"}}"),
    };
    let alice = Owner::new("alice");
    images
        .put_json(copy, Bytes::from(json.clone()), parent, &alice)
        .await
        .expect("json");
    let link = images.put_layer(copy, &alice, body(&[layer])).await.expect("layer");
    let payload = Digest::sha256_of(&[json.as_bytes(), b"\n", layer].concat());
    images
        .put_checksum(copy, &alice, Some(&payload.to_string()), None)
        .await
        .expect("checksum");
    link
}

async fn check(storage: &Storage) -> Report {
    let opts = Options {
        repair: false,
        live: false,
    };
    run(storage, &opts, &mut |_| {}).await.expect("check")
}

/// Alice's copy of image `cccc...`.
fn id(c: char) -> ImageCopy {
    let id = ImageId::parse(&c.to_string().repeat(64)).expect("id");
    ImageCopy::new(&id, &Owner::new("alice"))
}

/// v1 consistency: a clean chain has no problems; then an ancestry that skips the parent, a
/// layer link whose size is wrong, a payload checksum that does not match json + layer, and
/// a json whose parent does not exist are each reported, once, on the right key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_parent_ancestry_size_and_payload_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open_fs(dir.path()).await.expect("open");
    let images = Images::new(storage.clone());
    let (base, child, other) = (id('a'), id('b'), id('c'));
    push(&images, &base, None, b"base layer").await;
    push(&images, &child, Some(&base), b"child layer").await;
    let link = push(&images, &other, None, b"other layer").await;
    let clean = check(&storage).await;
    assert_eq!(clean.problems, vec![], "a clean chain");
    assert_eq!((clean.counts.v1_images, clean.counts.blobs), (3, 3));

    storage
        .put(
            &keys::image(&child, "ancestry"),
            Bytes::from(format!("[\"{}\"]", child.id)),
        )
        .await
        .expect("put");
    let wrong = LayerLink {
        digest: link.digest.clone(),
        size: link.size + 1,
    };
    storage
        .put(
            &keys::image(&other, "layer"),
            serde_json::to_vec(&wrong).expect("json").into(),
        )
        .await
        .expect("put");
    storage
        .put(
            &keys::image(&base, "_checksum"),
            Bytes::from(Digest::sha256_of(b"something else").to_string()),
        )
        .await
        .expect("put");
    let orphan = id('d');
    storage
        .put(
            &keys::image(&orphan, "json"),
            Bytes::from(format!("{{\"id\":\"{}\",\"parent\":\"{}\"}}", orphan.id, id('e').id)),
        )
        .await
        .expect("put");

    let report = check(&storage).await;
    let found: Vec<(Kind, String)> = report.problems.iter().map(|p| (p.kind, p.key.clone())).collect();
    assert!(
        report.problems.iter().all(|p| p.kind == Kind::V1Image),
        "{:#?}",
        report.problems
    );
    for (key, what) in [
        (keys::image(&child, "ancestry"), "parent's ancestry"),
        (keys::image(&other, "layer"), "records 12 bytes"),
        (keys::image(&base, "_checksum"), "payload checksum"),
        (keys::image(&orphan, "json"), "does not exist"),
        (keys::image(&orphan, "ancestry"), "without ancestry"),
        (keys::image(&orphan, "layer"), "without a layer"),
    ] {
        assert!(
            report.problems.iter().any(|p| p.key == key && p.what.contains(what)),
            "{key}: {what} in {found:#?}"
        );
    }
    assert_eq!(report.problems.len(), 6, "{:#?}", report.problems);
    assert!(report.quarantined.is_empty(), "no repair asked");
}

/// `repair` moves a corrupt blob to the quarantine with a note; the bytes are kept and the
/// blob store no longer has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_quarantines_and_keeps_the_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open_fs(dir.path()).await.expect("open");
    let good = Digest::sha256_of(b"good");
    storage
        .put(&keys::blob(&good), Bytes::from_static(b"good"))
        .await
        .expect("put");
    let claimed = Digest::sha256_of(b"claimed");
    storage
        .put(&keys::blob(&claimed), Bytes::from_static(b"tampered"))
        .await
        .expect("put");
    let opts = Options {
        repair: true,
        live: false,
    };
    let report = run(&storage, &opts, &mut |_| {}).await.expect("check");
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    assert_eq!(report.problems[0].kind, Kind::Blob);
    assert_eq!(report.quarantined.len(), 1);
    let q = &report.quarantined[0];
    assert_eq!(
        (q.digest.clone(), q.from.clone()),
        (claimed.clone(), keys::blob(&claimed))
    );
    assert_eq!(
        storage.blob_size(&claimed).await.expect("stat"),
        None,
        "out of the store"
    );
    assert_eq!(
        storage.get(&q.to).await.expect("get").as_deref(),
        Some(&b"tampered"[..])
    );
    let note = storage.get(&format!("{}.why", q.to)).await.expect("get").expect("note");
    assert!(String::from_utf8_lossy(&note).contains(&claimed.to_string()));
    assert_eq!(
        storage.blob_size(&good).await.expect("stat"),
        Some(4),
        "good blob stays"
    );
    assert_eq!(check(&storage).await.problems, vec![], "clean after the repair");
}

/// Copies: two owners' copies of one id check clean side by side; a lineage that does not start
/// with its own owner, a membership naming a copy that is not stored and a tag whose image its
/// repository does not hold are each reported on their key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_copies_lineages_and_memberships_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open_fs(dir.path()).await.expect("open");
    let images = Images::new(storage.clone());
    let base = id('a');
    push(&images, &base, None, b"alice's layer").await;
    // Bobby's copy of the same id, on nothing.
    let bobby = Owner::new("bobby");
    let theirs = ImageCopy::new(&base.id, &bobby);
    let json = format!("{{\"id\":\"{}\",\"author\":\"bobby\"}}", base.id);
    images
        .put_json(&theirs, Bytes::from(json.clone()), None, &bobby)
        .await
        .expect("json");
    images
        .put_layer(&theirs, &bobby, body(&[b"bobby's layer"]))
        .await
        .expect("layer");
    let payload = Digest::sha256_of(&[json.as_bytes(), b"\n", b"bobby's layer"].concat());
    images
        .put_checksum(&theirs, &bobby, Some(&payload.to_string()), None)
        .await
        .expect("checksum");
    let repos = crate::registry::v1::repositories::V1Repositories::new(images.clone());
    let (app, other) = (
        RepoName::parse("alice/app").expect("name"),
        RepoName::parse("bobby/app").expect("name"),
    );
    let latest = TagName::parse("latest").expect("tag");
    repos.put(&app, &latest, &base, "").await.expect("tag");
    repos.put(&other, &latest, &theirs, "").await.expect("tag");
    let clean = check(&storage).await;
    assert_eq!(clean.problems, vec![], "two copies of one id");
    assert_eq!((clean.counts.v1_images, clean.counts.v1_members), (2, 2));

    storage
        .put(&keys::image(&theirs, "_lineage"), Bytes::from_static(b"[\"@alice\"]"))
        .await
        .expect("put");
    storage
        .put(&keys::v1_member(&app, &base.id), Bytes::from_static(b"@carol"))
        .await
        .expect("put");
    let stray = RepoName::parse("bobby/stray").expect("name");
    storage
        .put(&keys::v1_tag(&stray, &latest), Bytes::from(base.id.to_string()))
        .await
        .expect("put");
    let report = check(&storage).await;
    for (key, what) in [
        (keys::image(&theirs, "_lineage"), "not with the copy's own owner"),
        (keys::v1_member(&app, &base.id), "which does not exist"),
        (keys::v1_tag(&app, &latest), "which does not exist"),
        (keys::v1_tag(&stray, &latest), "is not a member of the repository"),
    ] {
        assert!(
            report.problems.iter().any(|p| p.key == key && p.what.contains(what)),
            "{key}: {what} in {:#?}",
            report.problems
        );
    }
    assert_eq!(report.problems.len(), 4, "{:#?}", report.problems);
}
