//! `/healthz` (the process answers) and `/readyz` (it can serve: its storage and index
//! answer), for service managers and load balancers.

use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut problems = Vec::new();
    if state.config.registry {
        if let Err(e) = state.storage.stat(crate::storage::keys::LAYOUT).await {
            problems.push(format!("storage: {e}"));
        }
    }
    if let Some(ix) = &state.index {
        if let Err(e) = ix.run(|ix| ix.user("-")).await {
            problems.push(format!("index: {e}"));
        }
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "not ready", "problems": problems }))
    }
}
