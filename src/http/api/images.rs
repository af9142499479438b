//! What an image is made of: `GET .../-/manifests/{reference}` (a v2 manifest by tag or
//! digest) and `GET .../-/images/{id}` (a v1 image and its ancestry).

use super::{ok, ApiViewer};
use crate::error::AppResult;
use crate::manage::images;
use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/repositories/{name:.+}/-/manifests/{reference}",
        web::get().to(manifest),
    )
    .route("/repositories/{name:.+}/-/images/{id}", web::get().to(v1_image));
}

async fn manifest(
    state: web::Data<AppState>,
    ApiViewer(viewer): ApiViewer,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (name, reference) = path.into_inner();
    ok(&images::manifest(&state, &viewer, &name, &reference).await?)
}

async fn v1_image(
    state: web::Data<AppState>,
    ApiViewer(viewer): ApiViewer,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    ok(&images::v1_image(&state, &viewer, &name, &id).await?)
}
