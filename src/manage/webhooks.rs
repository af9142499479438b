//! Repositories' webhooks through the management API: whoever manages a repository (its
//! owner, an admin) lists, adds, changes and removes its hooks, reads their deliveries and
//! sends one again. Others are answered as for any repository they may not manage: 404 when
//! they may not read it, 403 when they may. Admins also read the global hooks of
//! `registry.toml` and their deliveries. A secret is shown once, when it is made.

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::index::webhooks::{hook_key, Delivery, DeliveryStatus, Hook};
use crate::state::AppState;
use crate::webhooks::{check_events, target, KEEP_DELIVERIES};
use serde::{Deserialize, Serialize};

/// Hooks one repository may have.
pub const MAX_HOOKS: usize = 20;

/// A hook as the API shows it (never its secret).
#[derive(Debug, Serialize)]
pub struct HookView {
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub created: u64,
    /// The newest delivery's status (`pending`, `delivered`, `failed`), none before the first.
    pub last_status: Option<DeliveryStatus>,
    pub last_response_code: Option<u16>,
    pub last_delivery: Option<u64>,
}

/// A hook just made, with its secret (the only time it is shown).
#[derive(Debug, Serialize)]
pub struct Created {
    #[serde(flatten)]
    pub hook: HookView,
    pub secret: String,
}

#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: u64,
    pub event: String,
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
    pub next_attempt: Option<u64>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> DeliveryView {
        DeliveryView {
            id: d.id,
            event: d.event,
            action: d.action,
            repository: d.repository,
            tag: d.tag,
            digest: d.digest,
            created: d.created,
            status: d.status,
            attempts: d.attempts,
            last_attempt: d.last_attempt,
            response_code: d.response_code,
            error: d.error,
            next_attempt: d.next_attempt,
        }
    }
}

/// A new hook, or a change to one (every field optional in a change).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookChange {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

fn view(ix: &crate::index::Index, hook: Hook) -> AppResult<HookView> {
    let last = ix.deliveries_of(&hook_key(&hook.repository, hook.id), 1)?.pop();
    Ok(HookView {
        id: hook.id,
        url: hook.url,
        events: hook.events,
        active: hook.active,
        created: hook.created,
        last_status: last.as_ref().map(|d| d.status),
        last_response_code: last.as_ref().and_then(|d| d.response_code),
        last_delivery: last.map(|d| d.created),
    })
}

fn check(state: &AppState, change: &HookChange) -> AppResult<()> {
    if let Some(url) = &change.url {
        target::check_repository_url(url, state.config.webhooks.allow_loopback).map_err(AppError::bad_request)?;
    }
    if let Some(events) = &change.events {
        check_events(events).map_err(AppError::bad_request)?;
    }
    if let Some(secret) = &change.secret {
        if secret.is_empty() || secret.len() > 256 {
            return Err(AppError::bad_request("A secret must have 1 to 256 bytes"));
        }
    }
    Ok(())
}

fn absent() -> AppError {
    AppError::not_found("No such webhook")
}

pub async fn list(state: &AppState, actor: &Actor, name: &str) -> AppResult<Vec<HookView>> {
    let (repo, _) = super::repos::managed(state, actor, name).await?;
    super::repos::index(state)?
        .run(move |ix| ix.hooks_of(repo.as_str())?.into_iter().map(|h| view(ix, h)).collect())
        .await
}

pub async fn create(state: &AppState, actor: &Actor, name: &str, change: HookChange) -> AppResult<Created> {
    let (repo, _) = super::repos::managed(state, actor, name).await?;
    check(state, &change)?;
    let url = change
        .url
        .ok_or_else(|| AppError::bad_request("A webhook needs a `url`"))?;
    let secret = change.secret.unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
    let (events, active) = (
        change.events.unwrap_or_else(|| vec!["push".to_string()]),
        change.active.unwrap_or(true),
    );
    let shown = secret.clone();
    let hook = super::repos::index(state)?
        .write(move |ix| {
            if ix.hooks_of(repo.as_str())?.len() >= MAX_HOOKS {
                return Err(AppError::bad_request(format!(
                    "A repository has at most {MAX_HOOKS} webhooks"
                )));
            }
            let hook = Hook {
                id: ix.next_id()?,
                repository: repo.to_string(),
                url: url.trim().to_string(),
                secret,
                events,
                active,
                created: crate::clock::now_secs(),
            };
            ix.put_hook(&hook)?;
            view(ix, hook)
        })
        .await?;
    log::info!("manage: {} added webhook {} to {name}", actor.name(), hook.id);
    Ok(Created { hook, secret: shown })
}

