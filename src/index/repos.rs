//! Repository records: owner, visibility, collaborators, description and the v1 image list.

use super::{decode, encode, now_secs, Index};
use crate::error::{AppError, AppResult};
use crate::names::RepoName;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageEntry {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repo {
    pub v: u32,
    pub name: String,
    /// The user who created it (for `library/` repositories, the admin who did).
    pub owner: String,
    pub private: bool,
    #[serde(default)]
    pub collaborators: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub created: u64,
    pub updated: u64,
    #[serde(default)]
    pub images: Vec<ImageEntry>,
}

impl Repo {
    fn new(name: &RepoName, owner: &str) -> Repo {
        let now = now_secs();
        Repo {
            v: 1,
            name: name.to_string(),
            owner: owner.to_string(),
            private: false,
            collaborators: Vec::new(),
            description: String::new(),
            created: now,
            updated: now,
            images: Vec::new(),
        }
    }

    /// Adds ids not yet listed; never drops a known checksum (PYREG's merge rule).
    pub fn merge_images(&mut self, entries: &[ImageEntry]) {
        for e in entries {
            match self.images.iter_mut().find(|x| x.id == e.id) {
                Some(x) => {
                    if e.checksum.is_some() {
                        x.checksum = e.checksum.clone();
                    }
                }
                None => self.images.push(e.clone()),
            }
        }
    }
}

impl Index {
    pub fn repo(&self, name: &RepoName) -> AppResult<Option<Repo>> {
        match self.repos.get(name.as_str().as_bytes())? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Creates the record if absent, then applies `f`, atomically (compare-and-swap loop).
    pub fn upsert_repo(&self, name: &RepoName, owner: &str, f: impl Fn(&mut Repo)) -> AppResult<Repo> {
        let key = name.as_str().as_bytes();
        loop {
            let old = self.repos.get(key)?;
            let mut repo = match &old {
                Some(v) => decode(v)?,
                None => Repo::new(name, owner),
            };
            f(&mut repo);
            repo.updated = now_secs();
            let new = encode(&repo)?;
            if self.repos.compare_and_swap(key, old, Some(new))?.is_ok() {
                self.forget_listing();
                return Ok(repo);
            }
        }
    }

    /// Creates the record if there is none; true if it did.
    pub fn ensure_repo(&self, name: &RepoName, owner: &str) -> AppResult<bool> {
        if self.repo(name)?.is_some() {
            return Ok(false);
        }
        let new = encode(&Repo::new(name, owner))?;
        let created = self
            .repos
            .compare_and_swap(name.as_str().as_bytes(), None as Option<&[u8]>, Some(new))?
            .is_ok();
        if created {
            self.forget_listing();
        }
        Ok(created)
    }

    /// Applies `f` to an existing record; NotFound if there is none.
    pub fn update_repo(&self, name: &RepoName, f: impl Fn(&mut Repo) -> AppResult<()>) -> AppResult<Repo> {
        let key = name.as_str().as_bytes();
        loop {
            let old = self
                .repos
                .get(key)?
                .ok_or_else(|| AppError::not_found("Repository not found"))?;
            let mut repo: Repo = decode(&old)?;
            f(&mut repo)?;
            repo.updated = now_secs();
            let new = encode(&repo)?;
            if self.repos.compare_and_swap(key, Some(old), Some(new))?.is_ok() {
                self.forget_listing();
                return Ok(repo);
            }
        }
    }

    /// Adds (`add`) or removes one collaborator; removing one who is not there is a 404.
    pub fn set_collaborator(&self, name: &RepoName, user: &str, add: bool) -> AppResult<Repo> {
        self.update_repo(name, |r| {
            let present = r.collaborators.iter().any(|c| c == user);
            match (add, present) {
                (true, false) => r.collaborators.push(user.to_string()),
                (false, true) => r.collaborators.retain(|c| c != user),
                (false, false) => return Err(AppError::not_found(format!("{user} is not a collaborator"))),
                (true, true) => {}
            }
            Ok(())
        })
    }

    /// Drops an account from every repository's collaborators (it is being deleted).
    pub fn forget_collaborator(&self, user: &str) -> AppResult<()> {
        for repo in self.repos()? {
            if repo.collaborators.iter().any(|c| c == user) {
                let name = RepoName::parse(&repo.name)?;
                self.set_collaborator(&name, user, false)?;
            }
        }
        Ok(())
    }

    /// Removes the record with its stars and comments (those first: a crash between leaves a
    /// repository with fewer comments, never comments that a new repository of the name would
    /// inherit).
    pub fn delete_repo(&self, name: &RepoName) -> AppResult<bool> {
        self.forget_repo_stars(name.as_str())?;
        self.forget_repo_comments(name.as_str())?;
        let removed = self.repos.remove(name.as_str().as_bytes())?.is_some();
        // A repository of the same name made later must not inherit its hooks.
        self.forget_hooks(name.as_str())?;
        self.forget_listing();
        Ok(removed)
    }

    /// All repositories, in name order.
    pub fn repos(&self) -> AppResult<Vec<Repo>> {
        self.repos.iter().values().map(|v| decode(&v?)).collect()
    }

    /// All repository records without their image lists, in name order, from memory: search
    /// and the catalog read this on every request, and decoding 10,000 records each time would
    /// cost milliseconds and megabytes per request.
    pub fn listing(&self) -> AppResult<std::sync::Arc<Vec<Repo>>> {
        use std::sync::atomic::Ordering;
        if let Some(l) = self.listing.read().ok().and_then(|g| g.clone()) {
            return Ok(l);
        }
        let generation = self.listing_generation.load(Ordering::SeqCst);
        let mut all = self.repos()?;
        for r in &mut all {
            r.images = Vec::new();
        }
        let all = std::sync::Arc::new(all);
        if let Ok(mut slot) = self.listing.write() {
            // A write since the scan began may be missing from it: serve it this once, keep
            // nothing (the write lock orders this check with `forget_listing`).
            if self.listing_generation.load(Ordering::SeqCst) == generation {
                *slot = Some(all.clone());
            }
        }
        Ok(all)
    }

    fn forget_listing(&self) {
        if let Ok(mut slot) = self.listing.write() {
            self.listing_generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writers flipping visibility while readers rebuild the listing: once the writers stop,
    /// the listing shows the last write (a copy scanned before a write is never kept after it).
    #[test]
    fn the_listing_never_keeps_a_stale_copy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        let names: Vec<RepoName> = (0..20)
            .map(|i| RepoName::parse(&format!("alice/app{i}")).expect("name"))
            .collect();
        for n in &names {
            index.ensure_repo(n, "alice").expect("create");
        }
        std::thread::scope(|s| {
            for w in 0..2 {
                let (index, names) = (&index, &names);
                s.spawn(move || {
                    for round in 0..200 {
                        let n = &names[(round * 7 + w) % names.len()];
                        index
                            .upsert_repo(n, "alice", |r| r.private = round % 2 == 0)
                            .expect("write");
                    }
                });
            }
            for _ in 0..2 {
                let index = &index;
                s.spawn(move || {
                    for _ in 0..400 {
                        index.listing().expect("listing");
                    }
                });
            }
        });
        let listed: Vec<(String, bool)> = index
            .listing()
            .expect("listing")
            .iter()
            .map(|r| (r.name.clone(), r.private))
            .collect();
        let stored: Vec<(String, bool)> = index
            .repos()
            .expect("repos")
            .iter()
            .map(|r| (r.name.clone(), r.private))
            .collect();
        assert_eq!(listed, stored);
    }
}
