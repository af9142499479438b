//! Content discovery: `GET /v2/{name}/tags/list`, `GET /v2/_catalog` (both with `n`/`last`
//! and the `Link` header) and `GET /v2/{name}/referrers/{digest}` (with `artifactType`).

use super::{challenged, query_one, V2Result};
use crate::digest::Digest;
use crate::error::{AppError, Kind};
use crate::http::access::{Pull, V2Access};
use crate::index::Access;
use crate::registry::v2::manifest::OCI_INDEX;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

// HEAD as well as GET on every listing: RFC 9110 requires both of a general-purpose server.
pub fn configure_catalog(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/_catalog")
            .route(web::get().to(catalog))
            .route(web::head().to(catalog)),
    );
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{name:.+}/tags/list")
            .route(web::get().to(tags_list))
            .route(web::head().to(tags_list)),
    )
    .service(
        web::resource("/{name:.+}/referrers/{digest}")
            .route(web::get().to(referrers))
            .route(web::head().to(referrers)),
    );
}

/// Applies the request's `last` and `n` to a sorted list (see [`page`]).
fn paginate(all: Vec<String>, req: &HttpRequest) -> V2Result<(Vec<String>, Option<usize>)> {
    let (n, last) = (query_one(req, "n"), query_one(req, "last"));
    Ok(page(all, n.as_deref(), last.as_deref())?)
}

/// Applies `last` and `n` to a sorted list; returns the page and, when more follow, the `n` for
/// the next page's link.
pub(crate) fn page(
    all: Vec<String>,
    n: Option<&str>,
    last: Option<&str>,
) -> Result<(Vec<String>, Option<usize>), AppError> {
    // An empty `n=` sets no limit, as in CNCF Distribution (clients build `?n=&last=` URLs).
    let n = match n.filter(|n| !n.is_empty()) {
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| AppError::new(Kind::BadRequest, format!("invalid n {n:?}")))?,
        ),
        None => None,
    };
    let after: Vec<String> = match last {
        Some(l) => all.into_iter().filter(|t| t.as_str() > l).collect(),
        None => all,
    };
    match n {
        Some(n) if n < after.len() => Ok((after.into_iter().take(n).collect(), Some(n))),
        _ => Ok((after, None)),
    }
}

fn next_link(path: &str, n: usize, last: &str) -> String {
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

async fn tags_list(state: web::Data<AppState>, req: HttpRequest, access: V2Access<Pull>) -> V2Result<HttpResponse> {
    let name = access.name;
    if !state.v2_repos.exists(&name.repo).await? {
        return Err(AppError::new(Kind::NameUnknown, "repository name not known to registry").into());
    }
    let (tags, more) = paginate(state.v2_repos.tags(&name.repo).await?, &req)?;
    let mut resp = HttpResponse::Ok();
    if let (Some(n), Some(last)) = (more, tags.last()) {
        resp.insert_header((header::LINK, next_link(&format!("/v2/{}/tags/list", name.raw), n, last)));
    }
    Ok(resp.json(serde_json::json!({ "name": name.raw, "tags": tags })))
}

async fn catalog(state: web::Data<AppState>, req: HttpRequest) -> V2Result<HttpResponse> {
    let who = state
        .gate
        .identify(&req)
        .await
        .map_err(|e| challenged(&state, &req, Some("registry:catalog:*".into()), e))?;
    let mut visible = Vec::new();
    match state.index.as_ref() {
        // Standalone: the in-memory listing holds each record, so no lookup per repository.
        Some(ix) => {
            let listing = ix.run(|ix| ix.listing()).await?;
            visible.extend(
                state
                    .gate
                    .visible(&who, listing.iter())
                    .into_iter()
                    .map(|r| r.name.clone()),
            );
        }
        None => {
            for name in state.v2_repos.names().await? {
                if state.gate.allows(&who, &name, Access::Read).await? {
                    visible.push(name.to_string());
                }
            }
        }
    }
    visible.sort();
    let (repos, more) = paginate(visible, &req)?;
    let mut resp = HttpResponse::Ok();
    if let (Some(n), Some(last)) = (more, repos.last()) {
        resp.insert_header((header::LINK, next_link("/v2/_catalog", n, last)));
    }
    Ok(resp.json(serde_json::json!({ "repositories": repos })))
}

async fn referrers(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Pull>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let subject: Digest = path.1.parse()?;
    let mut list = state.v2_repos.referrers(access.repo(), &subject).await?;
    if list.is_empty() && !state.v2_repos.exists(access.repo()).await? {
        // An empty list for a repository that does not exist would tell it apart from a
        // private one (NAME_UNKNOWN); the spec's 200 is for a repository that is found.
        return Err(super::not_found(&state, access.repo(), AppError::not_found("no referrers")).await);
    }
    let filter = query_one(&req, "artifactType");
    if let Some(f) = &filter {
        list.retain(|d| d.artifact_type.as_deref() == Some(f.as_str()));
    }
    let mut resp = HttpResponse::Ok();
    resp.content_type(OCI_INDEX);
    if filter.is_some() {
        resp.insert_header(("OCI-Filters-Applied", "artifactType"));
    }
    let body = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list });
    Ok(resp.body(serde_json::to_vec(&body).map_err(AppError::from)?))
}
