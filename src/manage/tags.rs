//! Tags of a repository in the management API: the list (both protocols, with digest, size,
//! platforms, push time and pull statistics), paged by tag name; deleting a tag, or the
//! manifest (v1: the image) it points at with every tag on it. Reading needs read access (a
//! private repository the actor may not read is absent); deleting needs what deleting the
//! repository needs (owner, namespace, admin). Retention deletes through `remove`, too.

use super::{Actor, Viewer};
use crate::audit::{self, Action, Target};
use crate::digest::Digest;
use crate::error::{AppError, AppResult};
use crate::index::Access;
use crate::names::{RepoName, TagName};
use crate::registry::tags::{self, Protocol, TagRef};
use crate::registry::v2::manifest;
use crate::registry::v2::repositories::Reference;
use crate::state::AppState;
use actix_web::HttpRequest;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

#[derive(Debug, Serialize)]
pub struct TagView {
    pub name: String,
    pub protocol: Protocol,
    /// v2: the manifest digest; v1: the image id.
    pub digest: String,
    pub media_type: Option<String>,
    pub size: u64,
    pub platforms: Vec<String>,
    /// Seconds since the epoch of the tag's last write.
    pub pushed: Option<u64>,
    pub pulls: u64,
    pub last_pull: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct TagPage {
    pub repository: String,
    pub tags: Vec<TagView>,
    /// The `last` to ask for the next page with; `None` on the last page.
    pub next: Option<String>,
}

/// What a deletion removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub tags: Vec<TagRef>,
    pub manifests: Vec<String>,
}

/// The repository, if the actor may read it and it exists; otherwise 404.
pub(crate) async fn readable(state: &AppState, viewer: &Viewer, name: &str) -> AppResult<RepoName> {
    let repo = RepoName::parse(name)?;
    let absent = || AppError::not_found("Repository not found");
    if !viewer.may(state, &repo, Access::Read).await? {
        return Err(absent());
    }
    if !state.config.registry {
        return Err(AppError::not_found(
            "This server has no registry storage (registry = false)",
        ));
    }
    if state.gate.repo_meta(&repo).await?.is_none() && !state.v2_repos.exists(&repo).await? {
        return Err(absent());
    }
    Ok(repo)
}

/// The repository, if the actor may delete in it: 404 when they may not read it, 403 when they
/// may read but not delete.
async fn deletable(state: &AppState, actor: &Actor, name: &str) -> AppResult<RepoName> {
    let repo = readable(state, &Viewer::Actor(actor.clone()), name).await?;
    if !actor.may(state, &repo, Access::Delete).await? {
        return Err(AppError::forbidden(
            "Only the owner or an administrator may delete tags of this repository",
        ));
    }
    Ok(repo)
}

/// Up to `n` tag names after `last` (each name with its v1 and v2 rows).
pub async fn list(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    n: Option<usize>,
    last: Option<&str>,
) -> AppResult<TagPage> {
    let n = n.unwrap_or(DEFAULT_PAGE);
    if n == 0 || n > MAX_PAGE {
        return Err(AppError::bad_request(format!("n must be between 1 and {MAX_PAGE}")));
    }
    let repo = readable(state, viewer, name).await?;
    // Names first (two listings), then what only the page's tags point at: a page of a
    // repository with thousands of tags reads that page's tags, not every tag.
    let all = tags::names(&state.v2_repos, &state.v1_repos, &repo).await?;
    let mut names: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    names.dedup();
    let after: Vec<&str> = names.into_iter().filter(|t| last.is_none_or(|l| *t > l)).collect();
    let page: BTreeSet<&str> = after.iter().take(n).copied().collect();
    let next = (after.len() > n).then(|| after[n - 1].to_string());
    let wanted: Vec<_> = all.iter().filter(|(t, _)| page.contains(t.as_str())).cloned().collect();
    let all = tags::resolve(&state.v2_repos, &state.v1_repos, &repo, &wanted).await?;
    let stats = match &state.index {
        Some(ix) => state.pulls.of(ix, repo.as_str()).await?,
        None => Default::default(),
    };
    let mut out = Vec::new();
    // Tags often share a target (`latest` and a version): each target is read once a page.
    let mut details: BTreeMap<(Protocol, &str), tags::TagDetail> = BTreeMap::new();
    for t in all.iter().filter(|t| page.contains(t.name.as_str())) {
        let detail = match details.get(&(t.protocol, t.digest.as_str())) {
            Some(d) => d.clone(),
            None => {
                let d = tags::detail(&state.v2_repos, &state.images, &repo, t).await?;
                details.insert((t.protocol, t.digest.as_str()), d.clone());
                d
            }
        };
        let pulls = stats.tag(&t.name);
        out.push(TagView {
            name: t.name.clone(),
            protocol: t.protocol,
            digest: t.digest.clone(),
            media_type: detail.media_type,
            size: detail.size,
            platforms: detail.platforms,
            pushed: t.pushed,
            pulls: pulls.count,
            last_pull: pulls.last,
        });
    }
    Ok(TagPage {
        repository: repo.to_string(),
        tags: out,
        next,
    })
}

