//! Garbage collection of the shared blob store: mark every blob something still refers to
//! (a v1 image's layer, a v2 repository's blob link, a blob a stored manifest references),
//! sweep the rest. Deleting a repository, tag, manifest or blob link only drops references;
//! the bytes go here. It runs beside pushes and pulls: `storage::pins` says how the two stay
//! apart.

use super::v1::images::LayerLink;
use super::v2::manifest;
use crate::digest::Digest;
use crate::storage::keys::{self, RepositoryEntry};
use crate::storage::Storage;
use serde::Serialize;
use std::collections::HashSet;
use std::io;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Only count what would go.
    pub dry_run: bool,
    /// Unreferenced blobs written (or written again) more recently than this are kept: a push
    /// between storing a blob and referring to it is never robbed.
    pub grace_secs: u64,
}

/// One blob a run removes (or a dry run would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freed {
    pub digest: Digest,
    pub size: u64,
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
    /// Stored manifests that do not parse (`repo@digest`): every digest written in them was
    /// kept, since what they reference cannot be known exactly.
    pub unparsable: Vec<String>,
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
    let started = crate::clock::now_secs();
    let mut report = Report {
        dry_run: opts.dry_run,
        ..Report::default()
    };
    progress(Progress {
        phase: "marking",
        ..Progress::default()
    });
    let marked = mark(storage, &mut report).await?;
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
        if run.touched(&digest) {
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
        report.removed += 1;
        report.removed_bytes += stat.size;
        report.removed_blobs.push(Freed {
            digest: digest.clone(),
            size: stat.size,
        });
        if !opts.dry_run {
            storage.delete(key).await?;
            log::info!("gc: removed {digest} ({} bytes)", stat.size);
        }
    }
    progress(Progress {
        phase: "done",
        done: total,
        total,
    });
    Ok(report)
}

async fn mark(storage: &Storage, report: &mut Report) -> io::Result<HashSet<Digest>> {
    let mut marked = HashSet::new();
    // v1 image layers: of every owner's copy.
    for key in storage.walk(keys::IMAGES).await? {
        if keys::parse_image_layer(&key).is_none() {
            continue;
        }
        if let Some(raw) = storage.get(&key).await? {
            if let Ok(link) = serde_json::from_slice::<LayerLink>(&raw) {
                marked.insert(link.digest);
            }
        }
    }
    // v2: every repository's blob links and what its manifests reference.
    for key in storage.walk(keys::REPOSITORIES).await? {
        match keys::parse_repository_key(&key) {
            Some((_, RepositoryEntry::BlobLink(d))) => {
                marked.insert(d);
            }
            Some((repo, RepositoryEntry::RevisionData(d))) => {
                let found = storage
                    .get_many(vec![keys::revision_data(&repo, &d), keys::revision_type(&repo, &d)])
                    .await?;
                let (Some(Some(body)), Some(Some(media_type))) = (found.first(), found.get(1)) else {
                    log::debug!("gc: {repo}: revision {d} incomplete, skipped");
                    continue;
                };
                match manifest::parse(body, &String::from_utf8_lossy(media_type)) {
                    Ok(parsed) => marked.extend(parsed.blobs),
                    Err(e) => {
                        log::warn!("gc: {repo}@{d} does not parse ({e}): keeping every blob it names");
                        marked.extend(digests_in(body));
                        report.unparsable.push(format!("{repo}@{d}"));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(marked)
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
mod tests {
    use super::*;
    use crate::names::{ImageCopy, ImageId, Owner, RepoName, TagName};
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

        let opts = |dry_run| Options { dry_run, grace_secs: 0 };
        let dry = collect(&storage, opts(true), |_| {}).await.expect("dry run");
        assert_eq!((dry.kept, dry.removed, dry.removed_bytes), (4, 1, 6));
        assert_eq!(
            storage.blob_size(&orphan).await.expect("stat"),
            Some(6),
            "dry run removes nothing"
        );
        let done = collect(&storage, opts(false), |_| {}).await.expect("gc");
        assert_eq!(Report { dry_run: true, ..done }, dry);
        assert_eq!(storage.blob_size(&orphan).await.expect("stat"), None);
        for kept in [&config, &layer, &v1_layer, &other_copy_layer] {
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
}
