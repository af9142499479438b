//! `/v1/repositories/{repo}/tags...`: the registry side of repositories.

use super::{json, ok_true};
use crate::audit::{self, Action, Target};
use crate::error::{AppError, AppResult};
use crate::http::access::{Delete, Pull, Push, V1Access};
use crate::names::{ImageId, RepoName, TagName};
use crate::state::AppState;
use crate::webhooks::Deleted;
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

/// 404 unless the repository exists in the index or has data in the registry: the same answer
/// a private repository gives a caller who may not read it.
async fn require_repo(state: &AppState, repo: &RepoName) -> AppResult<()> {
    if state.v1_repos.exists(repo).await? || state.gate.repo_meta(repo).await?.is_some() {
        Ok(())
    } else {
        Err(AppError::not_found("Repository not found"))
    }
}

async fn list_tags(state: web::Data<AppState>, access: V1Access<Pull>) -> AppResult<HttpResponse> {
    let repo = access.repo;
    require_repo(&state, &repo).await?;
    let tags = state.v1_repos.list(&repo).await?;
    // Docker 1.3's pull: the full list, no tag named.
    state.pulls.pulled(repo.as_str(), None);
    Ok(json(StatusCode::OK, &tags))
}

async fn get_tag(
    state: web::Data<AppState>,
    access: V1Access<Pull>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (_, tag) = path.into_inner();
    let repo = access.repo;
    let tag = TagName::parse(&tag)?;
    match state.v1_repos.get(&repo, &tag).await? {
        Some(id) => {
            // Docker 1.9's pull of one tag.
            state.pulls.pulled(repo.as_str(), Some(tag.as_str()));
            Ok(json(StatusCode::OK, &id.as_str()))
        }
        // Only a miss asks whether the repository exists (a hit proves it).
        None => {
            require_repo(&state, &repo).await?;
            Err(AppError::not_found("Tag not found"))
        }
    }
}

/// The body of a tag PUT: the image id as a JSON string. An id that is not one names no image.
pub(crate) fn tag_target(body: &[u8]) -> AppResult<ImageId> {
    let id: String = serde_json::from_slice(body).map_err(|_| AppError::bad_request("Invalid data"))?;
    ImageId::parse(&id).map_err(|_| AppError::not_found("Image not found"))
}

async fn put_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V1Access<Push>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (_, tag) = path.into_inner();
    let V1Access { who, repo, .. } = access;
    let tag = TagName::parse(&tag)?;
    let id = tag_target(&body)?;
    // The copy of that id the pusher reads, preferring the one this repository already holds.
    let image = state.gate.image_for_read(&who, &state.images, &id, Some(&repo)).await?;
    state.images.require_complete(&image).await?;
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    state.v1_repos.put(&repo, &tag, &image, agent).await?;
    audit::by_client(
        &state,
        &req,
        &who,
        Action::TagPush,
        Target::tag(&repo, &tag).detail(id.as_str().into()),
    );
    if who.username().is_some() {
        // Data pushed without an index call first (plain registry clients) still gets a record,
        // so ownership and visibility apply to it.
        state.ensure_record(&who, &repo).await?;
    }
    Ok(ok_true())
}

async fn delete_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V1Access<Delete>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (_, tag) = path.into_inner();
    let repo = &access.repo;
    let tag = TagName::parse(&tag)?;
    state.v1_repos.delete(repo, &tag).await?;
    audit::by_client(&state, &req, &access.who, Action::TagDelete, Target::tag(repo, &tag));
    let what = Deleted::Tag {
        tag: tag.as_str(),
        digest: None,
    };
    let user = crate::webhooks::client_name(&access.who);
    crate::webhooks::deleted(&state, Some(&req), &user, repo, what).await;
    Ok(ok_true())
}

async fn delete_all(state: web::Data<AppState>, req: HttpRequest, access: V1Access<Delete>) -> AppResult<HttpResponse> {
    let repo = &access.repo;
    if state.v1_repos.delete_repo(repo).await? {
        audit::by_client(&state, &req, &access.who, Action::RepositoryDelete, Target::repo(repo));
        let user = crate::webhooks::client_name(&access.who);
        crate::webhooks::deleted(&state, Some(&req), &user, repo, Deleted::Repository).await;
        Ok(ok_true())
    } else {
        Err(AppError::not_found("Repository not found"))
    }
}

async fn tag_json(
    state: web::Data<AppState>,
    access: V1Access<Pull>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (_, tag) = path.into_inner();
    let repo = access.repo;
    let tag = TagName::parse(&tag)?;
    require_repo(&state, &repo).await?;
    Ok(json(StatusCode::OK, &state.v1_repos.tag_json(&repo, &tag).await?))
}

async fn repo_json(state: web::Data<AppState>, access: V1Access<Pull>) -> AppResult<HttpResponse> {
    let repo = access.repo;
    let latest = TagName::parse("latest")?;
    require_repo(&state, &repo).await?;
    Ok(json(StatusCode::OK, &state.v1_repos.tag_json(&repo, &latest).await?))
}
