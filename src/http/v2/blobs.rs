//! `GET|HEAD|DELETE /v2/{name}/blobs/{digest}`: blobs the repository may serve, from the shared
//! content-addressed store, with `Range` (served like v1 layers, by `http::files`).

use super::{not_found, V2Result};
use crate::audit::{self, Action, Target};
use crate::digest::Digest;
use crate::error::{AppError, Kind};
use crate::http::access::{Delete, Pull, V2Access};
use crate::http::files;
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

fn blob_headers(r: &mut HttpResponseBuilder, digest: &Digest) {
    r.insert_header(("Docker-Content-Digest", digest.to_string()))
        .insert_header((header::ETAG, format!("\"{digest}\"")))
        // Content-addressed: the bytes behind a digest never change.
        .insert_header((header::CACHE_CONTROL, "max-age=31536000"));
}

async fn get_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Pull>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let digest = existing_digest(&path.1)?;
    let Some(size) = state.v2_repos.blob_for_client(access.repo(), &digest).await? else {
        return Err(not_found(&state, access.repo(), blob_unknown()).await);
    };
    if let Some(location) = redirect(&state, &req, &digest).await? {
        let mut resp = HttpResponse::TemporaryRedirect();
        blob_headers(&mut resp, &digest);
        return Ok(resp.insert_header((header::LOCATION, location)).finish());
    }
    let resp = files::serve(&req, &state.storage, &digest, size, "application/octet-stream", |r| {
        blob_headers(r, &digest)
    })
    .await?;
    Ok(resp)
}

/// With `[storage.s3] redirect`, where a GET of the whole blob or a range of it is sent
/// instead: a presigned URL, so the bytes flow from the store to the client (who sends its
/// `Range` there). HEADs are answered here.
async fn redirect(state: &AppState, req: &HttpRequest, digest: &Digest) -> V2Result<Option<String>> {
    let s3 = &state.config.storage.s3;
    if !(state.config.storage.is_s3() && s3.redirect) || req.method() != actix_web::http::Method::GET {
        return Ok(None);
    }
    let ttl = std::time::Duration::from_secs(s3.redirect_secs);
    let url = state.storage.redirect(&crate::storage::keys::blob(digest), ttl).await;
    Ok(url.map_err(crate::error::AppError::from)?)
}

/// Removes the repository's link to the blob; the bytes go when garbage collection finds no
/// other reference to them.
async fn delete_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    access: V2Access<Delete>,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    // end-10 allows 400 as well as 404: like CNCF Distribution, a malformed digest is 400
    // DIGEST_INVALID here.
    let digest: Digest = path.1.parse()?;
    if state.v2_repos.unlink_blob(access.repo(), &digest).await? {
        state.quotas.forget().await;
        audit::by_client(
            &state,
            &req,
            &access.who,
            Action::BlobDelete,
            Target::digest(access.repo(), &digest),
        );
        Ok(HttpResponse::Accepted()
            .insert_header(("Docker-Content-Digest", digest.to_string()))
            .finish())
    } else {
        Err(blob_unknown().into())
    }
}
