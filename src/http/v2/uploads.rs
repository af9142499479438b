//! Blob uploads: `POST /v2/{name}/blobs/uploads/` (session, monolithic `?digest=`, or
//! `?mount=&from=`), `PATCH` chunks, `PUT ?digest=` to close, `GET` status, `DELETE` to cancel.

use super::{query_one, Name, V2Result};
use crate::auth::Identity;
use crate::digest::{Algorithm, Digest};
use crate::error::{AppError, Kind};
use crate::http::access::{Push, V2Access};
use crate::http::uploads::{detached, slot_for, TimedBody};
use crate::index::Access;
use crate::names::RepoName;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{name:.+}/blobs/uploads/", web::post().to(start))
        .route("/{name:.+}/blobs/uploads", web::post().to(start))
        .service(
            web::resource("/{name:.+}/blobs/uploads/{uuid}")
                .route(web::get().to(status))
                .route(web::patch().to(patch))
                .route(web::put().to(close))
                .route(web::delete().to(cancel)),
        );
}

fn created(name: &Name, digest: &Digest) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v2/{}/blobs/{digest}", name.raw)))
        .insert_header(("Docker-Content-Digest", digest.to_string()))
        .finish()
}

/// `Range: 0-<last byte>` as the registry reports progress (`0-0` when empty, like Distribution).
fn progress(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn in_progress(status: actix_web::http::StatusCode, name: &Name, uuid: &str, offset: u64) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, format!("/v2/{}/blobs/uploads/{uuid}", name.raw)))
        .insert_header(("Docker-Upload-UUID", uuid.to_string()))
        .insert_header((header::RANGE, progress(offset)))
        .insert_header((header::CONTENT_LENGTH, 0))
        .finish()
}

async fn link(state: &AppState, who: &Identity, name: &Name, digest: &Digest) -> V2Result<()> {
    // The namespace's quota: 403 DENIED naming the limit and the usage (`manage::quotas`). The
    // bytes stay unreferenced, for the next gc.
    if let Some(size) = state.storage.blob_size(digest).await.map_err(AppError::from)? {
        state.quotas.admit(state, name.repo.namespace(), digest, size).await?;
    }
    state.v2_repos.link_blob(&name.repo, digest).await?;
    Ok(state.ensure_record(who, &name.repo).await?)
}

/// May `who` mount `digest` from `repo`: they may read it, and it holds the blob.
async fn mountable(state: &AppState, who: &Identity, repo: &RepoName, digest: &Digest) -> V2Result<bool> {
    Ok(state.gate.check(who, repo, Access::Read).await.is_ok() && state.v2_repos.blob(repo, digest).await?.is_some())
}

/// Repositories looked at, at most, for a mount without `from`: beyond them the client simply
/// uploads the blob (202), so one request's work stays bounded however many repositories exist.
const AUTO_MOUNT_SCAN: usize = 1000;

/// A repository the caller may read that holds `digest`, for a mount without `from`.
async fn readable_source(state: &AppState, who: &Identity, digest: &Digest) -> V2Result<Option<RepoName>> {
    if state.storage.blob_size(digest).await.map_err(AppError::from)?.is_none() {
        return Ok(None);
    }
    for repo in state.v2_repos.names().await?.into_iter().take(AUTO_MOUNT_SCAN) {
        if mountable(state, who, &repo, digest).await? {
            return Ok(Some(repo));
        }
    }
    Ok(None)
}

async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Push>,
    body: web::Payload,
) -> V2Result<HttpResponse> {
    let V2Access { who, name, .. } = access;

    if let Some(mount) = query_one(&req, "mount") {
        let digest: Digest = mount.parse()?;
        let source = match query_one(&req, "from") {
            // Mount only what the caller may read; otherwise fall back to a plain upload.
            Some(from) => match Name::parse(&from) {
                Ok(from) if mountable(&state, &who, &from.repo, &digest).await? => Some(from.repo),
                _ => None,
            },
            // The spec lets `from` be omitted: the blob is looked for in the repositories the
            // caller may read, never in any other.
            None => readable_source(&state, &who, &digest).await?,
        };
        if source.is_some() {
            link(&state, &who, &name, &digest).await?;
            return Ok(created(&name, &digest));
        }
    } else if let Some(digest) = query_one(&req, "digest") {
        let digest: Digest = digest.parse()?;
        state.quotas.check_room(&state, name.repo.namespace()).await?;
        let _slot = slot_for(&state, &req, &who)?;
        state
            .uploads
            .put_monolithic(&digest, TimedBody::new(&state, body))
            .await?;
        link(&state, &who, &name, &digest).await?;
        return Ok(created(&name, &digest));
    }
    let algo = match query_one(&req, "digest-algorithm").as_deref() {
        None | Some("sha256") => Algorithm::Sha256,
        Some("sha512") => Algorithm::Sha512,
        Some(other) => {
            return Err(AppError::new(Kind::DigestInvalid, format!("unsupported digest algorithm {other:?}")).into())
        }
    };
    state.quotas.check_room(&state, name.repo.namespace()).await?;
    let uuid = state.uploads.start(&name.repo, algo).await?;
    Ok(in_progress(actix_web::http::StatusCode::ACCEPTED, &name, &uuid, 0))
}

