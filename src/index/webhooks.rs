//! Webhooks' records (see `crate::webhooks`): the hooks of each repository and every hook's
//! deliveries, which are the persistent queue too (a delivery `pending` is one still to send).
//!
//! Keys: a hook is `<repo>\0<id, 8 bytes BE>` in `webhooks` (no repository name holds a NUL,
//! so a prefix scan of `<repo>\0` finds exactly that repository's hooks); a global hook of
//! `registry.toml` has the repository part empty (`\0<n>`). A delivery is its hook's key and
//! the delivery's id (8 bytes BE) in `webhook_deliveries`, so a hook's deliveries are one
//! prefix scan, oldest first. Ids come from sled's `generate_id` (a sequence that survives
//! restarts), so they only grow.

use super::{decode, encode, Index};
use crate::error::AppResult;
use serde::{Deserialize, Serialize};

/// A repository's webhook, as stored (the secret is never shown after creation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hook {
    pub id: u64,
    pub repository: String,
    pub url: String,
    pub secret: String,
    /// `push`, `delete`.
    pub events: Vec<String>,
    pub active: bool,
    pub created: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One event sent (or to send) to one hook: what to send, and how the attempts went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub id: u64,
    /// The hook's key (see the module comment).
    pub hook_key: Vec<u8>,
    /// `push` or `delete` (the `X-Skiff-Event` header).
    pub event: String,
    /// What happened, in the audit log's words: `manifest.push`, `image.push`, `tag.delete`...
    pub action: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub created: u64,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_attempt: Option<u64>,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    /// When the next attempt is due (pending only), seconds since the epoch.
    pub next_attempt: Option<u64>,
    /// Where and with what secret, as the hook was when the event happened: a repository's
    /// hooks go with it, and the events of its deletion still go out. A hook that still
    /// exists is sent to as it is now (a new secret signs retries too).
    pub url: String,
    pub secret: String,
    pub content_type: String,
    /// The exact body sent, every attempt (receivers may deduplicate on its event id).
    pub body: String,
}

impl Delivery {
    pub fn key(&self) -> Vec<u8> {
        let mut k = self.hook_key.clone();
        k.extend_from_slice(&self.id.to_be_bytes());
        k
    }
}

