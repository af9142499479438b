//! `GET /v1/search?q=&n=&page=`: repositories whose name or description contains `q`, only
//! those the caller may read, in the Hub's response shape (which `docker search` decodes).

use super::json;
use crate::error::AppResult;
use crate::http::access::Caller;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/search", web::get().to(search));
}

#[derive(Deserialize)]
pub(crate) struct Query {
    #[serde(default)]
    pub(crate) q: String,
    pub(crate) n: Option<usize>,
    pub(crate) page: Option<usize>,
}

pub(crate) const DEFAULT_PAGE_SIZE: usize = 25;
pub(crate) const MAX_PAGE_SIZE: usize = 100;

/// The page a search asks for: `n` results per page (1 to 100, default 25) and `page` (from 1),
/// as the rows to skip. Saturating, so any `page` a client sends is just past the end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) page_size: usize,
    pub(crate) page: usize,
    pub(crate) skip: usize,
}

pub(crate) fn paging(n: Option<usize>, page: Option<usize>) -> Paging {
    let page_size = n.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let page = page.unwrap_or(1).max(1);
    Paging {
        page_size,
        page,
        skip: (page - 1).saturating_mul(page_size),
    }
}

async fn search(state: web::Data<AppState>, Caller(who): Caller, query: web::Query<Query>) -> AppResult<HttpResponse> {
    let needle = query.q.trim().to_lowercase();
    let Paging { page_size, page, skip } = paging(query.n, query.page);
    let repos = match &state.index {
        Some(ix) => ix.run(|ix| ix.listing()).await?,
        None => Default::default(),
    };
    let matching = repos
        .iter()
        .filter(|r| r.name.contains(&needle) || r.description.to_lowercase().contains(&needle));
    let hits = state.gate.visible(&who, matching);
    let total = hits.len();
    let num_pages = total.div_ceil(page_size).max(1);
    let page_hits: Vec<_> = hits.into_iter().skip(skip).take(page_size).collect();
    let names: Vec<String> = page_hits.iter().map(|r| r.name.clone()).collect();
    let stars = match &state.index {
        Some(ix) => {
            ix.run(move |ix| names.iter().map(|n| ix.star_count(n)).collect::<AppResult<Vec<u64>>>())
                .await?
        }
        None => vec![0; names.len()],
    };
    let results: Vec<_> = page_hits
        .into_iter()
        .zip(stars)
        .map(|(r, star_count)| {
            serde_json::json!({
                "name": r.name,
                "description": r.description,
                "star_count": star_count,
                "is_official": r.name.starts_with("library/"),
                "is_trusted": false,
                "is_automated": false,
                "is_private": r.private,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "query": query.q,
            "num_results": total,
            "num_pages": num_pages,
            "page": page,
            "page_size": page_size,
            "results": results,
        }),
    ))
}
