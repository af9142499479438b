//! Pull statistics as pulls happen: counted in memory (a pull costs a map update, never a
//! storage or index write) and added to the index's `pulls` tree every [`FLUSH_EVERY`] and at
//! shutdown. A crash loses at most that much. Reads merge what is stored with what is pending.
//!
//! What counts (see the README, "Pull statistics"): a v2 manifest GET by tag is a pull of the
//! repository and that tag, by digest of the repository only; a HEAD by tag (how clients built
//! on containerd resolve a tag before fetching it by digest) marks the tag as used (its last pull
//! time) without counting. A v1 `GET .../tags/{tag}` (Docker 1.9) is a pull of that tag; the
//! full tag list (Docker 1.3, which names no tag) a pull of the repository. A server without
//! an index (`standalone = false`) keeps no statistics: it has no management API to show them.

use crate::index::{Index, PullStat};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub const FLUSH_EVERY: Duration = Duration::from_secs(3);

/// Repository and tag (`""`: the repository itself).
type Key = (String, String);

pub struct PullCounter {
    enabled: bool,
    pending: Mutex<HashMap<Key, PullStat>>,
    /// A flush holds it for writing from taking the pending batch until it is stored, a read
    /// for reading both: a read never sees a batch in neither place (retention must not miss
    /// a pull that is being flushed). Pulls themselves never wait for it.
    flushing: tokio::sync::RwLock<()>,
}

/// A repository's statistics: its own and each tag's.
#[derive(Debug, Default, Clone)]
pub struct RepoPulls {
    pub repository: PullStat,
    pub tags: HashMap<String, PullStat>,
}

impl RepoPulls {
    pub fn tag(&self, tag: &str) -> PullStat {
        self.tags.get(tag).copied().unwrap_or_default()
    }
}

impl PullCounter {
    pub fn new(enabled: bool) -> PullCounter {
        PullCounter {
            enabled,
            pending: Mutex::new(HashMap::new()),
            flushing: tokio::sync::RwLock::new(()),
        }
    }

    fn add(&self, repo: &str, tag: &str, count: u64) {
        if !self.enabled {
            return;
        }
        let stat = PullStat {
            count,
            last: Some(crate::clock::now_secs()),
        };
        if let Ok(mut p) = self.pending.lock() {
            p.entry((repo.to_string(), tag.to_string())).or_default().merge(stat);
        }
    }

    /// A pull of the repository, and of `tag` when the client named one.
    pub fn pulled(&self, repo: &str, tag: Option<&str>) {
        self.add(repo, "", 1);
        if let Some(t) = tag {
            self.add(repo, t, 1);
        }
    }

    /// The tag was resolved (a HEAD): it is in use, but nothing was pulled yet.
    pub fn touched(&self, repo: &str, tag: &str) {
        self.add(repo, tag, 0);
    }

    /// Writes what is pending to the index, durably. On failure the batch is kept for the
    /// next try.
    pub async fn flush(&self, ix: &Index) {
        let _flushing = self.flushing.write().await;
        let batch: Vec<_> = match self.pending.lock() {
            Ok(mut p) if !p.is_empty() => std::mem::take(&mut *p).into_iter().collect(),
            _ => return,
        };
        let writing: Vec<_> = batch.iter().map(|((r, t), s)| (r.clone(), t.clone(), *s)).collect();
        let result = match ix.run(move |ix| ix.add_pulls(&writing)).await {
            Ok(()) => ix.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log::warn!("pull statistics not written (kept for the next try): {e}");
            if let Ok(mut p) = self.pending.lock() {
                for (k, s) in batch {
                    p.entry(k).or_default().merge(s);
                }
            }
        }
    }

    /// A repository's statistics, stored and pending.
    pub async fn of(&self, ix: &Index, repo: &str) -> crate::error::AppResult<RepoPulls> {
        let _reading = self.flushing.read().await;
        let name = repo.to_string();
        let stored = ix.run(move |ix| ix.pulls_of(&name)).await?;
        let mut out = RepoPulls::default();
        for (tag, stat) in stored {
            out.merge(&tag, stat);
        }
        if let Ok(p) = self.pending.lock() {
            for ((r, tag), stat) in p.iter() {
                if r == repo {
                    out.merge(tag, *stat);
                }
            }
        }
        Ok(out)
    }

    /// Every repository's own statistics, stored and pending (for sorting by pulls).
    pub async fn totals(&self, ix: &Index) -> crate::error::AppResult<HashMap<String, PullStat>> {
        let _reading = self.flushing.read().await;
        let stored = ix.run(|ix| ix.repository_pulls()).await?;
        let mut out: HashMap<String, PullStat> = stored.into_iter().collect();
        if let Ok(p) = self.pending.lock() {
            for ((r, tag), stat) in p.iter() {
                if tag.is_empty() {
                    out.entry(r.clone()).or_default().merge(*stat);
                }
            }
        }
        Ok(out)
    }

    /// Forgets a deleted tag's statistics (`Some`) or a deleted repository's (`None`).
    pub async fn forget(&self, ix: &Index, repo: &str, tag: Option<&str>) -> crate::error::AppResult<()> {
        // Not while a batch that may hold them is being written.
        let _flushing = self.flushing.write().await;
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|(r, t), _| !(r == repo && tag.is_none_or(|tag| tag == t)));
        }
        let (name, tag) = (repo.to_string(), tag.map(str::to_string));
        ix.write(move |ix| ix.forget_pulls(&name, tag.as_deref())).await
    }
}

impl RepoPulls {
    fn merge(&mut self, tag: &str, stat: PullStat) {
        if tag.is_empty() {
            self.repository.merge(stat);
        } else {
            self.tags.entry(tag.to_string()).or_default().merge(stat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pulls_are_counted_in_memory_and_flushed_in_one_batch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ix = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        let c = PullCounter::new(true);
        c.pulled("a/b", Some("v1"));
        c.pulled("a/b", None);
        c.touched("a/b", "v2");
        assert!(ix.pulls_of("a/b").expect("read").is_empty(), "nothing written per pull");
        let seen = c.of(&ix, "a/b").await.expect("read");
        assert_eq!((seen.repository.count, seen.tag("v1").count), (2, 1));
        assert_eq!(seen.tag("v2").count, 0);
        assert!(seen.tag("v2").last.is_some(), "a HEAD marks the tag as used");
        c.flush(&ix).await;
        assert_eq!(ix.pulls_of("a/b").expect("read").len(), 3);
        c.pulled("a/b", Some("v1"));
        let seen = c.of(&ix, "a/b").await.expect("read");
        assert_eq!((seen.repository.count, seen.tag("v1").count), (3, 2));
        c.forget(&ix, "a/b", Some("v1")).await.expect("forget");
        assert_eq!(c.of(&ix, "a/b").await.expect("read").tag("v1").count, 0);
        let off = PullCounter::new(false);
        off.pulled("a/b", Some("v1"));
        off.flush(&ix).await;
        assert_eq!(
            ix.pulls_of("a/b").expect("read").len(),
            2,
            "a disabled counter writes nothing"
        );
    }
}
