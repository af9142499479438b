//! `/v1/repositories/{repo}/tags...`: the registry side of repositories.

use super::{gate, json, ok_true};
use crate::error::{AppError, AppResult};
use crate::index::Access;
use crate::registry::names::{ImageId, RepoName, TagName};
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/repositories/{repo:.+}/tags/{tag}/json", web::get().to(tag_json))
        .service(
            web::resource("/repositories/{repo:.+}/tags/{tag}")
                .route(web::get().to(get_tag))
                .route(web::put().to(put_tag))
                .route(web::delete().to(delete_tag)),
        )
        .service(
            web::resource("/repositories/{repo:.+}/tags")
                .route(web::get().to(list_tags))
                .route(web::delete().to(delete_all)),
        )
        .route("/repositories/{repo:.+}/json", web::get().to(repo_json));
}

/// 404 unless the repository exists in the index or has data in the registry.
async fn require_repo(state: &AppState, repo: &RepoName) -> AppResult<()> {
    if state.tags.exists(repo).await? || state.gate.repo_meta(repo).await?.is_some() {
        Ok(())
    } else {
        Err(AppError::not_found("Repository not found"))
    }
}

async fn list_tags(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, repo) = gate(&state, &req, &path, Access::Read).await?;
    require_repo(&state, &repo).await?;
    Ok(json(StatusCode::OK, &state.tags.list(&repo).await?))
}

async fn get_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (repo, tag) = path.into_inner();
    let (_, repo) = gate(&state, &req, &repo, Access::Read).await?;
    let tag = TagName::parse(&tag)?;
    match state.tags.get(&repo, &tag).await? {
        Some(id) => Ok(json(StatusCode::OK, &id.as_str())),
        None => Err(AppError::not_found("Tag not found")),
    }
}

async fn put_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (repo, tag) = path.into_inner();
    let (who, repo) = gate(&state, &req, &repo, Access::Write).await?;
    let tag = TagName::parse(&tag)?;
    let id: String = serde_json::from_slice(&body).map_err(|_| AppError::bad_request("Invalid data"))?;
    let id = ImageId::parse(&id).map_err(|_| AppError::not_found("Image not found"))?;
    if !state.images.exists(&id).await? {
        return Err(AppError::not_found("Image not found"));
    }
    state.gate.check_image_read(&who, &state.images, &id).await?;
    state.images.require_complete(&id).await?;
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    state.tags.put(&repo, &tag, &id, agent).await?;
    if let (Some(index), Some(user)) = (state.gate.index(), who.username()) {
        // Data pushed without an index call first (plain registry clients) still gets a record,
        // so ownership and visibility apply to it.
        let (index, name, owner) = (index.clone(), repo.clone(), user.to_string());
        if index.run(move |ix| ix.ensure_repo(&name, &owner)).await? {
            index.flush().await?;
        }
    }
    Ok(ok_true())
}

async fn delete_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (repo, tag) = path.into_inner();
    let (_, repo) = gate(&state, &req, &repo, Access::Delete).await?;
    let tag = TagName::parse(&tag)?;
    state.tags.delete(&repo, &tag).await?;
    Ok(ok_true())
}

async fn delete_all(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, repo) = gate(&state, &req, &path, Access::Delete).await?;
    if state.tags.delete_repo(&repo).await? {
        Ok(ok_true())
    } else {
        Err(AppError::not_found("Repository not found"))
    }
}

async fn tag_json(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (repo, tag) = path.into_inner();
    let (_, repo) = gate(&state, &req, &repo, Access::Read).await?;
    let tag = TagName::parse(&tag)?;
    Ok(json(StatusCode::OK, &state.tags.tag_json(&repo, &tag).await?))
}

async fn repo_json(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, repo) = gate(&state, &req, &path, Access::Read).await?;
    let latest = TagName::parse("latest")?;
    Ok(json(StatusCode::OK, &state.tags.tag_json(&repo, &latest).await?))
}
