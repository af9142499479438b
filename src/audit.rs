//! The audit log: who pushed, deleted or changed what, when, and from where.
//!
//! Protocol handlers (v1, v2) call [`by_client`] and the management API [`by_actor`], one line
//! each, after the change succeeded. Recording never waits on the disk: the entry goes over a
//! channel to one writer thread, which numbers it from sled's `generate_id` (a sequence that
//! survives restarts) and inserts it in the `audit` tree of the index database, keyed by that
//! number big-endian (so the tree is in time order) with a JSON value. There is no fsync per
//! entry: sled writes it with its next flush (every 500 ms, and with every acknowledged index
//! change), so a crash loses at most the last half second of entries. The same thread prunes
//! the tree (`[audit] keep_days`, `max_entries`) as it goes and once a minute.
//!
//! A registry-only process (`standalone = false`) has no index database and no management API:
//! it writes each entry to its log as one JSON line (target `skiff::audit`), for the operator's
//! log collector; the index it trusts keeps the index's own entries.

use crate::auth::Identity;
use crate::config::AuditConfig;
use crate::error::{AppError, AppResult};
use crate::index::Index;
use crate::manage::Actor;
use crate::names::RepoName;
use crate::state::AppState;
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the age limit is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Entries one page holds at most.
pub const MAX_LIMIT: usize = 1000;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ImagePush,
    TagPush,
    ManifestPush,
    RepositoryDelete,
    TagDelete,
    ManifestDelete,
    BlobDelete,
    UserCreate,
    UserDelete,
    UserPassword,
    UserActive,
    UserAdmin,
    RepositoryVisibility,
    RepositoryDescription,
    RepositoryCollaborator,
    TokenCreate,
    TokenRevoke,
    GcRun,
    CommentCreate,
    CommentEdit,
    CommentDelete,
}

impl Action {
    /// The name stored and filtered on (`action=user` matches every `user.*`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ImagePush => "image.push",
            Action::TagPush => "tag.push",
            Action::ManifestPush => "manifest.push",
            Action::RepositoryDelete => "repository.delete",
            Action::TagDelete => "tag.delete",
            Action::ManifestDelete => "manifest.delete",
            Action::BlobDelete => "blob.delete",
            Action::UserCreate => "user.create",
            Action::UserDelete => "user.delete",
            Action::UserPassword => "user.password",
            Action::UserActive => "user.active",
            Action::UserAdmin => "user.admin",
            Action::RepositoryVisibility => "repository.visibility",
            Action::RepositoryDescription => "repository.description",
            Action::RepositoryCollaborator => "repository.collaborator",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::GcRun => "gc.run",
            Action::CommentCreate => "comment.create",
            Action::CommentEdit => "comment.edit",
            Action::CommentDelete => "comment.delete",
        }
    }
}

/// One entry, as stored and as the API shows it. The action is kept as text, so entries
/// written by a newer Skiff still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its place in the log: larger is newer (`before=` pages on it).
    #[serde(default)]
    pub id: u64,
    /// Seconds since the epoch.
    pub time: u64,
    /// Who did it: an account (a token acts for its owner), `anonymous`, the operator on the
    /// local socket, or the schedule.
    pub user: String,
    pub action: String,
    /// What it was done to: `repo`, `repo:tag`, `repo@digest`, an image id, an account, a token.
    pub target: String,
    /// The repository it concerns, if any.
    #[serde(default)]
    pub repository: Option<String>,
    /// The account it concerns, if any (created, changed, a token's owner).
    #[serde(default)]
    pub account: Option<String>,
    /// The client's address: the peer, or the forwarded one when `trust_forwarded_headers` is
    /// on; `local` for the operator's socket; none for the server's own work.
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// What an action was done to.
pub struct Target {
    name: String,
    repository: Option<String>,
    account: Option<String>,
    detail: serde_json::Value,
}

impl Target {
    pub fn named(name: impl Into<String>) -> Target {
        Target {
            name: name.into(),
            repository: None,
            account: None,
            detail: serde_json::Value::Null,
        }
    }

    pub fn repo(repo: &RepoName) -> Target {
        Target::named(repo.as_str()).in_repo(repo.as_str())
    }