/// The request's `Content-Range` and `Content-Length`, checked by [`parse_content_range`].
fn content_range(req: &HttpRequest) -> V2Result<Option<(u64, u64)>> {
    let Some(v) = req.headers().get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| invalid_content_range())?;
    let declared = crate::http::header_str(req, header::CONTENT_LENGTH.as_str());
    Ok(Some(parse_content_range(v, declared)?))
}

fn invalid_content_range() -> AppError {
    AppError::new(Kind::BlobUploadInvalid, "invalid Content-Range")
}

/// `Content-Range: <start>-<end>` (also accepts the `bytes <start>-<end>/<total>` form). A range
/// that cannot be parsed is a bad request (400 BLOB_UPLOAD_INVALID, as in CNCF Distribution);
/// one that parses but does not continue the upload is 416, decided by the session. When the
/// request also declares its `Content-Length`, the two must agree before any byte is written
/// (400 SIZE_INVALID, as in Distribution), so a refused chunk never changes the upload.
pub(crate) fn parse_content_range(value: &str, content_length: Option<&str>) -> Result<(u64, u64), AppError> {
    let v = value.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next().unwrap_or(v);
    let (a, b) = v.split_once('-').ok_or_else(invalid_content_range)?;
    let (start, end): (u64, u64) = (
        a.trim().parse().map_err(|_| invalid_content_range())?,
        b.trim().parse().map_err(|_| invalid_content_range())?,
    );
    let declared = content_length.and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared {
        // `0-18446744073709551615` spans 2^64 bytes: no u64 length matches it.
        if end >= start && (end - start).checked_add(1) != Some(len) {
            return Err(AppError::new(
                Kind::SizeInvalid,
                format!("Content-Range {start}-{end} does not match Content-Length {len}"),
            ));
        }
    }
    Ok((start, end))
}

async fn patch(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Push>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> V2Result<HttpResponse> {
    let (_, uuid) = path.into_inner();
    let V2Access { who, name, .. } = access;
    let session = state.uploads.get(&name.repo, &uuid).await?;
    let range = content_range(&req)?;
    let slot = slot_for(&state, &req, &who)?;
    let (uploads, body) = (state.uploads.clone(), TimedBody::new(&state, body));
    let offset = detached(async move {
        let _slot = slot;
        uploads.append(&session, range, body).await
    })
    .await?;
    Ok(in_progress(actix_web::http::StatusCode::ACCEPTED, &name, &uuid, offset))
}

async fn close(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Push>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> V2Result<HttpResponse> {
    let (_, uuid) = path.into_inner();
    let V2Access { who, name, .. } = access;
    // An unknown session is 404 whatever else is wrong with the request.
    let session = state.uploads.get(&name.repo, &uuid).await?;
    let digest: Digest = query_one(&req, "digest")
        .ok_or_else(|| AppError::new(Kind::DigestInvalid, "the digest query parameter is required"))?
        .parse()?;
    let range = content_range(&req)?;
    let slot = slot_for(&state, &req, &who)?;
    let (uploads, body, closing) = (state.uploads.clone(), TimedBody::new(&state, body), digest.clone());
    detached(async move {
        let _slot = slot;
        uploads.close(&session, range, body, &closing).await
    })
    .await?;
    link(&state, &who, &name, &digest).await?;
    Ok(created(&name, &digest))
}

async fn status(
    state: web::Data<AppState>,
    access: V2Access<Push>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let (_, uuid) = path.into_inner();
    let V2Access { name, .. } = access;
    let session = state.uploads.get(&name.repo, &uuid).await?;
    Ok(in_progress(
        actix_web::http::StatusCode::NO_CONTENT,
        &name,
        &uuid,
        session.offset,
    ))
}

async fn cancel(
    state: web::Data<AppState>,
    access: V2Access<Push>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let (_, uuid) = path.into_inner();
    let V2Access { name, .. } = access;
    let session = state.uploads.get(&name.repo, &uuid).await?;
    state.uploads.remove(&session).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-9", None).unwrap(), (0, 9));
        assert_eq!(parse_content_range("bytes 10-19/100", Some("10")).unwrap(), (10, 19));
        assert_eq!(
            parse_content_range("5-1", None).unwrap(),
            (5, 1),
            "the session answers 416"
        );
        for bad in ["", "5", "a-b", "-1-2", "1-", "99999999999999999999-1"] {
            assert_eq!(
                parse_content_range(bad, None).unwrap_err().kind,
                Kind::BlobUploadInvalid,
                "{bad}"
            );
        }
        assert_eq!(
            parse_content_range("0-9", Some("11")).unwrap_err().kind,
            Kind::SizeInvalid
        );
    }

    /// Regression (found by the property tests): a range spanning all of u64 with a declared
    /// length overflowed `end - start + 1` and panicked the worker.
    #[test]
    fn a_range_of_2_to_the_64_bytes_is_refused_not_a_panic() {
        let err = parse_content_range("0-18446744073709551615", Some("0")).unwrap_err();
        assert_eq!(err.kind, Kind::SizeInvalid);
        let err = parse_content_range("0-18446744073709551615", Some("18446744073709551615")).unwrap_err();
        assert_eq!(err.kind, Kind::SizeInvalid);
    }
}
