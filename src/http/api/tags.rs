//! `/api/v1/repositories/{name}/-/tags...` (a repository's tags; `?n=&last=` pages by tag
//! name) and `/api/v1/retention` (`POST {"dry_run": bool}`, admins).

use super::{body, ok, ApiCaller, ApiViewer};
use crate::error::{AppError, AppResult};
use crate::manage::{retention, tags};
use crate::registry::tags::Protocol;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/repositories/{name:.+}/-/tags", web::get().to(list))
        .route("/repositories/{name:.+}/-/tags/{tag}", web::delete().to(delete))
        .route("/retention", web::post().to(run_retention));
}

#[derive(Deserialize)]
struct ListQuery {
    n: Option<String>,
    last: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    ApiViewer(viewer): ApiViewer,
    name: web::Path<String>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let n = match &query.n {
        Some(raw) => Some(
            raw.parse::<usize>()
                .map_err(|_| AppError::bad_request(format!("n must be a number, not {raw:?}")))?,
        ),
        None => None,
    };
    ok(&tags::list(&state, &viewer, &name, n, query.last.as_deref()).await?)
}

#[derive(Deserialize)]
struct DeleteQuery {
    manifest: Option<String>,
    protocol: Option<String>,
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
    query: web::Query<DeleteQuery>,
) -> AppResult<HttpResponse> {
    let (name, tag) = path.into_inner();
    let manifest = match query.manifest.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "manifest must be true or false, not {other:?}"
            )))
        }
    };
    let protocol = match query.protocol.as_deref() {
        None => None,
        Some(raw) => Some(
            Protocol::parse(raw)
                .ok_or_else(|| AppError::bad_request(format!("protocol must be v1 or v2, not {raw:?}")))?,
        ),
    };
    let removed = tags::delete(&state, &actor, &name, &tag, manifest, protocol).await?;
    if let Ok(repo) = crate::names::RepoName::parse(&name) {
        tags::audit_removed(&state, Some(&req), &actor, &repo, &removed, None);
        tags::announce_removed(&state, Some(&req), &actor, &repo, &removed).await;
    }
    ok(&serde_json::json!({ "deleted_tags": removed.tags, "deleted_manifests": removed.manifests }))
}

#[derive(Deserialize, Default)]
struct Run {
    #[serde(default)]
    dry_run: bool,
}

async fn run_retention(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Run { dry_run } = if raw.is_empty() { Run::default() } else { body(&raw)? };
    ok(&retention::run(&state, Some(&req), &actor, dry_run).await?)
}
