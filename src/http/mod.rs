//! HTTP: mounts the protocols on one actix `App`. Each module exposes `configure`.

pub mod access;
pub mod files;
pub mod metrics;
pub mod ui;
pub mod v1;
pub mod v2;

#[cfg(test)]
mod tests;

use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    cfg.app_data(state.clone())
        .app_data(web::JsonConfig::default().limit(4 << 20))
        .app_data(web::PayloadConfig::default().limit(8 << 20));
    v1::configure(cfg, &state);
    v2::configure(cfg, &state);
    if state.config.standalone {
        ui::configure(cfg, &state.config);
    }
    metrics::configure(cfg);
    cfg.default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({ "error": format!("Not found: {} {}", req.method(), req.path()) }))
}

/// The host the client used to reach us (for `X-Docker-Endpoints` and v2 token realms).
pub fn request_host(req: &HttpRequest) -> String {
    req.connection_info().host().to_string()
}

pub fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}
