//! Garbage collection beside pushes on *other processes* sharing the store (registry nodes on
//! one bucket, or several processes on one directory), through the store alone: no S3 server
//! is trusted with conditional writes, so there is no lock, only writes, reads and time.
//!
//! - A collection announces itself in `_gc/active` (a run id and a heartbeat, renewed every
//!   [`HEARTBEAT`]) and waits [`NOTICE`] before marking. Every process reads the announcement
//!   every [`POLL`], so when marking begins each of them knows, and a reference it was writing
//!   unannounced has been written (and is seen by the marking walk).
//! - While a run is announced, a process writes `_gc/touched/<run>/<digest>` for each blob
//!   before it refers to it (`Pins::reference_all`), then checks the blob and writes the
//!   reference.
//! - The sweep skips a touched blob. Otherwise it moves the blob aside to
//!   `_gc/held/<run>/<digest>`, removes its stale links, and looks for a touch once more: a
//!   process that touched the blob in between may have found it still there, so it is put
//!   back, links and all. A process that touches it later finds it gone and is told so (the
//!   client uploads it again).
//! - Two runs that announce themselves at once both read the announcement again after the
//!   notice: the last writer's run goes on, the other gives up (busy).
//! - An announcement whose heartbeat is older than [`STALE`] (a collector that died) is
//!   ignored, and the next run removes what it left.

use super::driver::Driver;
use super::keys;
use crate::digest::Digest;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often every process reads the announcement.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a collection waits between announcing itself and marking: two polls and slack.
pub const NOTICE: Duration = Duration::from_secs(3);
/// How often a running collection renews its announcement.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// An announcement not renewed for this long is a collector that died.
pub const STALE: u64 = 60;

#[derive(Serialize, Deserialize)]
struct Active {
    run: String,
    heartbeat: u64,
}

async fn read_active(driver: &dyn Driver) -> io::Result<Option<String>> {
    let Some(raw) = driver.get(keys::GC_ACTIVE).await? else {
        return Ok(None);
    };
    let Ok(active) = serde_json::from_slice::<Active>(&raw) else {
        return Ok(None);
    };
    let fresh = active.heartbeat.saturating_add(STALE) > crate::clock::now_secs();
    Ok(fresh.then_some(active.run))
}

async fn write_active(driver: &dyn Driver, run: &str) -> io::Result<()> {
    let active = Active {
        run: run.to_string(),
        heartbeat: crate::clock::now_secs(),
    };
    let raw = serde_json::to_vec(&active).map_err(io::Error::other)?;
    driver.put(keys::GC_ACTIVE, Bytes::from(raw)).await
}

/// What this process knows of the announced run, shared with the poller.
#[derive(Default)]
pub struct Known(Mutex<Option<String>>);

impl Known {
    pub fn get(&self) -> Option<String> {
        self.0.lock().map(|r| r.clone()).unwrap_or(None)
    }
    fn set(&self, run: Option<String>) {
        if let Ok(mut r) = self.0.lock() {
            *r = run;
        }
    }
}

/// Reads the announcement every [`POLL`] until `known` is dropped.
pub fn watch(driver: Arc<dyn Driver>, known: Weak<Known>) {
    tokio::spawn(async move {
        loop {
            let Some(k) = known.upgrade() else { return };
            match read_active(driver.as_ref()).await {
                Ok(run) => k.set(run),
                Err(e) => log::debug!("reading the gc announcement: {e}"),
            }
            drop(k);
            tokio::time::sleep(POLL).await;
        }
    });
}

/// Records that blobs are about to be referenced, when a run is announced.
pub async fn touch(driver: &dyn Driver, known: &Known, digests: &[Digest]) {
    let Some(run) = known.get() else { return };
    let writes = digests
        .iter()
        .map(|d| keys::gc_touched(&run, d))
        .map(|key| async move { driver.put(&key, Bytes::new()).await });
    for written in futures::future::join_all(writes).await {
        if let Err(e) = written {
            log::warn!("recording a reference for the running gc: {e}");
        }
    }
}

/// This process's announced run (see the module docs).
pub struct Announcement {
    driver: Arc<dyn Driver>,
    known: Arc<Known>,
    pub run: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Announcement {
    /// Announces a run and waits out the notice; `None` when another process's run is
    /// announced (before, or at the same time).
    pub async fn begin(driver: Arc<dyn Driver>, known: Arc<Known>) -> io::Result<Option<Announcement>> {
        if read_active(driver.as_ref()).await?.is_some() {
            return Ok(None);
        }
        let run = hex::encode(rand::random::<[u8; 8]>());
        write_active(driver.as_ref(), &run).await?;
        known.set(Some(run.clone()));
        tokio::time::sleep(NOTICE).await;
        if read_active(driver.as_ref()).await?.as_deref() != Some(run.as_str()) {
            known.set(None);
            return Ok(None);
        }
        let heartbeat = {
            let (driver, run) = (driver.clone(), run.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    if let Err(e) = write_active(driver.as_ref(), &run).await {
                        log::warn!("renewing the gc announcement: {e}");
                    }
                }
            })
        };
        Ok(Some(Announcement {
            driver,
            known,
            run,
            heartbeat,
        }))
    }

    /// Whether any process recorded a reference to `digest` during this run.
    pub async fn touched(&self, digest: &Digest) -> io::Result<bool> {
        Ok(self.driver.stat(&keys::gc_touched(&self.run, digest)).await?.is_some())
    }

    /// Ends the run: the announcement and everything of this run (and of runs that died) go.
    pub async fn end(self) -> io::Result<()> {
        self.heartbeat.abort();
        self.known.set(None);
        if read_active(self.driver.as_ref()).await?.as_deref() == Some(self.run.as_str()) {
            self.driver.delete(keys::GC_ACTIVE).await?;
        }
        for area in ["touched", "held"] {
            let prefix = format!("{}/{area}", keys::GC);
            for run in self.driver.list(&prefix).await? {
                self.driver.delete_all(&format!("{prefix}/{run}")).await?;
            }
        }
        Ok(())
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}
