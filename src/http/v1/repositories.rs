//! `/v1/repositories/{repo}/...` on the index side: create/update (push start and end), image
//! lists (pull start), token checks, delete, and Skiff's visibility and collaborator API.

use super::{json, ok_true};
use crate::audit::{self, Action, Target};
use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::http::access::{Delete, IndexRole, Pull, Push, V1Access};
use crate::http::{header_str, public_origin};
use crate::index::{Access, ImageEntry, Index};
use crate::names::{ImageId, RepoName};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/repositories/{repo:.+}/images")
            .route(web::get().to(get_images))
            .route(web::put().to(put_images))
            .route(web::delete().to(delete_images)),
    )
    .route("/repositories/{repo:.+}/auth", web::put().to(check_auth))
    .service(
        web::resource("/repositories/{repo:.+}/properties")
            .route(web::get().to(get_properties))
            .route(web::put().to(put_properties)),
    )
    .route(
        "/repositories/{repo:.+}/collaborators",
        web::get().to(list_collaborators),
    )
    .service(
        web::resource("/repositories/{repo:.+}/collaborators/{user}")
            .route(web::put().to(add_collaborator))
            .route(web::delete().to(remove_collaborator)),
    )
    .service(
        web::resource("/repositories/{repo:.+}")
            .route(web::put().to(put_repository))
            .route(web::delete().to(delete_repository)),
    );
}

fn wants_token(req: &HttpRequest) -> bool {
    header_str(req, "X-Docker-Token").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Adds `X-Docker-Endpoints`, and a fresh token when the client asked for one.
async fn index_answer(
    state: &AppState,
    req: &HttpRequest,
    ix: &Index,
    who: &Identity,
    repo: &RepoName,
    access: Access,
    status: StatusCode,
) -> AppResult<HttpResponseBuilder> {
    let mut b = super::no_cache(HttpResponse::build(status));
    b.insert_header((
        "X-Docker-Endpoints",
        state.endpoints(&public_origin(&state.config, req).1),
    ));
    if wants_token(req) {
        let (name, user, ttl) = (
            repo.clone(),
            who.username().unwrap_or("").to_string(),
            state.config.index.token_ttl_secs,
        );
        // A caller signed in with an access token gets a token that dies with it.
        let pat = who.pat_id().map(str::to_string);
        // Durable before it is handed out: the client relies on it, possibly across a restart.
        let token = ix
            .write(move |ix| ix.issue_token(&name, access, &user, pat.as_deref(), ttl))
            .await?;
        b.insert_header(("X-Docker-Token", token.clone()));
        b.insert_header(("WWW-Authenticate", format!("Token {token}")));
    }
    Ok(b)
}

/// One element of the image list Docker sends: `{"id": ..., "Tag": ..., "checksum": ...}`.
#[derive(Deserialize)]
struct ImgData {
    id: String,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(rename = "Tag", default)]
    #[allow(dead_code)]
    tag: Option<String>,
}

pub(crate) fn parse_image_list(body: &[u8]) -> AppResult<Vec<ImageEntry>> {
    let list: Vec<ImgData> = serde_json::from_slice(body).map_err(|_| AppError::bad_request("Invalid data"))?;
    list.into_iter()
        .map(|d| {
            let id =
                ImageId::parse(&d.id).map_err(|_| AppError::bad_request(format!("Invalid image id {:?}", d.id)))?;
            Ok(ImageEntry {
                id: id.to_string(),
                checksum: d.checksum.filter(|c| !c.is_empty()),
            })
        })
        .collect()
}

/// Creates or updates the repository record and merges the declared images.
async fn record_images(ix: &Index, who: &Identity, repo: &RepoName, entries: Vec<ImageEntry>) -> AppResult<()> {
    let owner = who
        .username()
        .ok_or_else(|| AppError::unauthorized("Requires authorization"))?
        .to_string();
    let name = repo.clone();
    ix.write(move |ix| ix.upsert_repo(&name, &owner, |r| r.merge_images(&entries)))
        .await?;
    Ok(())
}

/// Push start (`PUT /v1/repositories/{repo}/`, 200 `""`) and push end (`PUT .../images`,
/// exactly 204: Docker requires it) do the same: record the declared images, answer with the
/// endpoints and, when asked, a write token.
async fn record_push(
    state: &AppState,
    req: &HttpRequest,
    ix: Index,
    access: V1Access<Push>,
    body: &[u8],
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let V1Access { who, repo, .. } = access;
    record_images(&ix, &who, &repo, parse_image_list(body)?).await?;
    let mut answer = index_answer(state, req, &ix, &who, &repo, Access::Write, status).await?;
    Ok(if status == StatusCode::NO_CONTENT {
        answer.finish()
    } else {
        answer.json("")
    })
}

async fn put_repository(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Push>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    record_push(&state, &req, ix, access, &body, StatusCode::OK).await
}