    /// `repo:tag`.
    pub fn tag(repo: &RepoName, tag: impl std::fmt::Display) -> Target {
        Target::named(format!("{repo}:{tag}")).in_repo(repo.as_str())
    }

    /// `repo@digest`.
    pub fn digest(repo: &RepoName, digest: impl std::fmt::Display) -> Target {
        Target::named(format!("{repo}@{digest}")).in_repo(repo.as_str())
    }

    pub fn account(name: &str) -> Target {
        Target::named(name).about(name)
    }

    pub fn in_repo(mut self, repo: &str) -> Target {
        self.repository = Some(repo.to_string());
        self
    }

    pub fn about(mut self, account: &str) -> Target {
        self.account = Some(account.to_string());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Target {
        self.detail = detail;
        self
    }
}

/// A push or delete over the registry protocols, by the caller they identified.
pub fn by_client(state: &AppState, req: &HttpRequest, who: &Identity, action: Action, target: Target) {
    let user = match who {
        // A v1 token on a registry-only process: the index checked it, and names no account.
        Identity::Delegated(_) => "v1 token (checked by the index)",
        _ => who.username().filter(|u| !u.is_empty()).unwrap_or("anonymous"),
    };
    state.audit.record(user, address(state, Some(req)), action, target);
}

/// A change through the management API (the CLI's too, over the local socket), or the server's
/// own work (`req` none).
pub fn by_actor(state: &AppState, req: Option<&HttpRequest>, actor: &Actor, action: Action, target: Target) {
    state.audit.record(actor.name(), address(state, req), action, target);
}

/// The server's own work on behalf of `user` (a garbage collection: who started it).
pub fn by_server(state: &AppState, user: &str, action: Action, target: Target) {
    state.audit.record(user, None, action, target);
}

fn address(state: &AppState, req: Option<&HttpRequest>) -> Option<String> {
    let req = req?;
    if req.conn_data::<crate::net::server::LocalOperator>().is_some() {
        return Some("local".to_string());
    }
    state.gate.client_address(req).map(|a| a.to_string())
}

/// What `GET /api/v1/audit` asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Entries by this account or about it.
    pub user: Option<String>,
    pub repository: Option<String>,
    /// An action (`tag.push`) or a family of them (`user`).
    pub action: Option<String>,
    /// Only entries at or after this time (seconds since the epoch).
    pub since: Option<u64>,
    /// Only entries older than this id (the `next` of the previous page).
    pub before: Option<u64>,
    pub limit: Option<usize>,
}

impl Query {
    fn matches(&self, e: &Entry) -> bool {
        let user = self
            .user
            .as_deref()
            .is_none_or(|u| e.user == u || e.account.as_deref() == Some(u));
        let repo = self
            .repository
            .as_deref()
            .is_none_or(|r| e.repository.as_deref() == Some(r));
        let action = self.action.as_deref().is_none_or(|a| {
            e.action == a || (e.action.starts_with(a) && e.action.as_bytes().get(a.len()) == Some(&b'.'))
        });
        user && repo && action
    }
}

/// One page, newest first; `next` is the `before` of the following page (none: no more).
#[derive(Debug, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next: Option<u64>,
}

enum Msg {
    Entry(Entry),
    /// Answered once every entry sent before it is in the tree.
    Settle(tokio::sync::oneshot::Sender<()>),
}

pub struct Audit {
    sink: Sink,
}

enum Sink {
    Log,
    Tree {
        tree: sled::Tree,
        tx: Option<mpsc::Sender<Msg>>,
        writer: Option<std::thread::JoinHandle<()>>,
    },
}

impl Audit {
    /// Entries to the log only (a registry-only process).
    pub fn to_log() -> Audit {
        Audit { sink: Sink::Log }
    }

    /// The log in the index database, with its writer thread.
    pub fn open(index: &Index, config: &AuditConfig) -> AppResult<Audit> {
        let (db, tree) = index.side_tree("audit")?;
        let (tx, rx) = mpsc::channel();
        let keep = config.clone();
        let writer_tree = tree.clone();
        let writer = std::thread::Builder::new()
            .name("skiff-audit".into())
            .spawn(move || write_loop(&db, &writer_tree, &rx, &keep))
            .map_err(AppError::internal)?;
        Ok(Audit {
            sink: Sink::Tree {
                tree,
                tx: Some(tx),
                writer: Some(writer),
            },
        })
    }

