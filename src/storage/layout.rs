//! The layout version: `_layout` holds `{"version": N}`, the version of `keys` the data was
//! written with. Opening storage written by a newer Skiff is refused with a clear message
//! rather than misread; older layouts are brought forward by the steps in [`MIGRATIONS`].

use super::{keys, Storage};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

mod image_copies;

/// The layout `keys` describes.
pub const CURRENT: u32 = 3;

/// `(from, step)`: a step upgrades storage of layout `from` to `from + 1`, idempotently (a
/// crash mid-way reruns it: the version is recorded only once the step is done).
type Step = fn(&Storage) -> futures::future::BoxFuture<'_, std::io::Result<()>>;
const MIGRATIONS: &[(u32, Step)] = &[
    (1, |s| Box::pin(flat_repository_keys(s))),
    (2, |s| Box::pin(image_copies::image_copies(s))),
];

#[derive(Debug, Serialize, Deserialize)]
struct Layout {
    version: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("storage at {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("storage at {location} has layout version {found}, but this Skiff knows layouts up to {CURRENT}: run a newer Skiff (or restore a backup of the data it wrote)")]
    TooNew { location: String, found: u32 },
    #[error("storage at {location}: unreadable layout marker {key:?} ({why}); it should hold {{\"version\": N}}")]
    Unreadable {
        location: String,
        key: &'static str,
        why: String,
    },
    #[error("storage at {location} has layout version {found}, and this Skiff has no migration from it")]
    NoMigration { location: String, found: u32 },
}

/// Reads the layout version, records it on a store that has none (every store Skiff wrote
/// before the marker existed is layout 1), and migrates an older one.
pub async fn check(storage: &Storage) -> Result<(), LayoutError> {
    let location = storage.location();
    let io = |e| LayoutError::Io(location.clone(), e);
    let mut found = match storage.get(keys::LAYOUT).await.map_err(io)? {
        // Skiff wrote layout 1 before it wrote this marker: a store with data and no marker is
        // layout 1; an empty one starts at the current layout.
        None if has_data(storage).await.map_err(io)? => 1,
        None => {
            write(storage, CURRENT).await.map_err(io)?;
            return Ok(());
        }
        Some(raw) => {
            serde_json::from_slice::<Layout>(&raw)
                .map_err(|e| LayoutError::Unreadable {
                    location: location.clone(),
                    key: keys::LAYOUT,
                    why: e.to_string(),
                })?
                .version
        }
    };
    if found > CURRENT {
        return Err(LayoutError::TooNew { location, found });
    }
    while found < CURRENT {
        let step = MIGRATIONS
            .iter()
            .find(|(from, _)| *from == found)
            .ok_or_else(|| LayoutError::NoMigration {
                location: location.clone(),
                found,
            })?;
        log::info!("storage: migrating layout {found} -> {}", found + 1);
        (step.1)(storage).await.map_err(io)?;
        found += 1;
        write(storage, found).await.map_err(io)?;
    }
    Ok(())
}

async fn write(storage: &Storage, version: u32) -> std::io::Result<()> {
    let body = serde_json::to_vec(&Layout { version }).map_err(std::io::Error::other)?;
    storage.put(keys::LAYOUT, Bytes::from(body)).await
}

async fn has_data(storage: &Storage) -> std::io::Result<bool> {
    for prefix in [keys::REPOSITORIES, keys::IMAGES, keys::UPLOADS] {
        if !storage.list(prefix).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Layout 1 -> 2: repository data moves from `repositories/<name>/...` (nested, so
/// `alice/app`'s directory held `alice/app/sub`'s) to `repositories/<flat name>/...`. Objects
/// are copied, then the old ones removed; an old key whose new form is itself (already moved)
/// is left alone, so a rerun after a crash finishes the job.
async fn flat_repository_keys(storage: &Storage) -> std::io::Result<()> {
    let mut moved = 0usize;
    for old in storage.walk(keys::REPOSITORIES).await? {
        let Some(new) = layout1_to_flat(&old) else {
            log::warn!("storage migration: {old} belongs to no repository; left as it is");
            continue;
        };
        if new == old {
            continue;
        }
        if let Some(bytes) = storage.get(&old).await? {
            storage.put(&new, bytes).await?;
        }
        storage.delete(&old).await?;
        moved += 1;
    }
    // What is left of the old tree: namespace directories with no objects in them.
    for top in storage.list(keys::REPOSITORIES).await? {
        let prefix = format!("{}/{top}", keys::REPOSITORIES);
        if !top.contains('+') && storage.walk(&prefix).await?.is_empty() {
            storage.delete_all(&prefix).await?;
        }
    }
    log::info!("storage migration: {moved} repository objects moved to flat names");
    Ok(())
}

/// `repositories/alice/app/_tags/x` -> `repositories/alice+app/_tags/x`: in layout 1 a
/// repository's name ends where the first `_`-prefixed component starts.
fn layout1_to_flat(old: &str) -> Option<String> {
    let rest = old.strip_prefix(keys::REPOSITORIES)?.strip_prefix('/')?;
    let cut = rest.find("/_")?;
    let (name, leaf) = (&rest[..cut], &rest[cut + 1..]);
    Some(format!("{}/{}/{leaf}", keys::REPOSITORIES, name.replace('/', "+")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::names::{RepoName, TagName};
    use crate::storage::Driver;

    /// A store as Skiff wrote it before the marker (layout 1, nested names) is migrated at open:
    /// every object of `alice/app` and `alice/app/sub` is found under its flat name, and a
    /// second open finds nothing more to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn layout_1_is_migrated_to_flat_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = std::sync::Arc::new(super::super::fs::FsDriver::open(dir.path()).expect("fs"));
        let d = Digest::sha256_of(b"x");
        let old = [
            ("repositories/alice/app/_manifests/tags/v1".to_string(), d.to_string()),
            (
                format!("repositories/alice/app/_layers/sha256/{}", d.hex()),
                String::new(),
            ),
            (
                "repositories/alice/app/sub/_manifests/tags/v2".to_string(),
                d.to_string(),
            ),
            ("repositories/alice/app/sub/_tags/latest".to_string(), "c".repeat(64)),
        ];
        for (k, v) in &old {
            raw.put(k, Bytes::from(v.clone())).await.expect("seed");
        }
        let storage = Storage::open(raw.clone()).await.expect("open migrates");
        let (app, sub) = (
            RepoName::parse("alice/app").unwrap(),
            RepoName::parse("alice/app/sub").unwrap(),
        );
        let tag = |t: &str| TagName::parse(t).unwrap();
        assert_eq!(
            storage.get(&keys::v2_tag(&app, &tag("v1"))).await.unwrap().as_deref(),
            Some(d.to_string().as_bytes())
        );
        assert!(storage.exists(&keys::blob_link(&app, &d)).await.unwrap());
        assert!(storage.exists(&keys::v2_tag(&sub, &tag("v2"))).await.unwrap());
        assert!(storage.exists(&keys::v1_tag(&sub, &tag("latest"))).await.unwrap());
        assert_eq!(
            storage.list(keys::REPOSITORIES).await.unwrap(),
            vec!["alice+app", "alice+app+sub"],
            "nothing of the old tree is left"
        );
        let v: serde_json::Value = serde_json::from_slice(&storage.get(keys::LAYOUT).await.unwrap().unwrap()).unwrap();
        assert_eq!(v["version"], CURRENT);
        Storage::open(raw).await.expect("reopen");
        assert_eq!(storage.walk(keys::REPOSITORIES).await.unwrap().len(), old.len());
    }
}
