//! `GET|HEAD|PUT|DELETE /v2/{name}/manifests/{reference}` over Docker schema2, manifest lists,
//! OCI manifests and indexes, and signed schema1 (kept byte for byte).

use super::{not_found, query_all, V2Result};
use crate::audit::{self, Action, Target};
use crate::error::{AppError, Kind};
use crate::http::access::{Delete, Pull, Push, V2Access};
use crate::http::header_str;
use crate::names::TagName;
use crate::registry::v2::manifest::{self, MAX_MANIFEST_BYTES};
use crate::registry::v2::repositories::Reference;
use crate::state::AppState;
use crate::webhooks::Deleted;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{name:.+}/manifests/{reference}")
            .route(web::get().to(get_manifest))
            .route(web::head().to(get_manifest))
            .route(web::put().to(put_manifest))
            .route(web::delete().to(delete_manifest)),
    );
}

fn manifest_unknown() -> AppError {
    AppError::new(Kind::ManifestUnknown, "manifest unknown to registry")
}

/// The reference of a GET or HEAD. One that is neither a tag nor a digest names no manifest, so
/// it is not found (404, the only failure end-3 lists; CNCF Distribution's routes never match
/// it); the conformance suite asks for `.INVALID_MANIFEST_NAME` and expects 404. A PUT, which
/// would create it, reports TAG_INVALID / DIGEST_INVALID instead.
fn existing_reference(raw: &str) -> V2Result<Reference> {
    Reference::parse(raw).map_err(|_| manifest_unknown().into())
}

/// True when the client's `Accept` names single-manifest types but not `media_type`: an old
/// client that cannot take an index gets the default platform's manifest instead.
fn wants_single(req: &HttpRequest, media_type: &str) -> bool {
    let accept: Vec<&str> = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .collect();
    let single = accept
        .iter()
        .any(|a| *a == manifest::DOCKER_MANIFEST || *a == manifest::OCI_MANIFEST);
    let takes_it = accept.iter().any(|a| *a == media_type || *a == "*/*");
    single && !takes_it
}

async fn get_manifest(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Pull>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let repo = access.repo();
    let reference = existing_reference(&path.1)?;
    let Some(mut found) = state.v2_repos.manifest(repo, &reference).await? else {
        return Err(not_found(&state, repo, manifest_unknown()).await);
    };
    match (&reference, req.method() == actix_web::http::Method::GET) {
        (Reference::Tag(t), true) => state.pulls.pulled(repo.as_str(), Some(t.as_str())),
        (Reference::Tag(t), false) => state.pulls.touched(repo.as_str(), t.as_str()),
        (Reference::Digest(_), true) => state.pulls.pulled(repo.as_str(), None),
        (Reference::Digest(_), false) => {}
    }
    if manifest::is_index(&found.media_type) && wants_single(&req, &found.media_type) {
        if let Some(child) = manifest::pick_platform(&found.body) {
            if let Some(m) = state.v2_repos.manifest(repo, &Reference::Digest(child)).await? {
                found = m;
            }
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(found.media_type.as_str())
        .insert_header(("Docker-Content-Digest", found.digest.to_string()))
        .insert_header((header::ETAG, format!("\"{}\"", found.digest)))
        .body(found.body))
}

async fn read_body(mut payload: web::Payload) -> V2Result<web::Bytes> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::new(Kind::ManifestInvalid, format!("upload interrupted: {e}")))?;
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(AppError::new(
                Kind::TooLarge,
                format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"),
            )
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn put_manifest(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Push>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> V2Result<HttpResponse> {
    let reference = Reference::parse(&path.1)?;
    let body = read_body(payload).await?;
    let content_type = header_str(&req, header::CONTENT_TYPE.as_str()).unwrap_or("");
    let mut tags: Vec<TagName> = Vec::new();
    if let Reference::Tag(t) = &reference {
        tags.push(t.clone());
    }
    for extra in query_all(&req, "tag") {
        tags.push(TagName::parse(&extra).map_err(|e| e.as_kind(Kind::TagInvalid))?);
    }
    let pushed = state
        .v2_repos
        .push_manifest(access.repo(), &reference, body, content_type, &tags)
        .await?;
    state.ensure_record(&access.who, access.repo()).await?;
    let digest = pushed.digest.clone();
    audit::by_client(
        &state,
        &req,
        &access.who,
        Action::ManifestPush,
        pushed_target(access.repo(), &digest, &tags),
    );
    crate::webhooks::manifest_pushed(&state, &req, &access.who, access.repo(), &pushed, &tags).await;
    let mut resp = HttpResponse::Created();
    resp.insert_header((header::LOCATION, format!("/v2/{}/manifests/{digest}", access.name.raw)))
        .insert_header(("Docker-Content-Digest", digest.to_string()));
    if let Some(subject) = &pushed.subject {
        resp.insert_header(("OCI-Subject", subject.to_string()));
    }
    if matches!(reference, Reference::Digest(_)) && !tags.is_empty() {
        let list: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
        resp.insert_header(("OCI-Tag", list.join(", ")));
    }
    Ok(resp.finish())
}

/// A manifest pushed: `repo:tag` when it was pushed by one tag, else `repo@digest`.
fn pushed_target(repo: &crate::names::RepoName, digest: &crate::digest::Digest, tags: &[TagName]) -> Target {
    let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
    let target = match tags.as_slice() {
        [one] => Target::tag(repo, one),
        _ => Target::digest(repo, digest),
    };
    target.detail(serde_json::json!({ "digest": digest.to_string(), "tags": tags }))
}

async fn delete_manifest(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Delete>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let reference = &path.1;
    // end-9 allows 400 as well as 404: like CNCF Distribution, a malformed digest is 400
    // DIGEST_INVALID, and anything else that is no tag is simply not found.
    let reference = if reference.contains(':') {
        Reference::parse(reference)?
    } else {
        existing_reference(reference)?
    };
    let (found, action, target) = match &reference {
        Reference::Tag(t) => (
            state.v2_repos.untag(access.repo(), t).await?,
            Action::TagDelete,
            Target::tag(access.repo(), t),
        ),
        Reference::Digest(d) => (
            state.v2_repos.delete_manifest_and_tags(access.repo(), d).await?,
            Action::ManifestDelete,
            Target::digest(access.repo(), d),
        ),
    };
    if found {
        // References went: namespace usage is counted afresh (`manage::quotas`).
        state.quotas.forget().await;
        audit::by_client(&state, &req, &access.who, action, target);
        let digest = match &reference {
            Reference::Digest(d) => Some(d.to_string()),
            Reference::Tag(_) => None,
        };
        let what = match &reference {
            Reference::Tag(t) => Deleted::Tag {
                tag: t.as_str(),
                digest: None,
            },
            Reference::Digest(_) => Deleted::Manifest {
                digest: digest.as_deref().unwrap_or_default(),
            },
        };
        let user = crate::webhooks::client_name(&access.who);
        crate::webhooks::deleted(&state, Some(&req), &user, access.repo(), what).await;
        Ok(HttpResponse::Accepted().finish())
    } else {
        Err(manifest_unknown().into())
    }
}
