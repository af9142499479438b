//! Garbage collection of the shared blob store: mark every blob something still refers to
//! (see `references`: a v1 image's layer, a blob a stored manifest references, a repository's
//! blob link younger than the grace period), sweep the rest with the stale links to it.
//! Deleting a repository, tag, manifest or blob link only drops references; the bytes go here.
//! It runs beside pushes and pulls: `storage::pins` says how the two stay apart.

use super::references;
use crate::digest::Digest;
use crate::names::RepoName;
use crate::storage::announce::Announcement;
use crate::storage::keys;
use crate::storage::Storage;
use serde::Serialize;
use std::io;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Only count what would go.
    pub dry_run: bool,
    /// Unreferenced blobs written (or written again) more recently than this are kept, and
    /// blob links this young are references: a push between storing a blob and referring to
    /// it from its manifest is never robbed.
    pub grace_secs: u64,
}

/// One blob a run removes (or a dry run would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freed {
    pub digest: Digest,
    pub size: u64,
    /// The repositories whose (stale) links to it go with it; empty when none linked it.
    pub repositories: Vec<String>,
}

/// What a run frees for one repository: the blobs it linked (and no longer references) that
/// go. `repository` is `None` for the blobs no repository linked any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryFreed {
    pub repository: Option<String>,
    pub removed: usize,
    pub removed_bytes: u64,
    pub blobs: Vec<Digest>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub kept: usize,
    /// Of the kept: unreferenced, but younger than the grace period.
    pub kept_recent: usize,
    /// Of the kept: unreferenced when marked, referenced by a push while the run went on.
    pub kept_referenced_meanwhile: usize,
    pub removed: usize,
    pub removed_bytes: u64,
    /// Every blob removed, with its size.
    pub removed_blobs: Vec<Freed>,
    /// The removed blobs by the repositories that linked them, in name order, then the ones no
    /// repository linked (`"repository": null`). A blob linked by two repositories is listed
    /// under both, so the buckets' bytes may add up to more than `removed_bytes`.
    pub by_repository: Vec<RepositoryFreed>,
    /// Stale blob links removed with their blobs (real runs only).
    pub links_removed: usize,
    /// Stored manifests that do not parse (`repo@digest`): every digest written in them was
    /// kept, since what they reference cannot be known exactly.
    pub unparsable: Vec<String>,
}

impl Report {
    /// The bucket of one repository (an empty one when the run frees nothing of it).
    pub fn for_repository(&self, repo: &str) -> RepositoryFreed {
        self.by_repository
            .iter()
            .find(|b| b.repository.as_deref() == Some(repo))
            .cloned()
            .unwrap_or(RepositoryFreed {
                repository: Some(repo.to_string()),
                removed: 0,
                removed_bytes: 0,
                blobs: Vec::new(),
            })
    }

    fn bucket(&mut self, freed: &Freed) {
        let names: Vec<Option<String>> = match freed.repositories.is_empty() {
            true => vec![None],
            false => freed.repositories.iter().cloned().map(Some).collect(),
        };
        for name in names {
            let at = match self.by_repository.iter().position(|b| b.repository == name) {
                Some(at) => at,
                None => {
                    self.by_repository.push(RepositoryFreed {
                        repository: name,
                        removed: 0,
                        removed_bytes: 0,
                        blobs: Vec::new(),
                    });
                    self.by_repository.len() - 1
                }
            };
            let b = &mut self.by_repository[at];
            b.removed += 1;
            b.removed_bytes += freed.size;
            b.blobs.push(freed.digest.clone());
        }
    }
}

/// Where a run is, for progress bars.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("a garbage collection is already running")]
    Busy,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Marks what is referenced, then sweeps the rest, beside live pushes (see `storage::pins`).
pub async fn collect(storage: &Storage, opts: Options, mut progress: impl FnMut(Progress)) -> Result<Report, GcError> {
    let run = storage.pins().begin().ok_or(GcError::Busy)?;
    // Other processes on the store learn of the run before it marks (see `storage::announce`).
    let shared = storage.pins().announce().await?.ok_or(GcError::Busy)?;
    // References being written as the run began finish before the marking walks: each is
    // then either seen by the walk or recorded as touched.
    drop(run.exclusive().await);
    let report = sweep(storage, opts, &run, shared.as_ref(), &mut progress).await;
    if let Some(shared) = shared {
        shared.end().await?;
    }
    report
}

