//! Webhooks: after every push (and, for hooks that ask, every delete) each matching hook gets
//! the event as a signed JSON POST. Repositories' hooks are kept in the index (see
//! `index::webhooks`), managed by whoever manages the repository (`manage::webhooks`); the
//! operator's global hooks come from `registry.toml`.
//!
//! The request path never waits on the network: [`Webhooks::fire`] stores one delivery per
//! matching hook in the index database (one sled insert each, no fsync: sled writes it within
//! half a second, and at a clean stop) and wakes the sender, a task that sends due deliveries,
//! a few at once, each with a timeout, and retries with exponential backoff (see `sender`).
//! Deliveries still pending when the server stops are resumed when it starts again. A
//! registry-only process (`standalone = false`) has no index and sends no webhooks: hooks live
//! with the index, which hears of v1 pushes (their last index call) but not of v2 pushes to
//! other processes.

pub mod events;
mod sender;
pub mod target;

use crate::auth::Identity;
use crate::config::WebhooksConfig;
use crate::error::AppResult;
use crate::index::webhooks::{hook_key, Delivery, DeliveryStatus};
use crate::index::Index;
use crate::names::RepoName;
use crate::state::AppState;
use actix_web::HttpRequest;
use events::RequestInfo;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};

/// The events a hook may ask for.
pub const EVENTS: [&str; 2] = ["push", "delete"];
/// Deliveries kept per hook (the finished ones beyond go; pending ones stay until finished).
pub const KEEP_DELIVERIES: usize = 100;
/// Deliveries waiting at most, over every hook: beyond, new ones are recorded as failed, so a
/// receiver down for long under many pushes costs bounded memory.
const MAX_QUEUED: usize = 10_000;

pub fn check_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("`events` must name at least one of \"push\", \"delete\"".to_string());
    }
    match events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        Some(e) => Err(format!("unknown event {e:?}: known are \"push\" and \"delete\"")),
        None => Ok(()),
    }
}

/// The webhooks of this process: none without an index.
#[derive(Clone, Default)]
pub struct Webhooks {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    index: Index,
    config: WebhooksConfig,
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    /// This process (Distribution's `source.instanceID`).
    instance: String,
}

/// Due deliveries by time (milliseconds since the epoch), each key once.
#[derive(Default)]
struct Queue {
    due: BinaryHeap<Reverse<(u64, Vec<u8>)>>,
    queued: HashSet<Vec<u8>>,
}

/// What happened, for [`Webhooks::fire`].
pub struct Event {
    /// `push` or `delete`.
    pub kind: &'static str,
    /// In the audit log's words (`manifest.push`, `tag.delete`...).
    pub action: &'static str,
    pub repository: RepoName,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Where one delivery goes.
struct Dest {
    key: Vec<u8>,
    url: String,
    secret: String,
}

impl Webhooks {
    pub fn new(index: Option<&Index>, config: &WebhooksConfig) -> Webhooks {
        Webhooks {
            inner: index.map(|ix| {
                Arc::new(Inner {
                    index: ix.clone(),
                    config: config.clone(),
                    queue: Mutex::default(),
                    wake: tokio::sync::Notify::new(),
                    instance: events::uuid(),
                })
            }),
        }
    }

    /// Starts the sender, after queueing the deliveries a previous run left pending.
    pub async fn start(&self) {
        let Some(inner) = self.inner.clone() else { return };
        match inner.index.run(|ix| ix.pending_deliveries()).await {
            Ok(pending) => {
                if !pending.is_empty() {
                    log::info!("webhooks: resuming {} pending deliveries", pending.len());
                }
                for (key, due) in pending {
                    inner.enqueue(key, due.saturating_mul(1000));
                }
            }
            Err(e) => log::warn!("webhooks: cannot read the pending deliveries: {e}"),
        }
        match sender::Clients::new(&inner.config) {
            Ok(clients) => {
                actix_web::rt::spawn(sender::run(inner, clients));
            }
            Err(e) => log::error!("webhooks: cannot build the HTTP client, no webhook is sent: {e}"),
        }
    }

    /// Queues `event` for every matching hook; `body` builds the payload (asked only when a
    /// hook matches). Errors are logged: the change the event reports has happened already.
    async fn fire(
        &self,
        event: Event,
        body: impl FnOnce(&Index) -> AppResult<(String, &'static str)> + Send + 'static,
    ) {
        let Some(inner) = self.inner.clone() else { return };
        let me = inner.clone();
        let stored = inner.index.run(move |ix| me.store(ix, event, body)).await;
        match stored {
            Ok(keys) => {
                let now = now_ms();
                for key in keys {
                    inner.enqueue(key, now);
                }
            }
            Err(e) => log::warn!("webhooks: event not queued: {e}"),
        }
    }

    /// Sends a delivery again, as a new delivery of the same body (the same event id): the
    /// new delivery's id.
    pub async fn redeliver(&self, old: Delivery, hook_url: String, secret: String) -> AppResult<u64> {
        let Some(inner) = self.inner.clone() else {
            return Err(crate::error::AppError::not_found("This server has no index"));
        };
        let now = crate::clock::now_secs();
        let key = inner
            .index
            .run(move |ix| {
                let d = Delivery {
                    id: ix.next_id()?,
                    created: now,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    last_attempt: None,
                    response_code: None,
                    error: None,
                    next_attempt: Some(now),
                    url: hook_url,
                    secret,
                    ..old
                };
                ix.put_delivery(&d)?;
                Ok((d.key(), d.id))
            })
            .await?;
        inner.enqueue(key.0, now_ms());
        Ok(key.1)
    }
}

impl Inner {
    fn enqueue(&self, key: Vec<u8>, due_ms: u64) {
        if let Ok(mut q) = self.queue.lock() {
            if q.queued.insert(key.clone()) {
                q.due.push(Reverse((due_ms, key)));
            }
        }
        self.wake.notify_one();
    }