async fn put_images(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Push>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (who, repo) = (access.who.clone(), access.repo.clone());
    let answer = record_push(&state, &req, ix, access, &body, StatusCode::NO_CONTENT).await?;
    // The client's last call of a push: the push is done.
    let listed = parse_image_list(&body)?.into_iter().map(|e| e.id).collect();
    crate::webhooks::v1_pushed(&state, &req, &who, &repo, listed).await;
    Ok(answer)
}

/// `GET /v1/repositories/{repo}/images`: pull start.
async fn get_images(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Pull>,
) -> AppResult<HttpResponse> {
    let V1Access { who, repo, .. } = access;
    let meta = ix.repo(&repo)?;
    let mut images = meta.as_ref().map(|m| m.images.clone()).unwrap_or_default();
    if images.is_empty() && state.config.registry {
        // Repositories filled without an index call: list what the registry holds.
        images = state
            .v1_repos
            .members(&repo)
            .await?
            .into_iter()
            .map(|id| ImageEntry {
                id: id.to_string(),
                checksum: None,
            })
            .collect();
    }
    if meta.is_none() && images.is_empty() {
        return Err(AppError::not_found("Repository not found"));
    }
    Ok(
        index_answer(&state, &req, &ix, &who, &repo, Access::Read, StatusCode::OK)
            .await?
            .json(images),
    )
}

/// `DELETE /v1/repositories/{repo}/images` (PYREG's index delete): 204 with a delete token.
async fn delete_images(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Delete>,
) -> AppResult<HttpResponse> {
    let V1Access { who, repo, .. } = access;
    Ok(
        index_answer(&state, &req, &ix, &who, &repo, Access::Delete, StatusCode::NO_CONTENT)
            .await?
            .finish(),
    )
}

/// `DELETE /v1/repositories/{repo}/`. The Hub flow's steps are served here: with Basic and
/// `X-Docker-Token: true` -> 202 and a delete token; with that token, or with Basic alone ->
/// the repository goes (its data, and its index record when this process is the index).
async fn delete_repository(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V1Access<Delete>,
) -> AppResult<HttpResponse> {
    let V1Access { who, repo, .. } = access;
    if let (Identity::User(_), true, Some(ix)) = (&who, wants_token(&req), &state.index) {
        if !state.config.registry || !state.config.index.endpoints.is_empty() {
            // The data is on other registries, which never tell the index they deleted it:
            // the record goes now, so the repository is absent here once the client goes on to
            // delete the data with the token (the registry still checks that token with us).
            // Its hooks go with the record: the event goes out first.
            repository_deleted(&state, &req, &who, &repo).await;
            let name = repo.clone();
            ix.write(move |ix| ix.delete_repo(&name)).await?;
        }
        return Ok(
            index_answer(&state, &req, ix, &who, &repo, Access::Delete, StatusCode::ACCEPTED)
                .await?
                .json(""),
        );
    }
    let mut found = false;
    if state.config.registry {
        found |= state.v1_repos.delete_repo(&repo).await?;
        state.quotas.forget().await;
    }
    // A delete token was granted by this very index for this repository: the repository goes
    // whole, record included, so it is absent on every route afterwards.
    if let Some(ix) = &state.index {
        if found || ix.repo(&repo)?.is_some() {
            // Before the record: its hooks go with it.
            repository_deleted(&state, &req, &who, &repo).await;
        }
        let name = repo.clone();
        found |= ix.write(move |ix| ix.delete_repo(&name)).await?;
    } else if found {
        repository_deleted(&state, &req, &who, &repo).await;
    }
    if found {
        audit::by_client(&state, &req, &who, Action::RepositoryDelete, Target::repo(&repo));
        Ok(ok_true())
    } else {
        Err(AppError::not_found("Repository not found"))
    }
}

async fn repository_deleted(state: &AppState, req: &HttpRequest, who: &Identity, repo: &RepoName) {
    let user = crate::webhooks::client_name(who);
    crate::webhooks::deleted(state, Some(req), &user, repo, crate::webhooks::Deleted::Repository).await;
}

#[derive(Deserialize)]
struct AuthQuery {
    access: Option<String>,
}

/// `PUT /v1/repositories/{repo}/auth`: does this token grant (the given) access to this
/// repository? Registries in delegated mode ask this. 200 `"OK"`, 401, or 403; each answer is
/// logged at debug level and counted on `/metrics`.
async fn check_auth(
    _index: IndexRole,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AuthQuery>,
) -> AppResult<HttpResponse> {
    let wanted = query.access.as_deref().unwrap_or("(the token's)");
    let answer = token_answer(&state, &req, &path, query.access.as_deref()).await;
    state.gate.stats().index_answer(answer.is_ok());
    match &answer {
        Ok(_) => log::debug!("token check from a registry: {wanted} on {path}: granted"),
        Err(e) => log::debug!("token check from a registry: {wanted} on {path}: refused: {e}"),
    }
    let grant = answer?;
    Ok(super::no_cache(HttpResponse::Ok())
        .insert_header(("X-Docker-Token-Access", grant.access.as_str()))
        .insert_header(("X-Docker-Token-Expires", grant.expires.to_string()))
        .insert_header(("X-Docker-Token-User", grant.user))
        .json("OK"))
}