async fn sweep(
    storage: &Storage,
    opts: Options,
    run: &crate::storage::pins::Collection,
    shared: Option<&Announcement>,
    progress: &mut impl FnMut(Progress),
) -> Result<Report, GcError> {
    let started = crate::clock::now_secs();
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    progress(Progress {
        phase: "marking",
        ..Progress::default()
    });
    let scan = references::scan(storage, opts.grace_secs, started).await?;
    report.unparsable = scan.unparsable.clone();
    let marked = scan.marked();
    let mut stale = scan.stale_links();
    drop(scan);
    let blobs = storage.walk(keys::BLOBS).await?;
    let total = blobs.len() as u64;
    for (n, key) in blobs.iter().enumerate() {
        progress(Progress {
            phase: "sweeping",
            done: n as u64,
            total,
        });
        let Some(digest) = keys::parse_blob(key) else {
            continue;
        };
        if marked.contains(&digest) {
            report.kept += 1;
            continue;
        }
        // Decided and deleted with no new reference being written meanwhile.
        let _exclusive = run.exclusive().await;
        if run.touched(&digest) || touched_elsewhere(shared, &digest).await? {
            report.kept += 1;
            report.kept_referenced_meanwhile += 1;
            continue;
        }
        let Some(stat) = storage.stat(key).await? else {
            continue;
        };
        if stat
            .modified
            .is_none_or(|m| m.saturating_add(opts.grace_secs) > started)
        {
            report.kept += 1;
            report.kept_recent += 1;
            continue;
        }
        let linked_by: Vec<RepoName> = stale.remove(&digest).unwrap_or_default();
        if !opts.dry_run {
            match remove(storage, shared, &digest, &linked_by).await? {
                Removed::Gone { links } => report.links_removed += links,
                Removed::PutBack => {
                    report.kept += 1;
                    report.kept_referenced_meanwhile += 1;
                    continue;
                }
            }
            log::info!("gc: removed {digest} ({} bytes)", stat.size);
        }
        let freed = Freed {
            digest: digest.clone(),
            size: stat.size,
            repositories: linked_by.iter().map(|r| r.to_string()).collect(),
        };
        report.removed += 1;
        report.removed_bytes += stat.size;
        report.bucket(&freed);
        report.removed_blobs.push(freed);
    }
    report
        .by_repository
        .sort_by(|a, b| (a.repository.is_none(), &a.repository).cmp(&(b.repository.is_none(), &b.repository)));
    progress(Progress {
        phase: "done",
        done: total,
        total,
    });
    Ok(report)
}

async fn touched_elsewhere(shared: Option<&Announcement>, digest: &Digest) -> io::Result<bool> {
    match shared {
        Some(a) => a.touched(digest).await,
        None => Ok(false),
    }
}

enum Removed {
    Gone {
        links: usize,
    },
    /// Another process referred to the blob while it was being removed.
    PutBack,
}

/// Removes an unreferenced blob and its stale links. Under the exclusive moment, a push in
/// this process linking the blob again waits, then finds it gone, and never has its fresh link
/// removed here. A push in another process is seen through its touch (see
/// `storage::announce`): the blob is moved aside first, and put back with its links if a
/// touch appeared meanwhile.
async fn remove(
    storage: &Storage,
    shared: Option<&Announcement>,
    digest: &Digest,
    linked_by: &[RepoName],
) -> io::Result<Removed> {
    let key = keys::blob(digest);
    let held = shared.map(|a| keys::gc_held(&a.run, digest));
    match &held {
        Some(held) => storage.commit(&key, held).await?,
        None => {
            storage.delete(&key).await?;
        }
    }
    let mut links = Vec::new();
    for repo in linked_by {
        let link = keys::blob_link(repo, digest);
        if let Some(content) = storage.get(&link).await? {
            storage.delete(&link).await?;
            links.push((link, content));
        }
    }
    if let (Some(held), true) = (&held, touched_elsewhere(shared, digest).await?) {
        storage.commit(held, &key).await?;
        for (link, content) in links {
            storage.put(&link, content).await?;
        }
        log::info!("gc: kept {digest}: another process referred to it while it was being removed");
        return Ok(Removed::PutBack);
    }
    Ok(Removed::Gone { links: links.len() })
}

