//! `/api/v1/tokens...`: access tokens and robots (see `manage::tokens`).

use super::{body, index, ok, reply, ApiCaller};
use crate::audit::{self, Action, Target};
use crate::error::AppResult;
use crate::manage::tokens::{self, NewToken};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tokens")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .route("/tokens/{id}", web::delete().to(delete));
}

async fn list(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&tokens::list(index(&state)?, &actor).await?)
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let new: NewToken = body(&raw)?;
    let created = tokens::create(index(&state)?, &actor, new).await?;
    audit::by_actor(
        &state,
        Some(&req),
        &actor,
        Action::TokenCreate,
        token_target(&created.token),
    );
    let mut answer = reply(StatusCode::CREATED, &created)?;
    // The secret is in this answer only: no cache may keep a copy.
    answer.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(answer)
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let revoked = tokens::delete(index(&state)?, &actor, &id).await?;
    audit::by_actor(&state, Some(&req), &actor, Action::TokenRevoke, token_target(&revoked));
    Ok(HttpResponse::NoContent().finish())
}

/// A token in the audit log: its id and login, about its owner (never its secret).
fn token_target(t: &tokens::TokenView) -> Target {
    Target::named(format!("{} ({})", t.id, t.login))
        .about(&t.owner)
        .detail(serde_json::json!({ "name": t.name, "robot": t.robot, "scopes": t.scopes }))
}