async fn token_answer(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
    access: Option<&str>,
) -> AppResult<crate::index::TokenGrant> {
    let repo = RepoName::parse(path)?;
    let who = state.gate.identify(req).await?;
    let Identity::Token(grant, _) = &who else {
        return Err(AppError::unauthorized("A token is required"));
    };
    if grant.repo != repo.as_str() {
        return Err(AppError::forbidden("Token is not valid for this repository"));
    }
    let wanted = match access {
        None => grant.access,
        Some(a) => Access::parse(a).ok_or_else(|| AppError::bad_request(format!("Unknown access {a:?}")))?,
    };
    if !grant.access.permits(wanted) {
        return Err(AppError::forbidden(format!(
            "Token grants {} access, not {}",
            grant.access.as_str(),
            wanted.as_str()
        )));
    }
    // The holder's rights as they are now: a token outlives none of them.
    state.gate.check(&who, &repo, wanted).await?;
    Ok(grant.clone())
}

async fn get_properties(IndexRole(ix): IndexRole, access: V1Access<Pull>) -> AppResult<HttpResponse> {
    let meta = ix
        .repo(&access.repo)?
        .ok_or_else(|| AppError::not_found("Repository not found"))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "access": if meta.private { "private" } else { "public" },
            "description": meta.description,
            "owner": meta.owner,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Properties {
    access: Option<String>,
    description: Option<String>,
}

/// `PUT .../properties {"access": "private"|"public", "description": "..."}`: owner or admin.
/// Creates the record if needed, so a repository can be made private before its first push.
async fn put_properties(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Delete>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let V1Access { who, repo, .. } = access;
    let props: Properties = serde_json::from_slice(&body).map_err(|_| AppError::bad_request("Invalid data"))?;
    let private = match props.access.as_deref() {
        None => None,
        Some("private") => Some(true),
        Some("public") => Some(false),
        Some(_) => {
            return Err(AppError::bad_request(
                "Invalid data: access must be \"private\" or \"public\"",
            ))
        }
    };
    let owner = who.username().unwrap_or_default().to_string();
    let description = props.description;
    let (action, detail) = match private {
        Some(p) => (
            Action::RepositoryVisibility,
            serde_json::json!({ "private": p, "description": description }),
        ),
        None => (
            Action::RepositoryDescription,
            serde_json::json!({ "description": description }),
        ),
    };
    let target = Target::repo(&repo).detail(detail);
    ix.write(move |ix| {
        ix.upsert_repo(&repo, &owner, |r| {
            if let Some(p) = private {
                r.private = p;
            }
            if let Some(d) = &description {
                r.description = d.clone();
            }
        })
    })
    .await?;
    audit::by_client(&state, &req, &who, action, target);
    Ok(ok_true())
}

async fn list_collaborators(IndexRole(ix): IndexRole, access: V1Access<Push>) -> AppResult<HttpResponse> {
    let meta = ix
        .repo(&access.repo)?
        .ok_or_else(|| AppError::not_found("Repository not found"))?;
    Ok(json(StatusCode::OK, &meta.collaborators))
}

async fn set_collaborator(ix: Index, repo: RepoName, user: String, add: bool) -> AppResult<HttpResponse> {
    let known = {
        let u = user.clone();
        ix.run(move |ix| ix.user(&u)).await?.is_some()
    };
    if add && !known {
        return Err(AppError::not_found(format!("No such user: {user}")));
    }
    ix.write(move |ix| ix.set_collaborator(&repo, &user, add)).await?;
    Ok(ok_true())
}

async fn add_collaborator(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Delete>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (_, user) = path.into_inner();
    let target = Target::repo(&access.repo).detail(serde_json::json!({ "user": user, "added": true }));
    let answer = set_collaborator(ix, access.repo, user, true).await?;
    audit::by_client(&state, &req, &access.who, Action::RepositoryCollaborator, target);
    Ok(answer)
}

async fn remove_collaborator(
    state: web::Data<AppState>,
    req: HttpRequest,
    IndexRole(ix): IndexRole,
    access: V1Access<Delete>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (_, user) = path.into_inner();
    let target = Target::repo(&access.repo).detail(serde_json::json!({ "user": user, "added": false }));
    let answer = set_collaborator(ix, access.repo, user, false).await?;
    audit::by_client(&state, &req, &access.who, Action::RepositoryCollaborator, target);
    Ok(answer)
}
