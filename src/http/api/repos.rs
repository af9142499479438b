//! `/api/v1/repositories...`. A repository's own routes follow `/-/` (no name component can
//! be `-`), so no repository name can be mistaken for one.

use super::{body, ok, ApiCaller};
use crate::error::AppResult;
use crate::manage::repos;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/repositories", web::get().to(list))
        .route("/repositories/{name:.+}/-/visibility", web::put().to(visibility))
        .route("/repositories/{name:.+}/-/description", web::put().to(description))
        .route("/repositories/{name:.+}/-/gc", web::get().to(super::gc::repository))
        .service(
            web::resource("/repositories/{name:.+}/-/collaborators/{user}")
                .route(web::put().to(add_collaborator))
                .route(web::delete().to(remove_collaborator)),
        )
        .service(
            web::resource("/repositories/{name:.+}")
                .route(web::get().to(show))
                .route(web::delete().to(delete)),
        );
}

#[derive(Deserialize)]
struct ListQuery {
    namespace: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    ok(&repos::list(&state, &actor, query.namespace.as_deref()).await?)
}

async fn show(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&repos::show(&state, &actor, &name).await?)
}

async fn delete(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    repos::delete(&state, &actor, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct Visibility {
    private: bool,
}

async fn visibility(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Visibility { private } = body(&raw)?;
    ok(&repos::set_private(&state, &actor, &name, private).await?)
}

#[derive(Deserialize)]
struct Description {
    description: String,
}

async fn description(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Description { description } = body(&raw)?;
    ok(&repos::set_description(&state, &actor, &name, description).await?)
}

async fn add_collaborator(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (name, user) = path.into_inner();
    ok(&repos::set_collaborator(&state, &actor, &name, &user, true).await?)
}

async fn remove_collaborator(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (name, user) = path.into_inner();
    ok(&repos::set_collaborator(&state, &actor, &name, &user, false).await?)
}
