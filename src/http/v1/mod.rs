//! The v1 protocol: the registry side (`_ping`, images, tags, repository delete) and the index
//! side (users, repositories, image lists, tokens, search), mounted by role.

mod images;
mod ping;
pub(crate) mod repositories;
pub(crate) mod search;
pub(crate) mod tags;
mod users;

use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, HttpResponseBuilder};
use serde::Serialize;

pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    let registry = state.config.registry;
    let index = state.config.standalone;
    cfg.route("/_ping", web::get().to(ping::ping))
        .route("/_ping", web::head().to(ping::ping));
    let mut scope = web::scope("/v1")
        .route("/_ping", web::get().to(ping::ping))
        .route("/_ping", web::head().to(ping::ping));
    if registry {
        scope = scope.configure(images::configure).configure(tags::configure);
    } else {
        // Mounted before the index's `/repositories/{repo}` routes, which would otherwise
        // swallow `.../tags` as part of a repository name.
        scope = scope.configure(ping::no_registry_routes);
    }
    if index {
        scope = scope.configure(users::configure).configure(search::configure);
    }
    // Repository routes are shared by both roles; each handler does its role's part.
    scope = scope.configure(repositories::configure);
    if !index {
        scope = scope.default_service(web::to(ping::no_index));
    }
    cfg.service(scope);
}

/// A JSON response with the no-cache headers PYREG puts on every API answer.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    no_cache(HttpResponse::build(status)).json(body)
}

pub fn no_cache(mut b: HttpResponseBuilder) -> HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header((header::EXPIRES, "-1"));
    b
}

/// `200 true`, the v1 registry's "done".
pub fn ok_true() -> HttpResponse {
    json(StatusCode::OK, &true)
}
