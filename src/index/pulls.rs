//! Pull statistics: how often a repository and each of its tags was pulled, and when last.
//! Written in batches by `manage::pulls` (a few seconds of pulls at a time, never one write per
//! pull). Keys: `<repo>\0` for the repository, `<repo>\0<tag>` for a tag (no repository name
//! holds a NUL, so a prefix scan of `<repo>\0` finds exactly that repository's entries); value:
//! count and last pull time, 8 bytes each, big-endian (0 = never).

use super::Index;
use crate::error::AppResult;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PullStat {
    pub count: u64,
    /// Seconds since the epoch of the last pull.
    pub last: Option<u64>,
}

impl PullStat {
    /// Adds `other` (counts add up, the later time wins).
    pub fn merge(&mut self, other: PullStat) {
        self.count = self.count.saturating_add(other.count);
        self.last = self.last.max(other.last);
    }

    fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.count.to_be_bytes());
        out[8..].copy_from_slice(&self.last.unwrap_or(0).to_be_bytes());
        out
    }

    fn decode(raw: &[u8]) -> PullStat {
        let word = |r: Option<&[u8]>| r.and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
        PullStat {
            count: word(raw.get(..8)).unwrap_or(0),
            last: word(raw.get(8..16)).filter(|&t| t != 0),
        }
    }
}

/// One batch entry: repository, tag (`""` for the repository itself), what to add.
pub type PullDelta = (String, String, PullStat);

fn key(repo: &str, tag: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(repo.len() + 1 + tag.len());
    k.extend_from_slice(repo.as_bytes());
    k.push(0);
    k.extend_from_slice(tag.as_bytes());
    k
}

impl Index {
    /// Adds a batch of pulls (the caller makes it durable with `flush`).
    pub fn add_pulls(&self, batch: &[PullDelta]) -> AppResult<()> {
        for (repo, tag, delta) in batch {
            self.pulls.fetch_and_update(key(repo, tag), |old| {
                let mut stat = old.map(PullStat::decode).unwrap_or_default();
                stat.merge(*delta);
                Some(stat.encode().to_vec())
            })?;
        }
        Ok(())
    }

    /// A repository's stored pull statistics: `""` for the repository, then each tag's.
    pub fn pulls_of(&self, repo: &str) -> AppResult<Vec<(String, PullStat)>> {
        let prefix = key(repo, "");
        let mut out = Vec::new();
        for entry in self.pulls.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let tag = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((tag, PullStat::decode(&v)));
        }
        Ok(out)
    }

    /// Every repository's own statistics (not its tags'), in one pass.
    pub fn repository_pulls(&self) -> AppResult<Vec<(String, PullStat)>> {
        let mut out = Vec::new();
        for entry in self.pulls.iter() {
            let (k, v) = entry?;
            if let Some(repo) = k.strip_suffix(&[0u8]) {
                out.push((String::from_utf8_lossy(repo).into_owned(), PullStat::decode(&v)));
            }
        }
        Ok(out)
    }

    /// Forgets a tag's statistics (`Some`), or the whole repository's (`None`).
    pub fn forget_pulls(&self, repo: &str, tag: Option<&str>) -> AppResult<()> {
        match tag {
            Some(t) => {
                self.pulls.remove(key(repo, t))?;
            }
            None => {
                for k in self.pulls.scan_prefix(key(repo, "")).keys() {
                    self.pulls.remove(k?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_add_up_and_repositories_stay_apart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ix = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        let at = |count, last| PullStat {
            count,
            last: Some(last),
        };
        ix.add_pulls(&[
            ("a/b".into(), "".into(), at(2, 100)),
            ("a/b".into(), "v1".into(), at(2, 100)),
            ("a/bc".into(), "".into(), at(5, 50)),
        ])
        .expect("add");
        ix.add_pulls(&[("a/b".into(), "".into(), at(1, 90))]).expect("add");
        let got = ix.pulls_of("a/b").expect("read");
        assert_eq!(got, vec![("".to_string(), at(3, 100)), ("v1".to_string(), at(2, 100))]);
        let totals = ix.repository_pulls().expect("totals");
        assert_eq!(
            totals,
            vec![("a/b".to_string(), at(3, 100)), ("a/bc".to_string(), at(5, 50))]
        );
        ix.forget_pulls("a/b", Some("v1")).expect("forget tag");
        assert_eq!(ix.pulls_of("a/b").expect("read").len(), 1);
        ix.forget_pulls("a/b", None).expect("forget repo");
        assert!(ix.pulls_of("a/b").expect("read").is_empty());
        assert_eq!(ix.pulls_of("a/bc").expect("read"), vec![("".to_string(), at(5, 50))]);
    }
}
