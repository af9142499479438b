//! Browsing repositories: the list anyone may page through (public repositories, plus the
//! private ones the viewer may read), one repository's page, and an account's stars. A
//! private repository the viewer may not read is absent everywhere here, as on every route.
//!
//! Sorting by name or stars needs only the index; by pulls, the pull statistics (one scan);
//! by push time, one walk of each matching repository's keys. Sizes and tag counts are read
//! for the rows of the page only.

use super::{Actor, Viewer};
use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::index::{Access, Repo};
use crate::names::RepoName;
use crate::registry::usage;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;

pub const DEFAULT_PAGE: usize = 25;
pub const MAX_PAGE: usize = 100;

/// One repository in a list.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub owner: String,
    pub description: String,
    pub private: bool,
    pub stars: u64,
    /// Whether the viewer starred it (false for anonymous visitors).
    pub starred: bool,
    pub pulls: u64,
    pub last_pull: Option<u64>,
    pub last_push: Option<u64>,
    pub size: u64,
    pub tags: usize,
}

/// A repository's page: its row and what the viewer may do with it.
#[derive(Debug, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub row: Row,
    pub created: u64,
    pub updated: u64,
    /// How many comments it has.
    pub comments: u64,
    pub can_push: bool,
    pub can_manage: bool,
    /// Only for those who may manage it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collaborators: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub query: String,
    pub page: usize,
    pub n: usize,
    pub total: usize,
    pub results: Vec<Row>,
}

/// `?q=&n=&page=&sort=` as sent (parsed here, so every problem gets one 400 message).
#[derive(Debug, Default, Deserialize)]
pub struct BrowseQuery {
    pub q: Option<String>,
    pub n: Option<String>,
    pub page: Option<String>,
    pub sort: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Name,
    Stars,
    Pulls,
    Pushed,
}

/// A query parameter counted from 1 (a page size, a page number): `default` when absent, 400
/// when it is not a number from 1 to `max`.
pub(crate) fn number(raw: Option<&str>, what: &str, default: usize, max: usize) -> AppResult<usize> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(AppError::bad_request(format!(
            "{what} must be a number from 1 to {max}, not {raw:?}"
        ))),
    }
}

/// The records of `records` the viewer may read.
pub(crate) fn visible<'a>(
    state: &AppState,
    viewer: &Viewer,
    records: impl IntoIterator<Item = &'a Repo>,
) -> Vec<&'a Repo> {
    match viewer {
        Viewer::Anonymous => state.gate.visible(&Identity::Anonymous, records),
        Viewer::Actor(Actor::User(p)) => state.gate.visible(&Identity::User(p.clone()), records),
        Viewer::Actor(Actor::Operator | Actor::Schedule) => records.into_iter().collect(),
    }
}

/// The record of a repository the viewer may read; 404 when it is absent or they may not.
pub(crate) async fn readable(state: &AppState, viewer: &Viewer, name: &str) -> AppResult<(RepoName, Repo)> {
    let ix = super::repos::index(state)?;
    let repo = RepoName::parse(name)?;
    let absent = || AppError::not_found("Repository not found");
    let key = repo.clone();
    let record = ix.run(move |ix| ix.repo(&key)).await?.ok_or_else(absent)?;
    if !viewer.may(state, &repo, Access::Read).await? {
        return Err(absent());
    }
    Ok((repo, record))
}

async fn row(state: &AppState, viewer: &Viewer, record: &Repo) -> AppResult<(Row, super::repos::RepoView)> {
    let ix = super::repos::index(state)?;
    let view = super::repos::view(state, record).await?;
    let (name, user) = (record.name.clone(), viewer.username().map(str::to_string));
    let (stars, starred) = ix
        .run(move |ix| {
            let starred = match &user {
                Some(u) => ix.starred(&name, u)?,
                None => false,
            };
            Ok((ix.star_count(&name)?, starred))
        })
        .await?;
    let row = Row {
        name: view.name.clone(),
        owner: view.owner.clone(),
        description: view.description.clone(),
        private: view.private,
        stars,
        starred,
        pulls: view.pulls,
        last_pull: view.last_pull,
        last_push: view.last_push,
        size: view.size,
        tags: view.tags,
    };
    Ok((row, view))
}