    fn record(&self, user: &str, address: Option<String>, action: Action, target: Target) {
        let entry = Entry {
            id: 0,
            time: crate::clock::now_secs(),
            user: user.to_string(),
            action: action.as_str().to_string(),
            target: target.name,
            repository: target.repository,
            account: target.account,
            address,
            detail: target.detail,
        };
        match &self.sink {
            Sink::Log => match serde_json::to_string(&entry) {
                Ok(line) => log::info!(target: "skiff::audit", "{line}"),
                Err(e) => log::warn!("audit entry not written: {e}"),
            },
            Sink::Tree { tx: Some(tx), .. } => {
                if tx.send(Msg::Entry(entry)).is_err() {
                    log::warn!("audit log writer has stopped: entry lost");
                }
            }
            Sink::Tree { tx: None, .. } => {}
        }
    }

    /// Waits until every entry recorded so far is in the tree (reads see their own changes).
    pub async fn settle(&self) {
        if let Sink::Tree { tx: Some(tx), .. } = &self.sink {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(Msg::Settle(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }

    /// A page of entries, newest first, that match `q` and that `sees` lets the caller see.
    pub async fn query(&self, q: Query, sees: impl Fn(&Entry) -> bool + Send + 'static) -> AppResult<Page> {
        let Sink::Tree { tree, .. } = &self.sink else {
            return Err(AppError::not_found(
                "This server keeps no audit log (standalone = false): its entries are in its log",
            ));
        };
        self.settle().await;
        let tree = tree.clone();
        tokio::task::spawn_blocking(move || scan(&tree, &q, sees))
            .await
            .map_err(AppError::internal)?
    }
}

impl Drop for Audit {
    /// Lets the writer store what is queued and flush, so a CLI command run on a stopped
    /// server's data keeps its entries when the process ends.
    fn drop(&mut self) {
        if let Sink::Tree { tx, writer, .. } = &mut self.sink {
            drop(tx.take());
            if let Some(w) = writer.take() {
                let _ = w.join();
            }
        }
    }
}

fn scan(tree: &sled::Tree, q: &Query, sees: impl Fn(&Entry) -> bool) -> AppResult<Page> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let end = q.before.unwrap_or(u64::MAX).to_be_bytes();
    let mut entries = Vec::new();
    for item in tree.range(..end).rev() {
        let (_, value) = item?;
        let Ok(e) = serde_json::from_slice::<Entry>(&value) else {
            continue;
        };
        if q.since.is_some_and(|s| e.time < s) {
            break;
        }
        if q.matches(&e) && sees(&e) {
            entries.push(e);
            if entries.len() == limit {
                let next = entries.last().map(|e| e.id);
                return Ok(Page { entries, next });
            }
        }
    }
    Ok(Page { entries, next: None })
}

fn write_loop(db: &sled::Db, tree: &sled::Tree, rx: &mpsc::Receiver<Msg>, keep: &AuditConfig) {
    let mut count = tree.len() as u64;
    prune_old(tree, keep, &mut count);
    let mut pruned = Instant::now();
    loop {
        match rx.recv_timeout(PRUNE_EVERY) {
            Ok(Msg::Entry(e)) => {
                if let Err(err) = insert(db, tree, e) {
                    log::warn!("audit entry not stored: {err}");
                    continue;
                }
                count += 1;
                // The count limit as entries arrive: one removal per insert at most.
                if keep.max_entries > 0 && count > keep.max_entries {
                    if let Ok(Some(_)) = tree.pop_min() {
                        count -= 1;
                    }
                }
            }
            Ok(Msg::Settle(done)) => {
                let _ = done.send(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            prune_old(tree, keep, &mut count);
            pruned = Instant::now();
        }
    }
    if let Err(e) = tree.flush() {
        log::warn!("audit log not flushed: {e}");
    }
}

fn insert(db: &sled::Db, tree: &sled::Tree, mut e: Entry) -> Result<(), String> {
    e.id = db.generate_id().map_err(|e| e.to_string())? + 1;
    let value = serde_json::to_vec(&e).map_err(|e| e.to_string())?;
    tree.insert(e.id.to_be_bytes(), value).map_err(|e| e.to_string())?;
    Ok(())
}

/// Removes entries past the age limit and beyond the count limit, oldest first.
fn prune_old(tree: &sled::Tree, keep: &AuditConfig, count: &mut u64) {
    let cutoff = match keep.keep_days {
        0 => 0,
        days => crate::clock::now_secs().saturating_sub(days.saturating_mul(86_400)),
    };
    while let Ok(Some((key, value))) = tree.first() {
        let too_many = keep.max_entries > 0 && *count > keep.max_entries;
        let too_old = serde_json::from_slice::<Entry>(&value).map_or(true, |e| e.time < cutoff);
        if !too_many && !too_old {
            break;
        }
        if tree.remove(key).is_err() {
            break;
        }
        *count = count.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: u64, user: &str, action: &str, repo: Option<&str>) -> Entry {
        Entry {
            id: 0,
            time,
            user: user.into(),
            action: action.into(),
            target: repo.unwrap_or(user).into(),
            repository: repo.map(str::to_string),
            account: None,
            address: None,
            detail: serde_json::Value::Null,
        }
    }

    fn store() -> (sled::Db, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let tree = db.open_tree("audit").expect("tree");
        (db, tree)
    }

    /// Pages run newest first and chain through `next`; filters take families of actions.
    #[test]
    fn pages_and_filters() {
        let (db, tree) = store();
        let now = crate::clock::now_secs();
        for _ in 0..5 {
            insert(&db, &tree, entry(now, "alice", "tag.push", Some("alice/app"))).expect("insert");
            insert(&db, &tree, entry(now, "bob", "user.create", None)).expect("insert");
        }
        let q = |f: fn(&mut Query)| {
            let mut q = Query::default();
            f(&mut q);
            q
        };
        let first = scan(&tree, &q(|q| q.limit = Some(3)), |_| true).expect("scan");
        assert_eq!(first.entries.len(), 3);
        assert!(first.entries.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let mut seen: Vec<u64> = first.entries.iter().map(|e| e.id).collect();
        let mut before = first.next;
        while let Some(b) = before {
            let page = scan(
                &tree,
                &Query {
                    before: Some(b),
                    limit: Some(3),
                    ..Query::default()
                },
                |_| true,
            )
            .expect("scan");
            seen.extend(page.entries.iter().map(|e| e.id));
            before = page.next;
        }
        assert_eq!(seen.len(), 10, "every entry once: {seen:?}");
        let users = scan(&tree, &q(|q| q.action = Some("user".into())), |_| true).expect("scan");
        assert_eq!(users.entries.len(), 5);
        let none = scan(&tree, &q(|q| q.action = Some("use".into())), |_| true).expect("scan");
        assert!(none.entries.is_empty(), "a prefix must end at a dot");
        let repo = scan(&tree, &q(|q| q.repository = Some("alice/app".into())), |e| {
            e.user == "alice"
        })
        .expect("scan");
        assert_eq!(repo.entries.len(), 5);
        let hidden = scan(&tree, &Query::default(), |e| e.user == "nobody").expect("scan");
        assert!(hidden.entries.is_empty());
    }

    /// Old entries and entries beyond the count go, oldest first.
    #[test]
    fn pruning_keeps_the_newest() {
        let (db, tree) = store();
        let now = crate::clock::now_secs();
        insert(&db, &tree, entry(now - 10 * 86_400, "old", "tag.push", None)).expect("insert");
        for _ in 0..4 {
            insert(&db, &tree, entry(now, "new", "tag.push", None)).expect("insert");
        }
        let mut count = 5;
        let keep = AuditConfig {
            keep_days: 5,
            max_entries: 3,
        };
        prune_old(&tree, &keep, &mut count);
        assert_eq!((count, tree.len()), (3, 3));
        let left = scan(&tree, &Query::default(), |_| true).expect("scan");
        assert!(left.entries.iter().all(|e| e.user == "new"));
    }
}