    fn queued(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.queued.len())
    }

    /// The hooks that want `event`: the repository's own, then the global ones.
    fn destinations(&self, ix: &Index, event: &Event) -> AppResult<Vec<Dest>> {
        let repo = event.repository.as_str();
        let mut out: Vec<Dest> = ix
            .hooks_of(repo)?
            .into_iter()
            .filter(|h| h.active && h.events.iter().any(|e| e == event.kind))
            .map(|h| Dest {
                key: hook_key(repo, h.id),
                url: h.url,
                secret: h.secret,
            })
            .collect();
        for (n, h) in self.config.hooks.iter().enumerate() {
            if h.events.iter().any(|e| e == event.kind) && crate::manage::retention::glob(&h.repositories, repo) {
                out.push(Dest {
                    key: hook_key("", n as u64 + 1),
                    url: h.url.clone(),
                    secret: h.secret.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Stores one pending delivery per hook that wants `event`; their keys.
    fn store(
        &self,
        ix: &Index,
        event: Event,
        body: impl FnOnce(&Index) -> AppResult<(String, &'static str)>,
    ) -> AppResult<Vec<Vec<u8>>> {
        let dests = self.destinations(ix, &event)?;
        if dests.is_empty() {
            return Ok(Vec::new());
        }
        let (body, content_type) = body(ix)?;
        let now = crate::clock::now_secs();
        let mut keys = Vec::with_capacity(dests.len());
        for dest in dests {
            let full = self.queued() + keys.len() >= MAX_QUEUED;
            let d = Delivery {
                id: ix.next_id()?,
                hook_key: dest.key,
                event: event.kind.to_string(),
                action: event.action.to_string(),
                repository: event.repository.to_string(),
                tag: event.tag.clone(),
                digest: event.digest.clone(),
                created: now,
                status: if full {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Pending
                },
                attempts: 0,
                last_attempt: None,
                response_code: None,
                error: full.then(|| format!("not sent: {MAX_QUEUED} deliveries were already waiting")),
                next_attempt: (!full).then_some(now),
                url: dest.url,
                secret: dest.secret,
                content_type: content_type.to_string(),
                body: body.clone(),
            };
            ix.put_delivery(&d)?;
            if full {
                log::warn!("webhooks: queue full, delivery {} to {} dropped", d.id, d.url);
            } else {
                keys.push(d.key());
            }
        }
        Ok(keys)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Distribution's `actor.name`: the account, empty when anonymous.
fn actor_name(who: &Identity) -> String {
    who.username().unwrap_or("").to_string()
}

fn request_info(state: &AppState, req: &HttpRequest) -> RequestInfo {
    let header = |name: &str| crate::http::header_str(req, name).unwrap_or("").to_string();
    let (scheme, origin_host) = crate::http::public_origin(&state.config, req);
    RequestInfo {
        id: events::uuid(),
        addr: state
            .gate
            .client_address(req)
            .map(|a| a.to_string())
            .unwrap_or_default(),
        host: header("host"),
        method: req.method().to_string(),
        useragent: header("user-agent"),
        scheme,
        origin_host,
    }
}

/// A manifest pushed over v2: one event, whatever the number of tags (the first is named).
pub async fn manifest_pushed(
    state: &AppState,
    req: &HttpRequest,
    who: &Identity,
    repo: &RepoName,
    pushed: &crate::registry::v2::repositories::PushedManifest,
    tags: &[crate::names::TagName],
) {
    let Some(inner) = &state.webhooks.inner else { return };
    let info = request_info(state, req);
    let (actor, instance) = (actor_name(who), inner.instance.clone());
    let (digest, media_type, size) = (pushed.digest.to_string(), pushed.media_type.clone(), pushed.size);
    let tag = tags.first().map(|t| t.as_str().to_string());
    let event = Event {
        kind: "push",
        action: "manifest.push",
        repository: repo.clone(),
        tag: tag.clone(),
        digest: Some(digest.clone()),
    };
    let name = repo.to_string();
    state
        .webhooks
        .fire(event, move |_| {
            let target = events::Target {
                repository: &name,
                media_type: Some(&media_type),
                size: Some(size),
                digest: Some(&digest),
                tag: tag.as_deref(),
            };
            let v = events::envelope("push", &target, &info, &actor, &instance);
            Ok((v.to_string(), events::ENVELOPE))
        })
        .await;
}

/// A v1 push finished (its last index call, `PUT /v1/repositories/NAME/images`): one event
/// naming the images the client listed (or, when it listed none, the repository's) and the
/// tags on them, newest first.
pub async fn v1_pushed(state: &AppState, req: &HttpRequest, who: &Identity, repo: &RepoName, listed: Vec<String>) {
    let Some(inner) = state.webhooks.inner.clone() else {
        return;
    };
    // Reading the tags costs a storage read per tag: only for a repository with a hook.
    let probe = Event {
        kind: "push",
        action: "image.push",
        repository: repo.clone(),
        tag: None,
        digest: None,
    };
    let me = inner.clone();
    let wanted = inner
        .index
        .run(move |ix| Ok(!me.destinations(ix, &probe)?.is_empty()))
        .await;
    if !wanted.unwrap_or(true) {
        return;
    }
    // The tags, from storage when this process holds it (an index-only process does not).
    let tags = match state.config.registry {
        true => v1_tags(state, repo).await,
        false => Vec::new(),
    };
    let info = request_info(state, req);
    let pusher = actor_name(who);
    let event = Event {
        kind: "push",
        action: "image.push",
        repository: repo.clone(),
        tag: None,
        digest: None,
    };
    let name = repo.clone();
    state
        .webhooks
        .fire(event, move |ix| {
            let record = ix.repo(&name)?;
            let images: Vec<String> = match (listed.is_empty(), &record) {
                (false, _) | (true, None) => listed,
                (true, Some(r)) => r.images.iter().map(|i| i.id.clone()).collect(),
            };
            let tags: Vec<String> = tags
                .into_iter()
                .filter(|(_, id)| images.contains(id))
                .map(|(t, _)| t)
                .collect();
            let (owner, private, description, created) = record.as_ref().map_or((pusher.as_str(), false, "", 0), |r| {
                (r.owner.as_str(), r.private, r.description.as_str(), r.created)
            });
            let hub = events::HubRepo {
                name: name.as_str(),
                owner,
                private,
                description,
                created,
                star_count: star_count(ix, name.as_str()),
            };
            let v = events::hub_push(&hub, &images, &tags, &pusher, &info);
            Ok((v.to_string(), events::HUB))
        })
        .await;
}

/// The repository's v1 tags and their images, the most recently pushed first.
async fn v1_tags(state: &AppState, repo: &RepoName) -> Vec<(String, String)> {
    let Ok(list) = state.v1_repos.list(repo).await else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (tag, id) in list {
        let pushed = match crate::names::TagName::parse(&tag) {
            Ok(t) => state.v1_repos.tag_pushed(repo, &t).await.ok().flatten().unwrap_or(0),
            Err(_) => 0,
        };
        out.push((pushed, tag, id));
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    out.into_iter().map(|(_, t, id)| (t, id)).collect()
}

/// A repository's stars, for the Hub payload.
fn star_count(ix: &Index, repo: &str) -> u64 {
    ix.star_count(repo).unwrap_or(0)
}

/// What a delete removed.
pub enum Deleted<'a> {
    Tag { tag: &'a str, digest: Option<&'a str> },
    Manifest { digest: &'a str },
    Repository,
}

/// Something was deleted (over v1, v2 or the management API), by `user`: an event in
/// Distribution's envelope (`action: delete`) for the hooks that asked for deletes.
pub async fn deleted(state: &AppState, req: Option<&HttpRequest>, user: &str, repo: &RepoName, what: Deleted<'_>) {
    let Some(inner) = &state.webhooks.inner else { return };
    let info = match req {
        Some(r) => request_info(state, r),
        None => RequestInfo {
            id: events::uuid(),
            method: "DELETE".into(),
            scheme: "http".into(),
            ..RequestInfo::default()
        },
    };
    let (action, tag, digest) = match what {
        Deleted::Tag { tag, digest } => ("tag.delete", Some(tag.to_string()), digest.map(str::to_string)),
        Deleted::Manifest { digest } => ("manifest.delete", None, Some(digest.to_string())),
        Deleted::Repository => ("repository.delete", None, None),
    };
    let event = Event {
        kind: "delete",
        action,
        repository: repo.clone(),
        tag: tag.clone(),
        digest: digest.clone(),
    };
    let (name, actor, instance) = (repo.to_string(), user.to_string(), inner.instance.clone());
    state
        .webhooks
        .fire(event, move |_| {
            let target = events::Target {
                repository: &name,
                media_type: None,
                size: None,
                digest: digest.as_deref(),
                tag: tag.as_deref(),
            };
            let v = events::envelope("delete", &target, &info, &actor, &instance);
            Ok((v.to_string(), events::ENVELOPE))
        })
        .await;
}

/// The user name a v1/v2 client is recorded under in delete events.
pub fn client_name(who: &Identity) -> String {
    actor_name(who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked() {
        assert!(check_events(&["push".into(), "delete".into()]).is_ok());
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["pull".into()]).is_err());
    }
}