pub async fn update(state: &AppState, actor: &Actor, name: &str, id: u64, change: HookChange) -> AppResult<HookView> {
    let (repo, _) = super::repos::managed(state, actor, name).await?;
    check(state, &change)?;
    super::repos::index(state)?
        .write(move |ix| {
            let mut hook = ix.hook(repo.as_str(), id)?.ok_or_else(absent)?;
            if let Some(url) = change.url {
                hook.url = url.trim().to_string();
            }
            if let Some(secret) = change.secret {
                hook.secret = secret;
            }
            if let Some(events) = change.events {
                hook.events = events;
            }
            if let Some(active) = change.active {
                hook.active = active;
            }
            ix.put_hook(&hook)?;
            view(ix, hook)
        })
        .await
}

pub async fn delete(state: &AppState, actor: &Actor, name: &str, id: u64) -> AppResult<()> {
    let (repo, _) = super::repos::managed(state, actor, name).await?;
    let found = super::repos::index(state)?
        .write(move |ix| ix.delete_hook(repo.as_str(), id))
        .await?;
    if !found {
        return Err(absent());
    }
    log::info!("manage: {} removed webhook {id} of {name}", actor.name());
    Ok(())
}

/// A hook's deliveries, newest first (at most [`KEEP_DELIVERIES`]).
pub async fn deliveries(state: &AppState, actor: &Actor, name: &str, id: u64) -> AppResult<Vec<DeliveryView>> {
    let (repo, _) = super::repos::managed(state, actor, name).await?;
    super::repos::index(state)?
        .run(move |ix| {
            ix.hook(repo.as_str(), id)?.ok_or_else(absent)?;
            let list = ix.deliveries_of(&hook_key(repo.as_str(), id), KEEP_DELIVERIES)?;
            Ok(list.into_iter().map(DeliveryView::from).collect())
        })
        .await
}

/// Sends a delivery's event again, to the hook as it is now: the new delivery's id.
pub async fn redeliver(state: &AppState, actor: &Actor, name: &str, id: u64, delivery: u64) -> AppResult<u64> {
    let (repo, _) = super::repos::managed(state, actor, name).await?;
    let (old, hook) = super::repos::index(state)?
        .run(move |ix| {
            let hook = ix.hook(repo.as_str(), id)?.ok_or_else(absent)?;
            let mut key = hook_key(repo.as_str(), id);
            key.extend_from_slice(&delivery.to_be_bytes());
            let old = ix
                .delivery(&key)?
                .ok_or_else(|| AppError::not_found("No such delivery"))?;
            Ok((old, hook))
        })
        .await?;
    state.webhooks.redeliver(old, hook.url, hook.secret).await
}

/// A global hook as admins see it: where it sends and what, never its secret.
#[derive(Debug, Serialize)]
pub struct GlobalView {
    /// Its place in `registry.toml`, from 1.
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    pub repositories: String,
    pub signed: bool,
}

pub fn globals(state: &AppState, actor: &Actor) -> AppResult<Vec<GlobalView>> {
    actor.require_admin()?;
    super::repos::index(state)?;
    Ok(state
        .config
        .webhooks
        .hooks
        .iter()
        .enumerate()
        .map(|(n, h)| GlobalView {
            id: n as u64 + 1,
            url: h.url.clone(),
            events: h.events.clone(),
            repositories: h.repositories.clone(),
            signed: !h.secret.is_empty(),
        })
        .collect())
}

pub async fn global_deliveries(state: &AppState, actor: &Actor, id: u64) -> AppResult<Vec<DeliveryView>> {
    actor.require_admin()?;
    super::repos::index(state)?
        .run(move |ix| {
            let list = ix.deliveries_of(&hook_key("", id), KEEP_DELIVERIES)?;
            Ok(list.into_iter().map(DeliveryView::from).collect())
        })
        .await
}
