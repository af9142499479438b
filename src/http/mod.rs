//! HTTP: mounts the protocols on one actix `App`. Each module exposes `configure`.

pub mod access;
pub mod api;
pub mod errors;
pub mod files;
pub mod health;
pub mod metrics;
pub mod ui;
pub mod uploads;
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
        api::configure(cfg);
    }
    health::configure(cfg);
    if state.config.standalone {
        ui::configure(cfg, &state.config);
    }
    metrics::configure(cfg);
    cfg.default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({ "error": format!("Not found: {} {}", req.method(), req.path()) }))
}

/// Where clients reach this server, as `(scheme, host)`, for token realms and
/// `X-Docker-Endpoints`: `public_url` when configured; else the forwarded headers when the
/// operator trusts them; else the request's own `Host`, when it is a plain host, and otherwise
/// the address the request came in on. A client therefore cannot put its own text into a
/// challenge or send others to a realm of its choosing.
pub fn public_origin(config: &crate::config::Config, req: &HttpRequest) -> (String, String) {
    let url = config.public_url.trim_end_matches('/');
    if let Some((scheme, host)) = url.split_once("://") {
        return (scheme.to_string(), host.to_string());
    }
    if config.trust_forwarded_headers {
        let info = req.connection_info();
        if crate::names::valid_host(info.host()) {
            return (info.scheme().to_string(), info.host().to_string());
        }
    }
    let host = header_str(req, "host")
        .filter(|h| crate::names::valid_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| local_addr(req).to_string());
    ("http".to_string(), host)
}

/// The address the request came in on.
pub fn local_addr(req: &HttpRequest) -> std::net::SocketAddr {
    req.conn_data::<crate::net::server::LocalAddr>()
        .map_or_else(|| req.app_config().local_addr(), |a| a.0)
}

pub fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}
