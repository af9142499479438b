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
struct Query {
    #[serde(default)]
    q: String,
    n: Option<usize>,
    page: Option<usize>,
}

const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 100;

async fn search(state: web::Data<AppState>, Caller(who): Caller, query: web::Query<Query>) -> AppResult<HttpResponse> {
    let needle = query.q.trim().to_lowercase();
    let page_size = query.n.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let page = query.page.unwrap_or(1).max(1);
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
    let results: Vec<_> = hits
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "description": r.description,
                "star_count": 0,
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
