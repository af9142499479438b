//! `GET|HEAD|DELETE /v2/{name}/blobs/{digest}`: blobs the repository may serve, from the shared
//! content-addressed store, with `Range`.

use super::{authorize, Name, V2Result};
use crate::error::{AppError, Kind};
use crate::index::Access;
use crate::registry::digest::Digest;
use crate::state::AppState;
use actix_files::NamedFile;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

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

async fn get_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> V2Result<HttpResponse> {
    let (name, digest) = path.into_inner();
    let name = Name::parse(&name)?;
    authorize(&state, &req, &name, Access::Read).await?;
    let digest: Digest = digest.parse()?;
    state.repos.blob(&name.repo, &digest).await?.ok_or_else(blob_unknown)?;
    let file = NamedFile::open_async(state.repos.storage().blob_path(&digest))
        .await
        .map_err(|_| blob_unknown())?;
    let mut resp = file
        .disable_content_disposition()
        .use_last_modified(false)
        .set_content_type(mime_octet())
        .into_response(&req);
    let headers = resp.headers_mut();
    headers.insert(
        header::HeaderName::from_static("docker-content-digest"),
        header::HeaderValue::from_str(&digest.to_string()).map_err(AppError::internal)?,
    );
    headers.insert(
        header::ETAG,
        header::HeaderValue::from_str(&format!("\"{digest}\"")).map_err(AppError::internal)?,
    );
    // Content-addressed: the bytes behind a digest never change.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=31536000"),
    );
    Ok(resp)
}

fn mime_octet() -> actix_web::mime::Mime {
    actix_web::mime::APPLICATION_OCTET_STREAM
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
    let digest: Digest = digest.parse()?;
    if state.repos.unlink_blob(&name.repo, &digest).await? {
        Ok(HttpResponse::Accepted()
            .insert_header(("Docker-Content-Digest", digest.to_string()))
            .finish())
    } else {
        Err(blob_unknown().into())
    }
}