/// Every well-formed digest written anywhere in `text`.
pub(crate) fn digests_in(text: &[u8]) -> Vec<Digest> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for (prefix, len) in [("sha256:", 64), ("sha512:", 128)] {
        for (at, _) in text.match_indices(prefix) {
            let hex = &text[at + prefix.len()..];
            let end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
            if end == len {
                if let Ok(d) = format!("{prefix}{}", &hex[..len]).parse() {
                    out.push(d);
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::names::{ImageCopy, ImageId, Owner, RepoName, TagName};
    use crate::registry::v1::images::LayerLink;
    use crate::registry::v2::manifest;
    use crate::registry::v2::repositories::{Reference, V2Repositories};
    use bytes::Bytes;

    async fn put_blob(storage: &Storage, data: &'static [u8]) -> Digest {
        let digest = Digest::sha256_of(data);
        let mut blob = storage.begin_blob(vec![]).await.expect("begin");
        blob.sink.send(Bytes::from_static(data)).await.expect("send");
        blob.finish()
            .await
            .expect("finish")
            .commit(storage, &digest)
            .await
            .expect("commit");
        digest
    }

    /// Two processes on one store (registry nodes on one bucket): a blob the other process
    /// refers to while a collection runs is kept, though this process never saw the reference;
    /// the other process cannot start a second run meanwhile, and once the run ends it can.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reference_written_by_another_process_during_a_run_keeps_its_blob() {
        let dir = tempfile::tempdir().expect("temp dir");
        let here = Storage::open_fs(dir.path()).await.expect("open");
        let there = Storage::existing_fs(dir.path()).await.expect("second process");
        two_processes_share_runs(&here, &there).await;
    }

    /// Garbage collection with two registry nodes on one S3 bucket (Garage in CI): the same
    /// checks on two S3 clients.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gc_runs_are_shared_by_two_nodes_on_one_bucket() {
        use crate::storage::s3::{tests::test_config, S3Driver};
        let Some(config) = test_config() else { return };
        let node = || async {
            let driver = S3Driver::new(&config).expect("client");
            Storage::open(std::sync::Arc::new(driver)).await.expect("open")
        };
        let (here, there) = (node().await, node().await);
        two_processes_share_runs(&here, &there).await;
        here.delete_all(keys::BLOBS).await.expect("clean");
    }

    /// The body of the two tests above, for any driver.
    pub(crate) async fn two_processes_share_runs(here: &Storage, there: &Storage) {
        let wanted = put_blob(here, b"referred to by the other process").await;
        let unwanted = put_blob(here, b"referred to by nobody").await;
        let opts = Options {
            dry_run: false,
            grace_secs: 0,
        };
        let run = tokio::spawn({
            let here = here.clone();
            async move { collect(&here, opts, |_| {}).await }
        });
        for _ in 0..50 {
            if there.pins().announced().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            there.pins().announced().is_some(),
            "the other process learns of the run"
        );
        drop(there.pins().reference(&wanted).await);
        assert!(
            matches!(collect(there, opts, |_| {}).await, Err(GcError::Busy)),
            "one run at a time across processes"
        );
        let report = run.await.expect("join").expect("gc");
        assert_eq!((report.kept_referenced_meanwhile, report.removed), (1, 1), "{report:?}");
        assert!(here.blob_size(&wanted).await.expect("stat").is_some());
        assert!(here.blob_size(&unwanted).await.expect("stat").is_none());
        assert!(
            here.walk(keys::GC).await.expect("walk").is_empty(),
            "the run left nothing"
        );
        let again = collect(there, opts, |_| {})
            .await
            .expect("a run from the other process");
        assert_eq!(again.removed, 1, "nothing refers to the kept blob any more");
    }

    /// Blobs referenced by a v2 link, by a stored manifest (config) or by the layer of any copy
    /// of a v1 image are kept; the rest goes, and a dry run only counts it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_what_is_referenced_and_sweeps_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let repos = V2Repositories::new(storage.clone());
        let repo = RepoName::parse("alice/data").expect("name");
        let (config, layer, orphan) = (
            put_blob(&storage, b"{}").await,
            put_blob(&storage, b"layer").await,
            put_blob(&storage, b"orphan").await,
        );
        // Two owners' copies of one v1 image id, each with its own layer.
        let v1_layer = put_blob(&storage, b"v1 layer").await;
        let other_copy_layer = put_blob(&storage, b"another owner's v1 layer").await;
        repos.link_blob(&repo, &layer).await.expect("link");
        // The config is linked for the push, then unlinked: only the manifest refers to it.
        repos.link_blob(&repo, &config).await.expect("link");
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": []
        })
        .to_string();
        let tag = TagName::parse("v1").expect("tag");
        repos
            .push_manifest(
                &repo,
                &Reference::Tag(tag.clone()),
                Bytes::from(manifest),
                manifest::OCI_MANIFEST,
                &[tag],
            )
            .await
            .expect("push");
        repos.unlink_blob(&repo, &config).await.expect("unlink");
        let id = ImageId::parse(&"b".repeat(64)).expect("id");
        for (owner, digest) in [("alice", &v1_layer), ("bobby", &other_copy_layer)] {
            let link = serde_json::to_vec(&LayerLink {
                digest: digest.clone(),
                size: 8,
            })
            .expect("json");
            let copy = ImageCopy::new(&id, &Owner::new(owner));
            storage
                .put(&keys::image(&copy, "layer"), link.into())
                .await
                .expect("put");
        }

        // A link no manifest backs is a reference only within the grace period.
        let grace = |dry_run| Options {
            dry_run,
            grace_secs: 3600,
        };
        let young = collect(&storage, grace(true), |_| {}).await.expect("dry run");
        assert_eq!((young.kept, young.removed), (5, 0), "{young:?}");
        let opts = |dry_run| Options { dry_run, grace_secs: 0 };
        let dry = collect(&storage, opts(true), |_| {}).await.expect("dry run");
        assert_eq!((dry.kept, dry.removed, dry.removed_bytes), (3, 2, 11));
        assert_eq!(
            dry.by_repository,
            vec![
                RepositoryFreed {
                    repository: Some("alice/data".into()),
                    removed: 1,
                    removed_bytes: 5,
                    blobs: vec![layer.clone()]
                },
                RepositoryFreed {
                    repository: None,
                    removed: 1,
                    removed_bytes: 6,
                    blobs: vec![orphan.clone()]
                },
            ]
        );
        assert_eq!(
            storage.blob_size(&orphan).await.expect("stat"),
            Some(6),
            "dry run removes nothing"
        );
        let done = collect(&storage, opts(false), |_| {}).await.expect("gc");
        assert_eq!(done.links_removed, 1);
        assert_eq!(
            Report {
                dry_run: true,
                links_removed: 0,
                ..done
            },
            dry
        );
        for gone in [&orphan, &layer] {
            assert_eq!(storage.blob_size(gone).await.expect("stat"), None);
        }
        assert!(
            !storage.exists(&keys::blob_link(&repo, &layer)).await.expect("stat"),
            "the stale link goes with its blob"
        );
        for kept in [&config, &v1_layer, &other_copy_layer] {
            assert!(storage.blob_size(kept).await.expect("stat").is_some(), "{kept} kept");
        }
        assert_eq!(collect(&storage, opts(false), |_| {}).await.expect("again").removed, 0);

        // A stored manifest that no longer parses: the blobs it names are kept, and reported.
        let other = put_blob(&storage, b"named by a broken manifest").await;
        let broken = format!("{{\"schemaVersion\": 2, \"layers\": [{{\"digest\": \"{other}\"}}");
        let broken_digest = Digest::sha256_of(broken.as_bytes());
        repos
            .put_manifest(&repo, &broken_digest, manifest::OCI_MANIFEST, Bytes::from(broken))
            .await
            .expect("store");
        let report = collect(&storage, opts(false), |_| {}).await.expect("gc");
        assert_eq!(report.unparsable, vec![format!("alice/data@{broken_digest}")]);
        assert_eq!(report.removed, 0);
        assert!(storage.blob_size(&other).await.expect("stat").is_some(), "kept");
    }

    /// An unreferenced blob younger than the grace period is kept (a push may be about to
    /// link it), and goes once older; a second run cannot start beside a first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_grace_period_keeps_young_blobs_and_runs_do_not_overlap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let young = put_blob(&storage, b"just uploaded").await;
        let report = collect(
            &storage,
            Options {
                dry_run: false,
                grace_secs: 3600,
            },
            |_| {},
        )
        .await
        .expect("gc");
        assert_eq!((report.kept_recent, report.removed), (1, 0));
        assert!(storage.blob_size(&young).await.expect("stat").is_some());
        let _running = storage.pins().begin().expect("begin");
        assert!(matches!(
            collect(
                &storage,
                Options {
                    dry_run: true,
                    grace_secs: 0
                },
                |_| {}
            )
            .await,
            Err(GcError::Busy)
        ));
    }

    /// The interleavings a live push can produce, forced at the worst moment (once the blobs
    /// are marked, before the sweep decides): a blob linked by a push, or stored again by one,
    /// while the run goes on, is kept though it was unreferenced and old when marked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn references_written_during_the_sweep_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let repos = V2Repositories::new(storage.clone());
        let repo = RepoName::parse("alice/racing").expect("name");
        let linked = put_blob(&storage, b"linked by a push during the sweep").await;
        let stored_again = put_blob(&storage, b"stored again during the sweep").await;
        let garbage = put_blob(&storage, b"really garbage").await;
        for d in [&linked, &stored_again, &garbage] {
            crate::storage::local::backdate(&dir.path().join(keys::blob(d)), 7200).expect("age");
        }
        let mut pushed = false;
        let report = collect(
            &storage,
            Options {
                dry_run: false,
                grace_secs: 3600,
            },
            |p| {
                if p.phase == "sweeping" && !pushed {
                    pushed = true;
                    futures::executor::block_on(async {
                        repos.link_blob(&repo, &linked).await.expect("link");
                        let mut blob = storage.begin_blob(vec![]).await.expect("begin");
                        blob.sink
                            .send(Bytes::from_static(b"stored again during the sweep"))
                            .await
                            .expect("send");
                        let written = blob.finish().await.expect("finish");
                        written.commit(&storage, &stored_again).await.expect("commit");
                    });
                }
            },
        )
        .await
        .expect("gc");
        assert!(pushed);
        assert_eq!(
            report.removed_blobs.iter().map(|f| &f.digest).collect::<Vec<_>>(),
            vec![&garbage]
        );
        for kept in [&linked, &stored_again] {
            assert!(storage.blob_size(kept).await.expect("stat").is_some(), "{kept} kept");
        }
        assert!(
            repos.blob(&repo, &linked).await.expect("link").is_some(),
            "the push's link serves"
        );
    }

    /// The stale-link interleavings, forced at the worst moment: a blob whose only link is
    /// stale when marked is kept when, during the sweep, a client is told it exists through
    /// that link (the link is renewed) or a manifest naming it lands; a stale link nobody
    /// touched goes with its blob.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_links_renewed_or_named_during_the_sweep_keep_their_blobs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open_fs(dir.path()).await.expect("open");
        let repos = V2Repositories::new(storage.clone()).with_grace(3600);
        let repo = RepoName::parse("alice/stale").expect("name");
        let asked = put_blob(&storage, b"asked about during the sweep").await;
        let named = put_blob(&storage, b"named by a manifest during the sweep").await;
        let config = put_blob(&storage, b"{}").await;
        let forgotten = put_blob(&storage, b"nobody asks").await;
        for d in [&asked, &named, &config, &forgotten] {
            repos.link_blob(&repo, d).await.expect("link");
            crate::storage::local::backdate(&dir.path().join(keys::blob(d)), 7200).expect("age");
            crate::storage::local::backdate(&dir.path().join(keys::blob_link(&repo, d)), 7200).expect("age");
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": named, "size": 1}]
        })
        .to_string();
        let opts = |dry_run| Options {
            dry_run,
            grace_secs: 3600,
        };
        let preview = collect(&storage, opts(true), |_| {}).await.expect("preview");
        assert_eq!(preview.removed, 4, "every link is stale: {preview:?}");
        let mut raced = false;
        let report = collect(&storage, opts(false), |p| {
            if p.phase == "sweeping" && !raced {
                raced = true;
                futures::executor::block_on(async {
                    assert!(repos.blob_for_client(&repo, &asked).await.expect("head").is_some());
                    let tag = TagName::parse("v1").expect("tag");
                    repos
                        .push_manifest(
                            &repo,
                            &Reference::Tag(tag.clone()),
                            Bytes::from(manifest.clone()),
                            manifest::OCI_MANIFEST,
                            &[tag],
                        )
                        .await
                        .expect("push");
                });
            }
        })
        .await
        .expect("gc");
        assert!(raced);
        assert_eq!(
            report.removed_blobs.iter().map(|f| &f.digest).collect::<Vec<_>>(),
            vec![&forgotten]
        );
        assert_eq!((report.kept_referenced_meanwhile, report.links_removed), (3, 1));
        for kept in [&asked, &named, &config] {
            assert!(repos.blob(&repo, kept).await.expect("link").is_some(), "{kept} served");
        }
        assert!(repos.blob(&repo, &forgotten).await.expect("link").is_none());
        // The next run sees the manifest and the renewed link.
        let again = collect(&storage, opts(false), |_| {}).await.expect("gc");
        assert_eq!(again.removed, 0, "{again:?}");
    }
}
