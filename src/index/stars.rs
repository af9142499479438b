//! Stars: an account's bookmark on a repository. Two trees hold each star, so both questions
//! are one prefix scan: `stars` keyed `<repo>\0<user>` (who starred a repository, its count)
//! and `user_stars` keyed `<user>\0<repo>` (what an account starred). Neither a repository
//! name nor a user name holds a NUL, so a prefix scan of `<x>\0` finds exactly x's entries.
//! Value: the time of the star, 8 bytes big-endian. Both trees change in one transaction.

use super::Index;
use crate::error::AppResult;
use sled::transaction::TransactionError;
use sled::Transactional;
use std::collections::HashMap;

fn key(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

fn prefix(a: &str) -> Vec<u8> {
    key(a, "")
}

impl Index {
    /// Stars (`on`) or unstars `repo` for `user`; doing it twice changes nothing.
    pub fn set_star(&self, repo: &str, user: &str, on: bool) -> AppResult<()> {
        let (by_repo, by_user) = (key(repo, user), key(user, repo));
        let now = super::now_secs().to_be_bytes();
        let result: Result<(), TransactionError<()>> =
            (&self.stars, &self.user_stars).transaction(|(stars, user_stars)| {
                if on {
                    if stars.get(&by_repo)?.is_none() {
                        stars.insert(by_repo.as_slice(), &now)?;
                        user_stars.insert(by_user.as_slice(), &now)?;
                    }
                } else {
                    stars.remove(by_repo.as_slice())?;
                    user_stars.remove(by_user.as_slice())?;
                }
                Ok(())
            });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    pub fn star_count(&self, repo: &str) -> AppResult<u64> {
        let mut n = 0;
        for k in self.stars.scan_prefix(prefix(repo)).keys() {
            k?;
            n += 1;
        }
        Ok(n)
    }

    pub fn starred(&self, repo: &str, user: &str) -> AppResult<bool> {
        Ok(self.stars.contains_key(key(repo, user))?)
    }

    /// Every repository's star count (those with none are absent), in one pass.
    pub fn star_counts(&self) -> AppResult<HashMap<String, u64>> {
        let mut out: HashMap<String, u64> = HashMap::new();
        for k in self.stars.iter().keys() {
            let k = k?;
            if let Some(end) = k.iter().position(|b| *b == 0) {
                *out.entry(String::from_utf8_lossy(&k[..end]).into_owned()).or_default() += 1;
            }
        }
        Ok(out)
    }

    /// The repositories `user` starred, in name order.
    pub fn stars_of(&self, user: &str) -> AppResult<Vec<String>> {
        let p = prefix(user);
        let mut out = Vec::new();
        for k in self.user_stars.scan_prefix(&p).keys() {
            out.push(String::from_utf8_lossy(&k?[p.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Drops every star of a repository (it is being deleted).
    pub(super) fn forget_repo_stars(&self, repo: &str) -> AppResult<()> {
        for k in self.stars.scan_prefix(prefix(repo)).keys() {
            let k = k?;
            let user = String::from_utf8_lossy(&k[repo.len() + 1..]).into_owned();
            self.user_stars.remove(key(&user, repo))?;
            self.stars.remove(k)?;
        }
        Ok(())
    }

    /// Drops every star of an account (it is being deleted).
    pub(super) fn forget_user_stars(&self, user: &str) -> AppResult<()> {
        for repo in self.stars_of(user)? {
            self.stars.remove(key(&repo, user))?;
            self.user_stars.remove(key(user, &repo))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_count_per_repository_and_list_per_user() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ix = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        ix.set_star("a/b", "alice", true).expect("star");
        ix.set_star("a/b", "alice", true).expect("twice is once");
        ix.set_star("a/b", "bob", true).expect("star");
        ix.set_star("a/bc", "alice", true).expect("star");
        assert_eq!(ix.star_count("a/b").expect("count"), 2);
        assert_eq!(ix.star_count("a/bc").expect("count"), 1);
        assert!(ix.starred("a/b", "bob").expect("read"));
        assert_eq!(ix.stars_of("alice").expect("list"), vec!["a/b", "a/bc"]);
        assert_eq!(ix.star_counts().expect("counts").get("a/b"), Some(&2));
        ix.set_star("a/b", "bob", false).expect("unstar");
        ix.set_star("a/b", "bob", false).expect("unstar twice");
        assert!(!ix.starred("a/b", "bob").expect("read"));
        ix.forget_repo_stars("a/b").expect("forget repo");
        assert_eq!(ix.star_count("a/b").expect("count"), 0);
        assert_eq!(ix.stars_of("alice").expect("list"), vec!["a/bc"]);
        ix.forget_user_stars("alice").expect("forget user");
        assert_eq!(ix.star_count("a/bc").expect("count"), 0);
        assert!(ix.stars_of("alice").expect("list").is_empty());
    }
}
