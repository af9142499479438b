//! Namespace quotas (`[quotas]` in registry.toml): a push that would take a namespace over its
//! quota is refused. What counts is the namespace's usage as the usage report shows it: the
//! distinct bytes of the blobs its repositories reference (`registry::references`), shared
//! blobs included.
//!
//! Pushes must not pay for a walk of the store: the referenced blobs of every namespace with a
//! quota are kept in memory, filled by one scan when first needed, extended as pushes link
//! blobs, and dropped (to be filled again by the next push that needs them) when references go:
//! a repository or manifest deleted, a garbage collection run. Blob links that have gone stale
//! count until that refill.

use crate::digest::Digest;
use crate::error::{AppError, AppResult};
use crate::registry::{references, usage};
use crate::state::AppState;
use std::collections::HashMap;

#[derive(Default)]
pub struct Quotas {
    /// Per namespace with a quota: its referenced blobs and their total size.
    cache: tokio::sync::Mutex<Option<HashMap<String, Charged>>>,
}

#[derive(Default)]
struct Charged {
    blobs: HashMap<Digest, u64>,
    bytes: u64,
}

fn over(ns: &str, limit: u64, used: u64, more: u64) -> AppError {
    use crate::config::human_size;
    AppError::forbidden(format!(
        "Quota exceeded: namespace {ns} may store {} ({limit} bytes) and uses {} ({used} bytes); this push needs {} more",
        human_size(limit),
        human_size(used),
        human_size(more)
    ))
}

impl Quotas {
    /// Drops what is known, after references went away.
    pub async fn forget(&self) {
        self.cache.lock().await.take();
    }

    /// Refuses to start an upload into a namespace already at its quota.
    pub async fn check_room(&self, state: &AppState, ns: &str) -> AppResult<()> {
        let Some(limit) = state.config.quotas.limit(ns) else {
            return Ok(());
        };
        let mut cache = self.cache.lock().await;
        let used = filled(state, &mut cache).await?.get(ns).map_or(0, |c| c.bytes);
        if used >= limit {
            return Err(over(ns, limit, used, 1));
        }
        Ok(())
    }

    /// Charges blob `digest` of `size` bytes to `repo`'s namespace before it is referenced
    /// there, or refuses when that would take the namespace over its quota. Checked and
    /// charged at once, so two pushes racing cannot both slip under the limit.
    pub async fn admit(&self, state: &AppState, ns: &str, digest: &Digest, size: u64) -> AppResult<()> {
        let Some(limit) = state.config.quotas.limit(ns) else {
            return Ok(());
        };
        let mut cache = self.cache.lock().await;
        let charged = filled(state, &mut cache).await?.entry(ns.to_string()).or_default();
        if charged.blobs.contains_key(digest) {
            return Ok(());
        }
        if charged.bytes.saturating_add(size) > limit {
            log::info!(
                "quota: refused {digest} ({size} bytes) in namespace {ns}: {} of {limit} used",
                charged.bytes
            );
            return Err(over(ns, limit, charged.bytes, size));
        }
        charged.blobs.insert(digest.clone(), size);
        charged.bytes += size;
        Ok(())
    }
}

/// The cache, filled by one scan of the references when empty.
async fn filled<'a>(
    state: &AppState,
    cache: &'a mut Option<HashMap<String, Charged>>,
) -> AppResult<&'a mut HashMap<String, Charged>> {
    if cache.is_none() {
        let now = crate::clock::now_secs();
        let scan = references::scan(&state.storage, state.config.gc.grace_secs, now).await?;
        let sizes = usage::blob_sizes(&state.storage).await?;
        let mut out: HashMap<String, Charged> = HashMap::new();
        for (repo, refs) in &scan.repos {
            let ns = repo.namespace();
            if state.config.quotas.limit(ns).is_none() {
                continue;
            }
            let charged = out.entry(ns.to_string()).or_default();
            for d in &refs.referenced {
                if let Some(&size) = sizes.get(d) {
                    if charged.blobs.insert(d.clone(), size).is_none() {
                        charged.bytes += size;
                    }
                }
            }
        }
        *cache = Some(out);
    }
    Ok(cache.get_or_insert_with(HashMap::new))
}
