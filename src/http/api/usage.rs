//! `GET /api/v1/usage`: storage usage, per namespace and repository (see `manage::usage` for
//! who sees what).

use super::{ok, ApiCaller};
use crate::error::AppResult;
use crate::manage::usage;
use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/usage", web::get().to(report));
}

async fn report(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&usage::report(&state, &actor).await?)
}
