//! Garbage collection beside live pushes. A collection marks every blob something refers to,
//! then sweeps the rest; a push that links a blob between the two would lose it. Three rules
//! keep them apart, in this process:
//! - Every new reference to a blob (a v2 blob link, a mount, a v1 layer) is written under a
//!   shared lock and recorded as *touched* while a collection runs; the sweep deletes each blob
//!   under the exclusive lock and never one that was touched. So a reference is either seen by
//!   the sweep or written after the blob was checked to exist.
//! - A blob written (or written again, as a duplicate) is younger than the grace period, which
//!   the sweep never deletes: a push between storing a blob and linking it keeps it.
//! - A collection waits, once it has begun recording, for the references being written to
//!   finish before it marks: each is then either seen by the marking walk or recorded.
//! - A blob link references its blob without a manifest only while younger than the grace
//!   period (`registry::references`); a client told the blob exists through an old link has
//!   the link renewed under a pin (`V2Repositories::blob_for_client`), and a manifest is
//!   checked and written under a pin on every blob it names.
//! - One collection at a time.
//!
//! Other processes sharing the store (registry nodes on one bucket) are kept apart through the
//! store itself: see `announce`.

use super::announce::{self, Announcement, Known};
use super::Driver;
use crate::digest::Digest;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedMutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Default)]
pub struct Pins {
    references: RwLock<()>,
    touched: Mutex<Option<HashSet<Digest>>>,
    collecting: Arc<tokio::sync::Mutex<()>>,
    /// The store other processes may share, and the run announced in it.
    shared: Option<(Arc<dyn Driver>, Arc<Known>)>,
}

/// Held while one new reference to a blob is written.
pub type ReferenceGuard<'a> = RwLockReadGuard<'a, ()>;

impl Pins {
    /// Pins that also follow collections announced in `driver` by other processes.
    pub fn shared(driver: Arc<dyn Driver>) -> Pins {
        let known = Arc::new(Known::default());
        announce::watch(driver.clone(), Arc::downgrade(&known));
        Pins {
            shared: Some((driver, known)),
            ..Pins::default()
        }
    }

    /// The collection announced in the shared store, as this process last read it.
    pub fn announced(&self) -> Option<String> {
        self.shared.as_ref().and_then(|(_, known)| known.get())
    }

    /// Announces a collection to the other processes (see `announce`); `Ok(None)` when another
    /// process's collection runs. Without a shared store, a run of its own that nobody sees.
    pub async fn announce(&self) -> std::io::Result<Option<Option<Announcement>>> {
        match &self.shared {
            None => Ok(Some(None)),
            Some((driver, known)) => Ok(Announcement::begin(driver.clone(), known.clone()).await?.map(Some)),
        }
    }
    /// Call before writing a reference to `digest`, and hold the guard until it is written.
    pub async fn reference(&self, digest: &Digest) -> ReferenceGuard<'_> {
        self.reference_all(std::slice::from_ref(digest)).await
    }

    /// [`Pins::reference`] for several blobs at once (a manifest's), under one guard.
    pub async fn reference_all(&self, digests: &[Digest]) -> ReferenceGuard<'_> {
        if let Some((driver, known)) = &self.shared {
            announce::touch(driver.as_ref(), known, digests).await;
        }
        let guard = self.references.read().await;
        if let Ok(mut touched) = self.touched.lock() {
            if let Some(set) = touched.as_mut() {
                set.extend(digests.iter().cloned());
            }
        }
        guard
    }

    /// Starts a collection, or `None` while another runs.
    pub fn begin(self: &Arc<Self>) -> Option<Collection> {
        let turn = self.collecting.clone().try_lock_owned().ok()?;
        if let Ok(mut touched) = self.touched.lock() {
            *touched = Some(HashSet::new());
        }
        Some(Collection {
            pins: self.clone(),
            _turn: turn,
        })
    }
}

/// A running collection; references are recorded until it is dropped.
pub struct Collection {
    pins: Arc<Pins>,
    _turn: OwnedMutexGuard<()>,
}

impl Collection {
    /// Waits until no reference is being written, and keeps new ones waiting while held: the
    /// moment to decide about (and delete) one blob.
    pub async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.pins.references.write().await
    }

    /// Whether a reference to `digest` was written since the collection began.
    pub fn touched(&self, digest: &Digest) -> bool {
        self.pins
            .touched
            .lock()
            .map(|t| t.as_ref().is_some_and(|set| set.contains(digest)))
            .unwrap_or(true)
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        if let Ok(mut touched) = self.pins.touched.lock() {
            *touched = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn references_are_recorded_only_while_a_collection_runs() {
        let pins = Arc::new(Pins::default());
        let (a, b, c) = (
            Digest::sha256_of(b"a"),
            Digest::sha256_of(b"b"),
            Digest::sha256_of(b"c"),
        );
        drop(pins.reference(&a).await);
        let run = pins.begin().expect("first");
        assert!(pins.begin().is_none(), "one at a time");
        drop(pins.reference(&b).await);
        assert!(run.touched(&b) && !run.touched(&a) && !run.touched(&c));
        {
            let _exclusive = run.exclusive().await;
            // A reference waits for the exclusive moment to end.
            let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), pins.reference(&c)).await;
            assert!(waiting.is_err(), "a reference waits while the sweep decides");
        }
        drop(pins.reference(&c).await);
        assert!(run.touched(&c));
        drop(run);
        let again = pins.begin().expect("the next one");
        assert!(!again.touched(&b), "each run starts afresh");
    }
}
