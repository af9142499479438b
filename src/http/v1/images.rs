//! `/v1/images/{id}/{json,layer,checksum,ancestry}`: the v1 push and pull of image data.

use super::ok_true;
use crate::audit::{self, Action, Target};
use crate::auth::{Identity, Uploader};
use crate::error::{AppError, AppResult, Kind};
use crate::http::access::Caller;
use crate::http::header_str;
use crate::http::uploads::{has_body, take_slot, TimedBody};
use crate::names::{ImageCopy, ImageId};
use crate::registry::v1::images::parse_image_json;
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/images/{id}/json")
            .route(web::get().to(get_json))
            .route(web::head().to(get_json))
            .route(web::put().to(put_json)),
    )
    .service(
        web::resource("/images/{id}/layer")
            .route(web::get().to(get_layer))
            .route(web::head().to(get_layer))
            .route(web::put().to(put_layer)),
    )
    .route("/images/{id}/checksum", web::put().to(put_checksum))
    .route("/images/{id}/ancestry", web::get().to(get_ancestry));
}

/// How long a client may keep an image read: a copy never changes once complete, so a year is
/// safe (PYREG does the same). But which copy an id means depends on who asks, and a private
/// image is for its readers only: never `public`, which would let a shared cache hand one
/// caller's answer to another.
const IMAGE_CACHE: &str = "private, max-age=31536000";

fn cacheable(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 24 * 3600);
    b.insert_header((header::CACHE_CONTROL, IMAGE_CACHE))
        .insert_header((header::EXPIRES, httpdate::fmt_http_date(expires)));
    b
}

/// The copy of `id` this caller reads, complete: 404 when they may read none, whatever others
/// hold under that id; 400 while it is being uploaded.
async fn readable(state: &AppState, who: &Identity, id: &ImageId) -> AppResult<ImageCopy> {
    let image = state.gate.image_for_read(who, &state.images, id, None).await?;
    state.images.require_complete(&image).await?;
    Ok(image)
}

/// The copy a write of `id` goes to (see `Gate::image_for_write`), and who writes.
async fn target(state: &AppState, who: &Identity, id: &ImageId) -> AppResult<(ImageCopy, Uploader)> {
    let uploader = state.gate.check_image_write(who).await?;
    let image = state.gate.image_for_write(who, &state.images, id, &uploader).await?;
    Ok((image, uploader))
}

async fn get_json(state: web::Data<AppState>, Caller(who): Caller, id: web::Path<String>) -> AppResult<HttpResponse> {
    let id = ImageId::parse(&id)?;
    let image = readable(&state, &who, &id).await?;
    let image = state.images.json(&image).await?;
    let mut resp = cacheable(StatusCode::OK);
    resp.content_type("application/json");
    if let Some(size) = image.size {
        resp.insert_header(("X-Docker-Size", size.to_string()));
    }
    if let Some(sum) = image.checksum {
        resp.insert_header(("X-Docker-Checksum-Payload", sum));
    }
    Ok(resp.body(image.json))
}

async fn put_json(
    state: web::Data<AppState>,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = ImageId::parse(&id)?;
    let uploader = state.gate.check_image_write(&who).await?;
    let parent = match parse_image_json(&id, &body)? {
        // A parent the uploader may not read does not exist for them: the same answer as none.
        Some(p) => Some(
            state
                .gate
                .image_for_read(&who, &state.images, &p, uploader.repo.as_ref())
                .await
                .map_err(|e| match e.kind {
                    Kind::NotFound => AppError::bad_request("Image depends on a non existing parent"),
                    _ => e,
                })?,
        ),
        None => None,
    };
    let image = state.gate.image_for_write(&who, &state.images, &id, &uploader).await?;
    state
        .images
        .put_json(&image, body, parent.as_ref(), &uploader.owner())
        .await?;
    if let Some(repo) = &uploader.repo {
        // A token names the repository the image is pushed into.
        state.v1_repos.add_member(repo, &image).await?;
    }
    Ok(ok_true())
}

async fn put_layer(
    state: web::Data<AppState>,
    req: HttpRequest,
    Caller(who): Caller,
    id: web::Path<String>,
    body: web::Payload,
) -> AppResult<HttpResponse> {
    let id = ImageId::parse(&id)?;
    let (image, uploader) = target(&state, &who, &id).await?;
    // The namespace charged: the repository the push names, else the uploader's own.
    let namespace = match &uploader.repo {
        Some(repo) => repo.namespace().to_string(),
        None => uploader.name.clone(),
    };
    state.quotas.check_room(&state, &namespace).await?;
    let _slot = match has_body(&req) {
        true => take_slot(&state, &req, Some(&uploader.name))?,
        false => None,
    };
    let link = state
        .images
        .put_layer(&image, &uploader.owner(), TimedBody::new(&state, body))
        .await?;
    if let Err(e) = state.quotas.admit(&state, &namespace, &link.digest, link.size).await {
        // Over the quota: the image stays without a layer (the bytes go at the next gc).
        state.images.drop_layer(&image).await?;
        return Err(e);
    }
    audit::by_client(&state, &req, &who, Action::ImagePush, image_target(&id, &uploader));
    Ok(ok_true())
}

/// A v1 image pushed: its id, in the repository the uploader's token names (if any).
fn image_target(id: &ImageId, uploader: &Uploader) -> Target {
    match &uploader.repo {
        Some(repo) => Target::named(id.as_str()).in_repo(repo.as_str()),
        None => Target::named(id.as_str()),
    }
}

async fn put_checksum(
    state: web::Data<AppState>,
    req: HttpRequest,
    Caller(who): Caller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = ImageId::parse(&id)?;
    let (image, uploader) = target(&state, &who, &id).await?;
    let payload = header_str(&req, "X-Docker-Checksum-Payload");
    let tarsum = header_str(&req, "X-Docker-Checksum");
    state
        .images
        .put_checksum(&image, &uploader.owner(), payload, tarsum)
        .await?;
    Ok(ok_true())
}

async fn get_layer(
    state: web::Data<AppState>,
    req: HttpRequest,
    Caller(who): Caller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = ImageId::parse(&id)?;
    let image = readable(&state, &who, &id).await?;
    let link = state
        .images
        .layer(&image)
        .await?
        .ok_or_else(|| AppError::not_found("Image layer not found"))?;
    // The link without its blob (quarantined by `skiff check --repair`, or lost): absent, as on
    // v2, so the layer can be pushed again; not a 500.
    if state.storage.blob_size(&link.digest).await?.is_none() {
        log::warn!(
            "v1 image {image}: layer blob {} is missing (see `skiff check`)",
            link.digest
        );
        return Err(AppError::not_found("Image layer not found"));
    }
    crate::http::files::serve(
        &req,
        &state.storage,
        &link.digest,
        link.size,
        "application/octet-stream",
        |r| {
            r.insert_header(("X-Docker-Size", link.size.to_string()))
                .insert_header((header::CACHE_CONTROL, IMAGE_CACHE));
        },
    )
    .await
}

async fn get_ancestry(
    state: web::Data<AppState>,
    Caller(who): Caller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = ImageId::parse(&id)?;
    let image = readable(&state, &who, &id).await?;
    let raw = state.images.ancestry_raw(&image).await?;
    Ok(cacheable(StatusCode::OK).content_type("application/json").body(raw))
}
