//! `/api/v1/users...` and `/api/v1/me`.

use super::{body, index, ok, reply, ApiCaller};
use crate::error::AppResult;
use crate::manage::users::{self, NewUser, RepoFate};
use crate::manage::Actor;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(me))
        .service(
            web::resource("/users")
                .route(web::get().to(list))
                .route(web::post().to(create)),
        )
        .route("/users/{name}/password", web::put().to(password))
        .route("/users/{name}/active", web::put().to(active))
        .route("/users/{name}/admin", web::put().to(admin))
        .service(
            web::resource("/users/{name}")
                .route(web::get().to(show))
                .route(web::delete().to(delete)),
        );
}

async fn me(ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&serde_json::json!({ "name": actor.name(), "admin": actor.is_admin(),
        "operator": matches!(actor, Actor::Operator) }))
}

async fn list(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&users::list(index(&state)?, &actor).await?)
}

async fn create(state: web::Data<AppState>, ApiCaller(actor): ApiCaller, raw: web::Bytes) -> AppResult<HttpResponse> {
    let new: NewUser = body(&raw)?;
    reply(StatusCode::CREATED, &users::create(index(&state)?, &actor, new).await?)
}

async fn show(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&users::show(index(&state)?, &actor, &name).await?)
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

async fn password(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Password { password } = body(&raw)?;
    users::set_password(index(&state)?, &actor, &name, password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct Active {
    active: bool,
}

async fn active(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Active { active } = body(&raw)?;
    ok(&users::set_active(index(&state)?, &actor, &name, active).await?)
}

#[derive(Deserialize)]
struct Admin {
    admin: bool,
}

async fn admin(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Admin { admin } = body(&raw)?;
    ok(&users::set_admin(index(&state)?, &actor, &name, admin).await?)
}

#[derive(Deserialize)]
struct DeleteQuery {
    repositories: Option<RepoFate>,
}

async fn delete(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> AppResult<HttpResponse> {
    let fate = query.repositories.unwrap_or(RepoFate::Refuse);
    ok(&users::delete(&state, &actor, &name, fate).await?)
}
