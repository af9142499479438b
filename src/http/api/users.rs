//! `/api/v1/users...` and `/api/v1/me`.

use super::{body, index, ok, reply, ApiCaller};
use crate::audit::{self, Action, Target};
use crate::error::{AppError, AppResult};
use crate::manage::users::{self, NewUser, RepoFate};
use crate::manage::Actor;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

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

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let new: NewUser = body(&raw)?;
    let user = users::create(index(&state)?, &actor, new).await?;
    let detail = json!({"admin": user.admin, "active": user.active});
    audit::by_actor(
        &state,
        Some(&req),
        &actor,
        Action::UserCreate,
        Target::account(&user.username).detail(detail),
    );
    reply(StatusCode::CREATED, &user)
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
    /// Asked of an account changing its own password from a web UI session, so a browser
    /// left signed in is not enough to take the account over.
    current_password: Option<String>,
}

async fn password(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Password {
        password,
        current_password,
    } = body(&raw)?;
    if super::session::by_cookie(&req) && actor.name() == name.as_str() {
        let current = current_password
            .ok_or_else(|| AppError::bad_request("Give current_password to change your own password"))?;
        let address = state.gate.client_address(&req);
        state
            .gate
            .login(&name, &current, address)
            .await
            .map_err(|e| match e.status() {
                StatusCode::UNAUTHORIZED => AppError::forbidden("The current password is wrong"),
                _ => e,
            })?;
    }
    users::set_password(index(&state)?, &actor, &name, password).await?;
    audit::by_actor(&state, Some(&req), &actor, Action::UserPassword, Target::account(&name));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct Active {
    active: bool,
}

async fn active(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Active { active } = body(&raw)?;
    let user = users::set_active(index(&state)?, &actor, &name, active).await?;
    let target = Target::account(&name).detail(json!({ "active": active }));
    audit::by_actor(&state, Some(&req), &actor, Action::UserActive, target);
    ok(&user)
}

#[derive(Deserialize)]
struct Admin {
    admin: bool,
}

async fn admin(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Admin { admin } = body(&raw)?;
    let user = users::set_admin(index(&state)?, &actor, &name, admin).await?;
    let target = Target::account(&name).detail(json!({ "admin": admin }));
    audit::by_actor(&state, Some(&req), &actor, Action::UserAdmin, target);
    ok(&user)
}

#[derive(Deserialize)]
struct DeleteQuery {
    repositories: Option<RepoFate>,
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> AppResult<HttpResponse> {
    let fate = query.repositories.unwrap_or(RepoFate::Refuse);
    let deleted = users::delete(&state, &actor, &name, fate).await?;
    for repo in &deleted.repositories_deleted {
        audit::by_actor(
            &state,
            Some(&req),
            &actor,
            Action::RepositoryDelete,
            Target::named(repo).in_repo(repo),
        );
    }
    let target = Target::account(&name).detail(json!({ "repositories_deleted": deleted.repositories_deleted }));
    audit::by_actor(&state, Some(&req), &actor, Action::UserDelete, target);
    ok(&deleted)
}
