//! Repositories: list (with size, tags and last push), show, delete, visibility, description
//! and collaborators. Admins manage every repository; an account manages those it owns or
//! that are in its namespace, and lists those too plus the ones it collaborates on. A
//! repository the actor may not read is answered as absent, as everywhere else.

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::index::{Access, Index, Repo};
use crate::names::RepoName;
use crate::registry::usage;
use crate::state::AppState;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct RepoView {
    pub name: String,
    pub owner: String,
    pub private: bool,
    pub description: String,
    pub collaborators: Vec<String>,
    pub created: u64,
    pub updated: u64,
    pub tags: usize,
    /// Bytes of the blobs it references (a blob shared with other repositories counts here
    /// too; `usage` tells unique from shared).
    pub size: u64,
    pub last_push: Option<u64>,
    /// Pulls counted (see `manage::pulls` for what counts) and the last one's time.
    pub pulls: u64,
    pub last_pull: Option<u64>,
}

/// The index, which every repository operation needs.
pub fn index(state: &AppState) -> AppResult<&Index> {
    state
        .index
        .as_ref()
        .ok_or_else(|| AppError::not_found("This server has no index (standalone = false): manage it on the index"))
}

pub(crate) async fn view(state: &AppState, record: &Repo) -> AppResult<RepoView> {
    let name = RepoName::parse(&record.name)?;
    let contents = if state.config.registry {
        usage::contents(&state.storage, &state.v1_repos, &state.images, &name).await?
    } else {
        usage::RepoContents::default()
    };
    let pulls = state.pulls.of(index(state)?, &record.name).await?.repository;
    Ok(RepoView {
        name: record.name.clone(),
        owner: record.owner.clone(),
        private: record.private,
        description: record.description.clone(),
        collaborators: record.collaborators.clone(),
        created: record.created,
        updated: record.updated,
        tags: contents.tags(),
        size: contents.size(),
        last_push: contents.last_push,
        pulls: pulls.count,
        last_pull: pulls.last,
    })
}

fn lists(actor: &Actor, r: &Repo) -> bool {
    match actor {
        Actor::Operator | Actor::Schedule => true,
        Actor::User(p) => {
            p.admin
                || r.owner == p.name
                || r.name.split('/').next() == Some(p.name.as_str())
                || r.collaborators.contains(&p.name)
        }
    }
}

/// The repositories the actor manages or collaborates on (admins: all), optionally only those
/// of one namespace, in name order.
pub async fn list(state: &AppState, actor: &Actor, namespace: Option<&str>) -> AppResult<Vec<RepoView>> {
    let ix = index(state)?;
    let listing = ix.listing()?;
    let mut out = Vec::new();
    for r in listing.iter().filter(|r| lists(actor, r)) {
        if namespace.is_some_and(|ns| r.name.split('/').next() != Some(ns)) {
            continue;
        }
        out.push(view(state, r).await?);
    }
    Ok(out)
}

/// The record of a repository the actor may manage; absent (404) when they may not read it,
/// 403 when they may read but not manage it.
pub(crate) async fn managed(state: &AppState, actor: &Actor, name: &str) -> AppResult<(RepoName, Repo)> {
    let ix = index(state)?;
    let repo = RepoName::parse(name)?;
    let absent = || AppError::not_found("Repository not found");
    let record = ix.repo(&repo)?.ok_or_else(absent)?;
    if !actor.may(state, &repo, Access::Delete).await? {
        return Err(if actor.may(state, &repo, Access::Read).await? {
            AppError::forbidden("Only the owner or an administrator may manage this repository")
        } else {
            absent()
        });
    }
    Ok((repo, record))
}

pub async fn show(state: &AppState, actor: &Actor, name: &str) -> AppResult<RepoView> {
    let (_, record) = managed(state, actor, name).await?;
    view(state, &record).await
}

pub async fn delete(state: &AppState, actor: &Actor, name: &str) -> AppResult<()> {
    let (repo, _) = managed(state, actor, name).await?;
    delete_by_name(state, repo.as_str(), actor.name()).await?;
    log::info!("manage: {} deleted repository {repo}", actor.name());
    Ok(())
}

/// Removes a repository whole: its tags, manifests and links in storage (the blobs go at the
/// next garbage collection) and its record, so it leaves search, the catalog and the UI.
pub async fn delete_by_name(state: &AppState, name: &str, by: &str) -> AppResult<()> {
    let repo = RepoName::parse(name)?;
    if state.config.registry {
        state.v1_repos.delete_repo(&repo).await?;
        state.quotas.forget().await;
    }
    // Before the record: the repository's hooks go with it.
    crate::webhooks::deleted(state, None, by, &repo, crate::webhooks::Deleted::Repository).await;
    let ix = index(state)?;
    state.pulls.forget(ix, repo.as_str(), None).await?;
    ix.write(move |ix| ix.delete_repo(&repo)).await?;
    Ok(())
}

pub async fn set_private(state: &AppState, actor: &Actor, name: &str, private: bool) -> AppResult<RepoView> {
    let (repo, _) = managed(state, actor, name).await?;
    let record = index(state)?
        .write(move |ix| {
            ix.update_repo(&repo, |r| {
                r.private = private;
                Ok(())
            })
        })
        .await?;
    log::info!(
        "manage: {} made {name} {}",
        actor.name(),
        if private { "private" } else { "public" }
    );
    view(state, &record).await
}

pub async fn set_description(state: &AppState, actor: &Actor, name: &str, description: String) -> AppResult<RepoView> {
    if description.len() > 4096 {
        return Err(AppError::bad_request("Description too long: at most 4096 bytes"));
    }
    let (repo, _) = managed(state, actor, name).await?;
    let record = index(state)?
        .write(move |ix| {
            ix.update_repo(&repo, |r| {
                r.description = description.clone();
                Ok(())
            })
        })
        .await?;
    view(state, &record).await
}

/// Adds (`add`) or removes a collaborator: an existing account, who may then push.
pub async fn set_collaborator(
    state: &AppState,
    actor: &Actor,
    name: &str,
    user: &str,
    add: bool,
) -> AppResult<RepoView> {
    let (repo, _) = managed(state, actor, name).await?;
    let ix = index(state)?;
    let who = user.to_string();
    if add && ix.run(move |ix| ix.user(&who)).await?.is_none() {
        return Err(AppError::not_found(format!("No such user: {user}")));
    }
    let user = user.to_string();
    let record = ix.write(move |ix| ix.set_collaborator(&repo, &user, add)).await?;
    view(state, &record).await
}