/// The key of a repository's hook (`repo` empty: a global hook, `id` its place in the config).
pub fn hook_key(repo: &str, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(repo.len() + 9);
    k.extend_from_slice(repo.as_bytes());
    k.push(0);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The repository and id a hook key names (`None` for a global hook's).
pub fn parse_hook_key(key: &[u8]) -> Option<(String, u64)> {
    let split = key.len().checked_sub(9)?;
    let (repo, rest) = key.split_at(split);
    let id = <[u8; 8]>::try_from(rest.get(1..)?).ok()?;
    if repo.is_empty() || rest[0] != 0 {
        return None;
    }
    Some((String::from_utf8_lossy(repo).into_owned(), u64::from_be_bytes(id)))
}

fn repo_prefix(repo: &str) -> Vec<u8> {
    let mut k = repo.as_bytes().to_vec();
    k.push(0);
    k
}

impl Index {
    /// A fresh id from the database's sequence.
    pub fn next_id(&self) -> AppResult<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    /// A repository's hooks, oldest first.
    pub fn hooks_of(&self, repo: &str) -> AppResult<Vec<Hook>> {
        self.hooks
            .scan_prefix(repo_prefix(repo))
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    pub fn hook(&self, repo: &str, id: u64) -> AppResult<Option<Hook>> {
        self.hooks.get(hook_key(repo, id))?.map(|v| decode(&v)).transpose()
    }

    pub fn put_hook(&self, hook: &Hook) -> AppResult<()> {
        self.hooks.insert(hook_key(&hook.repository, hook.id), encode(hook)?)?;
        Ok(())
    }

    /// Removes a hook and every delivery of it, pending ones too: a deleted hook gets nothing.
    pub fn delete_hook(&self, repo: &str, id: u64) -> AppResult<bool> {
        let key = hook_key(repo, id);
        let found = self.hooks.remove(&key)?.is_some();
        for k in self.deliveries.scan_prefix(&key).keys() {
            self.deliveries.remove(k?)?;
        }
        Ok(found)
    }

    /// Removes a repository's hooks (the repository went). Their pending deliveries stay and
    /// go out (the deletion's own event among them); finished ones go.
    pub(crate) fn forget_hooks(&self, repo: &str) -> AppResult<()> {
        for entry in self.hooks.scan_prefix(repo_prefix(repo)) {
            let (key, _) = entry?;
            self.hooks.remove(&key)?;
            self.prune_deliveries(&key, 0, true)?;
        }
        Ok(())
    }

    pub fn put_delivery(&self, d: &Delivery) -> AppResult<()> {
        self.deliveries.insert(d.key(), encode(d)?)?;
        Ok(())
    }

    pub fn delivery(&self, key: &[u8]) -> AppResult<Option<Delivery>> {
        self.deliveries.get(key)?.map(|v| decode(&v)).transpose()
    }

    pub fn remove_delivery(&self, key: &[u8]) -> AppResult<()> {
        self.deliveries.remove(key)?;
        Ok(())
    }

    /// A hook's deliveries, newest first, at most `limit`.
    pub fn deliveries_of(&self, hook_key: &[u8], limit: usize) -> AppResult<Vec<Delivery>> {
        self.deliveries
            .scan_prefix(hook_key)
            .values()
            .rev()
            .take(limit)
            .map(|v| decode(&v?))
            .collect()
    }

    /// Every pending delivery's key and due time: what a starting server sends.
    pub fn pending_deliveries(&self) -> AppResult<Vec<(Vec<u8>, u64)>> {
        let mut out = Vec::new();
        for entry in self.deliveries.iter() {
            let (k, v) = entry?;
            let Ok(d) = decode::<Delivery>(&v) else { continue };
            if d.status == DeliveryStatus::Pending {
                out.push((k.to_vec(), d.next_attempt.unwrap_or(0)));
            }
        }
        Ok(out)
    }

    /// Keeps a hook's `keep` newest deliveries and removes the older ones that are finished
    /// (pending ones stay until they are; with `keep_pending` false they go too).
    pub fn prune_deliveries(&self, hook_key: &[u8], keep: usize, keep_pending: bool) -> AppResult<()> {
        let mut seen = 0;
        for entry in self.deliveries.scan_prefix(hook_key).rev() {
            let (k, v) = entry?;
            seen += 1;
            if seen <= keep {
                continue;
            }
            let pending = decode::<Delivery>(&v).is_ok_and(|d| d.status == DeliveryStatus::Pending);
            if !(pending && keep_pending) {
                self.deliveries.remove(k)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(ix: &Index, hook_key: &[u8], status: DeliveryStatus) -> Delivery {
        Delivery {
            id: ix.next_id().expect("id"),
            hook_key: hook_key.to_vec(),
            event: "push".into(),
            action: "manifest.push".into(),
            repository: "a/b".into(),
            tag: Some("v1".into()),
            digest: None,
            created: 1,
            status,
            attempts: 0,
            last_attempt: None,
            response_code: None,
            error: None,
            next_attempt: Some(5),
            url: "http://example.com/".into(),
            secret: "s".into(),
            content_type: "application/json".into(),
            body: "{}".into(),
        }
    }

    /// Hooks stay apart per repository; deleting one takes its deliveries; a deleted
    /// repository's hooks go but their pending deliveries stay; pruning keeps the newest and
    /// every pending one.
    #[test]
    fn hooks_deliveries_and_pruning() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ix = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        let hook = |repo: &str| Hook {
            id: ix.next_id().expect("id"),
            repository: repo.into(),
            url: "http://example.com/".into(),
            secret: "s".into(),
            events: vec!["push".into()],
            active: true,
            created: 1,
        };
        let (h1, h2, other) = (hook("a/b"), hook("a/b"), hook("a/bc"));
        assert_eq!(parse_hook_key(&hook_key("a/b", 7)), Some(("a/b".to_string(), 7)));
        assert_eq!(parse_hook_key(&hook_key("", 1)), None, "a global hook");
        for h in [&h1, &h2, &other] {
            ix.put_hook(h).expect("put");
        }
        assert_eq!(ix.hooks_of("a/b").expect("list"), vec![h1.clone(), h2.clone()]);
        let k1 = hook_key("a/b", h1.id);
        let pending = delivery(&ix, &k1, DeliveryStatus::Pending);
        ix.put_delivery(&pending).expect("put");
        let mut done = Vec::new();
        for _ in 0..4 {
            let d = delivery(&ix, &k1, DeliveryStatus::Delivered);
            ix.put_delivery(&d).expect("put");
            done.push(d.id);
        }
        let newest: Vec<u64> = ix.deliveries_of(&k1, 2).expect("list").iter().map(|d| d.id).collect();
        assert_eq!(newest, vec![done[3], done[2]], "newest first");
        ix.prune_deliveries(&k1, 2, true).expect("prune");
        let left: Vec<u64> = ix.deliveries_of(&k1, 100).expect("list").iter().map(|d| d.id).collect();
        assert_eq!(left, vec![done[3], done[2], pending.id], "the pending one stays");
        assert_eq!(ix.pending_deliveries().expect("pending"), vec![(pending.key(), 5)]);
        ix.forget_hooks("a/b").expect("forget");
        assert!(ix.hooks_of("a/b").expect("list").is_empty());
        assert_eq!(ix.hooks_of("a/bc").expect("list"), vec![other.clone()]);
        let left: Vec<u64> = ix.deliveries_of(&k1, 100).expect("list").iter().map(|d| d.id).collect();
        assert_eq!(left, vec![pending.id], "pending deliveries outlive the repository");
        let k2 = hook_key("a/bc", other.id);
        ix.put_delivery(&delivery(&ix, &k2, DeliveryStatus::Pending))
            .expect("put");
        assert!(ix.delete_hook("a/bc", other.id).expect("delete"));
        assert!(
            ix.deliveries_of(&k2, 100).expect("list").is_empty(),
            "a deleted hook gets nothing"
        );
    }
}
