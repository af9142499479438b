//! `/api/v1/gc`: the state of garbage collection (`GET`), and a run or a preview (`POST
//! {"dry_run": bool}`, 202; 409 while one runs). Admins only.

use super::{body, ok, reply, ApiCaller};
use crate::error::AppResult;
use crate::manage::gc;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/gc")
            .route(web::get().to(status))
            .route(web::post().to(start)),
    );
}

/// `GET /api/v1/repositories/{name}/-/gc` (routed in `repos`): the last run's figures for one
/// repository.
pub(super) async fn repository(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&gc::for_repository(&state, &actor, &name).await?)
}

async fn status(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&gc::status(&state, &actor)?)
}

#[derive(Deserialize, Default)]
struct Start {
    #[serde(default)]
    dry_run: bool,
}

async fn start(state: web::Data<AppState>, ApiCaller(actor): ApiCaller, raw: web::Bytes) -> AppResult<HttpResponse> {
    let Start { dry_run } = if raw.is_empty() { Start::default() } else { body(&raw)? };
    reply(StatusCode::ACCEPTED, &gc::start(state, &actor, dry_run)?)
}