/// `GET /api/v1/browse`: the repositories the viewer may read whose name or description holds
/// `q` (case-insensitive), sorted, one page.
pub async fn list(state: &AppState, viewer: &Viewer, query: &BrowseQuery) -> AppResult<Page> {
    let n = number(query.n.as_deref(), "n", DEFAULT_PAGE, MAX_PAGE)?;
    let page = number(query.page.as_deref(), "page", 1, usize::MAX)?;
    let sort = match query.sort.as_deref() {
        None | Some("name") => Sort::Name,
        Some("stars") => Sort::Stars,
        Some("pulls") => Sort::Pulls,
        Some("pushed") => Sort::Pushed,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "sort must be name, stars, pulls or pushed, not {other:?}"
            )))
        }
    };
    let q = query.q.clone().unwrap_or_default();
    let needle = q.trim().to_lowercase();
    let ix = super::repos::index(state)?;
    let listing = ix.run(|ix| ix.listing()).await?;
    let matching = listing
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&needle) || r.description.to_lowercase().contains(&needle));
    // The listing is in name order, which every other order falls back on (stable sorts).
    let mut hits = visible(state, viewer, matching);
    match sort {
        Sort::Name => {}
        Sort::Stars => {
            let counts = ix.run(|ix| ix.star_counts()).await?;
            hits.sort_by_key(|r| Reverse(counts.get(&r.name).copied().unwrap_or(0)));
        }
        Sort::Pulls => {
            let totals = state.pulls.totals(ix).await?;
            hits.sort_by_key(|r| Reverse(totals.get(&r.name).map_or(0, |s| s.count)));
        }
        Sort::Pushed => {
            let mut keyed = Vec::with_capacity(hits.len());
            for r in hits {
                let pushed = match (state.config.registry, RepoName::parse(&r.name)) {
                    (true, Ok(name)) => usage::last_push(&state.storage, &name).await?,
                    _ => None,
                };
                keyed.push((Reverse(pushed), r));
            }
            keyed.sort_by_key(|k| k.0);
            hits = keyed.into_iter().map(|(_, r)| r).collect();
        }
    }
    let total = hits.len();
    let mut results = Vec::new();
    for r in hits.into_iter().skip((page - 1).saturating_mul(n)).take(n) {
        results.push(row(state, viewer, r).await?.0);
    }
    Ok(Page {
        query: q,
        page,
        n,
        total,
        results,
    })
}

/// `GET /api/v1/browse/NAME`.
pub async fn detail(state: &AppState, viewer: &Viewer, name: &str) -> AppResult<Detail> {
    let (repo, record) = readable(state, viewer, name).await?;
    let (row, view) = row(state, viewer, &record).await?;
    let ix = super::repos::index(state)?;
    let key = record.name.clone();
    let comments = ix.run(move |ix| ix.comment_count(&key)).await?;
    let can_push = viewer.may(state, &repo, Access::Write).await?;
    let can_manage = viewer.may(state, &repo, Access::Delete).await?;
    Ok(Detail {
        row,
        created: view.created,
        updated: view.updated,
        comments,
        can_push,
        can_manage,
        collaborators: can_manage.then_some(view.collaborators),
    })
}

/// `GET /api/v1/stars`: the repositories the account starred that it may still read, in name
/// order (the operator has none).
pub async fn stars(state: &AppState, actor: &Actor) -> AppResult<Vec<Row>> {
    let Actor::User(p) = actor else { return Ok(Vec::new()) };
    let ix = super::repos::index(state)?;
    let user = p.name.clone();
    let records: Vec<Repo> = ix
        .run(move |ix| {
            let mut out = Vec::new();
            for name in ix.stars_of(&user)? {
                if let Ok(repo) = RepoName::parse(&name) {
                    out.extend(ix.repo(&repo)?);
                }
            }
            Ok(out)
        })
        .await?;
    let viewer = Viewer::Actor(actor.clone());
    let mut out = Vec::new();
    for r in visible(state, &viewer, &records) {
        out.push(row(state, &viewer, r).await?.0);
    }
    Ok(out)
}
