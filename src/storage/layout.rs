//! The layout version: `_layout` holds `{"version": N}`, the version of `keys` the data was
//! written with. Opening storage written by a newer Skiff is refused with a clear message
//! rather than misread; older layouts are brought forward by the steps in [`MIGRATIONS`].

use super::{keys, Storage};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The layout `keys` describes.
pub const CURRENT: u32 = 1;

/// `(from, step)`: a step upgrades storage of layout `from` to `from + 1`, idempotently (a
/// crash mid-way reruns it). None yet: layout 1 is the first.
type Step = fn(&Storage) -> futures::future::BoxFuture<'_, std::io::Result<()>>;
const MIGRATIONS: &[(u32, Step)] = &[];

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
