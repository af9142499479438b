//! `GET /v2/`: the API version check. Without credentials it answers 401 with the Bearer
//! challenge, so `docker login` really checks the password (with a 200 it would never send it).

use super::{challenge, V2Result};
use crate::auth::Identity;
use crate::error::V2Error;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(version))
        .route("/", web::head().to(version));
}

async fn version(state: web::Data<AppState>, req: HttpRequest) -> V2Result<HttpResponse> {
    let unauthorized = |e| V2Error {
        error: e,
        challenge: Some(challenge(&state, &req, None, None)),
    };
    match state.gate.identify(&req).await {
        Ok(Identity::Anonymous) => Err(unauthorized(crate::error::AppError::unauthorized(
            "authentication required",
        ))),
        Ok(_) => Ok(HttpResponse::Ok().json(serde_json::json!({}))),
        Err(e) if e.kind == crate::error::Kind::Unauthorized => Err(unauthorized(e)),
        Err(e) => Err(e.into()),
    }
}
