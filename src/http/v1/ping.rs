//! `GET /_ping` and `/v1/_ping`: never behind auth; tells Docker 1.x whether this registry is
//! standalone (it then sends Basic credentials on every call over https).

use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub const REGISTRY_VERSION: &str = "0.9.1";

pub async fn ping(state: web::Data<AppState>) -> HttpResponse {
    let standalone = state.config.standalone;
    super::no_cache(HttpResponse::Ok())
        .insert_header(("X-Docker-Registry-Version", REGISTRY_VERSION))
        .insert_header((
            "X-Docker-Registry-Standalone",
            if standalone { "true" } else { "false" },
        ))
        .json(serde_json::json!({ "standalone": standalone, "version": REGISTRY_VERSION }))
}

/// Index routes on a registry-only process: say where the index is.
pub async fn no_index(state: web::Data<AppState>) -> HttpResponse {
    super::json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "error": format!(
                "This server is a registry only (standalone = false); use the index at {}",
                state.config.index_endpoint
            )
        }),
    )
}

/// Registry routes on an index-only process (`registry = false`).
pub fn no_registry_routes(cfg: &mut web::ServiceConfig) {
    for path in [
        "/images/{rest:.*}",
        "/repositories/{repo:.+}/tags",
        "/repositories/{repo:.+}/tags/{rest:.*}",
        "/repositories/{repo:.+}/json",
    ] {
        cfg.route(path, web::to(no_registry));
    }
}

/// Say where the data is: the registries this index sends clients to.
pub async fn no_registry(state: web::Data<AppState>) -> HttpResponse {
    super::json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "error": format!(
                "This server is an index only (registry = false); the data is on the registries at {}",
                state.config.index.endpoints.join(", ")
            )
        }),
    )
}
