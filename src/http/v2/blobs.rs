//! `GET|HEAD|DELETE /v2/{name}/blobs/{digest}`: blobs the repository may serve, from the shared
//! content-addressed store, with `Range` (served like v1 layers, by `http::files`).

use super::{authorize, not_found, Name, V2Result};
use crate::error::{AppError, Kind};
use crate::http::files;
use crate::index::Access;
use crate::registry::digest::Digest;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{name:.+}/blobs/{digest}")
            .route(web::get().to(get_blob))
            .route(web::head().to(get_blob))
            .route(web::delete().to(delete_blob)),
    );
}

fn blob_unknown() -> AppError {
    AppError::new(Kind::BlobUnknown, "blob unknown to registry")
}

/// The digest of a GET or HEAD: one that cannot be parsed (or uses an algorithm Skiff does not
/// have) names no blob, so 404 BLOB_UNKNOWN, the only failure end-2 lists.
fn existing_digest(raw: &str) -> V2Result<Digest> {
    raw.parse().map_err(|_| blob_unknown().into())
}

/// The blob's digest and size, if the caller may read it from this repository.
async fn lookup(state: &AppState, req: &HttpRequest, name: &str, digest: &str) -> V2Result<(Digest, u64)> {
    let name = Name::parse(name)?;
    authorize(state, req, &name, Access::Read).await?;
    let digest = existing_digest(digest)?;
    let Some(size) = state.repos.blob(&name.repo, &digest).await? else {
        return Err(not_found(state, &name.repo, blob_unknown()).await);
    };
    Ok((digest, size))
}

fn blob_headers(r: &mut HttpResponseBuilder, digest: &Digest) {
    r.insert_header(("Docker-Content-Digest", digest.to_string()))
        .insert_header((header::ETAG, format!("\"{digest}\"")))
        // Content-addressed: the bytes behind a digest never change.
        .insert_header((header::CACHE_CONTROL, "max-age=31536000"));
}

async fn get_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let (name, digest) = path.into_inner();
    let (digest, size) = lookup(&state, &req, &name, &digest).await?;
    let path = state.repos.storage().blob_path(&digest);
    let resp = files::serve(&req, &path, size, "application/octet-stream", |r| {
        blob_headers(r, &digest)
    })
    .await?;
    Ok(resp)
}

/// Removes the repository's link to the blob; the bytes go when garbage collection finds no
/// other reference to them.
async fn delete_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let (name, digest) = path.into_inner();
    let name = Name::parse(&name)?;
    authorize(&state, &req, &name, Access::Delete).await?;
    // end-10 allows 400 as well as 404: like CNCF Distribution, a malformed digest is 400
    // DIGEST_INVALID here.
    let digest: Digest = digest.parse()?;
    if state.repos.unlink_blob(&name.repo, &digest).await? {
        Ok(HttpResponse::Accepted()
            .insert_header(("Docker-Content-Digest", digest.to_string()))
            .finish())
    } else {
        Err(blob_unknown().into())
    }
}