/// `DELETE .../-/tags/{tag}`: the tag (in `protocol`, or both); with `manifest`, what it points
/// at and every tag on that (v2: the manifest, its tags and referrer entry; v1: every tag on
/// the same image, whose bytes stay while the repository holds it). 404 when no such tag.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    name: &str,
    tag: &str,
    manifest: bool,
    protocol: Option<Protocol>,
) -> AppResult<Removed> {
    let repo = deletable(state, actor, name).await?;
    TagName::parse(tag)?;
    let all = tags::list(&state.v2_repos, &state.v1_repos, &repo).await?;
    let chosen: Vec<&TagRef> = all
        .iter()
        .filter(|t| t.name == tag && protocol.is_none_or(|p| p == t.protocol))
        .collect();
    if chosen.is_empty() {
        return Err(AppError::not_found(format!("Tag not found: {tag}")));
    }
    let mut plan = Removed::default();
    for t in &chosen {
        if manifest {
            plan.tags.extend(
                all.iter()
                    .filter(|o| o.protocol == t.protocol && o.digest == t.digest)
                    .cloned(),
            );
        } else {
            plan.tags.push((*t).clone());
        }
    }
    plan.tags
        .sort_by(|a, b| (&a.name, a.protocol).cmp(&(&b.name, b.protocol)));
    plan.tags.dedup();
    if manifest {
        plan.manifests = orphaned(state, &repo, &all, &plan.tags).await?;
    }
    let done = remove(state, &repo, &plan).await?;
    log::info!(
        "manage: {} deleted {} tags and {} manifests of {repo}",
        actor.name(),
        done.tags.len(),
        done.manifests.len()
    );
    Ok(done)
}

/// The v2 manifests deleting the `doomed` tags (of `all`, the repository's tags) leaves
/// unreached: each doomed tag's manifest and, for an index, its children, unless a kept tag
/// reaches it (directly or as a child of a kept index).
pub async fn orphaned(state: &AppState, repo: &RepoName, all: &[TagRef], doomed: &[TagRef]) -> AppResult<Vec<String>> {
    let v2 = |t: &&TagRef| t.protocol == Protocol::V2;
    let kept_roots: BTreeSet<&str> = all
        .iter()
        .filter(v2)
        .filter(|t| !doomed.contains(t))
        .map(|t| t.digest.as_str())
        .collect();
    let mut kept = BTreeSet::new();
    for d in &kept_roots {
        kept.insert(d.to_string());
        kept.extend(children(state, repo, d).await?);
    }
    let mut out = BTreeSet::new();
    for t in doomed.iter().filter(v2) {
        out.insert(t.digest.clone());
        out.extend(children(state, repo, &t.digest).await?);
    }
    Ok(out.into_iter().filter(|m| !kept.contains(m)).collect())
}

/// The child manifests of an index stored in the repository (none for anything else).
async fn children(state: &AppState, repo: &RepoName, digest: &str) -> AppResult<Vec<String>> {
    let Ok(d) = digest.parse::<Digest>() else {
        return Ok(Vec::new());
    };
    let Some(m) = state.v2_repos.manifest(repo, &Reference::Digest(d)).await? else {
        return Ok(Vec::new());
    };
    if !manifest::is_index(&m.media_type) {
        return Ok(Vec::new());
    }
    Ok(manifest::outline(&m.body)
        .1
        .into_iter()
        .map(|c| c.digest.to_string())
        .collect())
}

/// The blobs a stored manifest references (none if it is gone or does not parse).
async fn blobs_of(state: &AppState, repo: &RepoName, d: &Digest) -> AppResult<Vec<Digest>> {
    let found = state.v2_repos.manifest(repo, &Reference::Digest(d.clone())).await?;
    Ok(found
        .and_then(|m| manifest::parse(&m.body, &m.media_type).ok())
        .map(|p| p.blobs)
        .unwrap_or_default())
}

/// Deletes the planned tags (each only if it still points where the plan saw it: a tag pushed
/// again meanwhile stays) and manifests, and forgets the pull statistics of tag names left in
/// neither protocol. Returns what was deleted.
pub async fn remove(state: &AppState, repo: &RepoName, plan: &Removed) -> AppResult<Removed> {
    let mut done = Removed::default();
    for t in &plan.tags {
        let Ok(tag) = TagName::parse(&t.name) else { continue };
        let removed = match t.protocol {
            Protocol::V2 => {
                let now = state.v2_repos.resolve_tag(repo, &tag).await?.map(|d| d.to_string());
                now.as_deref() == Some(t.digest.as_str()) && state.v2_repos.untag(repo, &tag).await?
            }
            Protocol::V1 => {
                let now = state.v1_repos.get(repo, &tag).await?.map(|id| id.to_string());
                now.as_deref() == Some(t.digest.as_str()) && state.v1_repos.delete(repo, &tag).await.is_ok()
            }
        };
        if removed {
            done.tags.push(t.clone());
        }
    }
    // The blobs only deleted manifests referenced lose their links too, so the next gc frees
    // them (links are references of their own: a push links its blobs before its manifest).
    let mut dropped: BTreeSet<Digest> = BTreeSet::new();
    for m in &plan.manifests {
        let Ok(d) = m.parse::<Digest>() else { continue };
        dropped.extend(blobs_of(state, repo, &d).await?);
        if state.v2_repos.delete_manifest_and_tags(repo, &d).await? {
            done.manifests.push(m.clone());
        }
    }
    if !done.manifests.is_empty() {
        for d in state.v2_repos.manifest_digests(repo).await? {
            for b in blobs_of(state, repo, &d).await? {
                dropped.remove(&b);
            }
        }
        let mut unlinked = 0;
        for b in &dropped {
            if state.v2_repos.unlink_blob(repo, b).await? {
                unlinked += 1;
            }
        }
        log::debug!("{repo}: unlinked {unlinked} blobs no manifest left refers to");
        // Quota usage counts referenced blobs: recount after references went away.
        state.quotas.forget().await;
    }
    if let Some(ix) = &state.index {
        let left = tags::list(&state.v2_repos, &state.v1_repos, repo).await?;
        let gone: BTreeSet<&str> = done
            .tags
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !left.iter().any(|l| l.name == *n))
            .collect();
        for name in gone {
            state.pulls.forget(ix, repo.as_str(), Some(name)).await?;
        }
    }
    Ok(done)
}

/// Sends what a deletion removed to the webhooks that asked for deletes: one event per tag
/// and per manifest.
pub async fn announce_removed(
    state: &AppState,
    req: Option<&HttpRequest>,
    actor: &Actor,
    repo: &RepoName,
    done: &Removed,
) {
    use crate::webhooks::{deleted, Deleted};
    for t in &done.tags {
        let what = Deleted::Tag {
            tag: &t.name,
            // A v1 tag's is an image id, not a digest.
            digest: matches!(t.protocol, crate::registry::tags::Protocol::V2).then_some(t.digest.as_str()),
        };
        deleted(state, req, actor.name(), repo, what).await;
    }
    for m in &done.manifests {
        deleted(state, req, actor.name(), repo, Deleted::Manifest { digest: m }).await;
    }
}

/// Puts what a deletion removed in the audit log: one entry per tag and per manifest, with the
/// retention policy that decided it, if one did.
pub fn audit_removed(
    state: &AppState,
    req: Option<&HttpRequest>,
    actor: &Actor,
    repo: &RepoName,
    done: &Removed,
    policy: Option<&str>,
) {
    for t in &done.tags {
        let detail = serde_json::json!({"protocol": t.protocol, "digest": t.digest, "retention": policy});
        let target = Target::tag(repo, &t.name).detail(detail);
        audit::by_actor(state, req, actor, Action::TagDelete, target);
    }
    for m in &done.manifests {
        let target = Target::digest(repo, m).detail(serde_json::json!({"retention": policy}));
        audit::by_actor(state, req, actor, Action::ManifestDelete, target);
    }
}
