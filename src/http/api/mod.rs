//! The management API, `/api/v1`: JSON in, JSON out, errors as `{"error": "..."}`. The CLI
//! uses it over the local socket (as the operator, an admin, with no password), the UI and
//! scripts over HTTP with an account's credentials (HTTP Basic). See the README's "Operating
//! Skiff" section for every route.

mod audit;
mod backup;
mod browse;
mod community;
mod gc;
mod images;
mod repos;
pub mod session;
mod tags;
mod tokens;
mod usage;
mod users;
mod webhooks;

use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::manage::{Actor, Viewer};
use crate::net::server::LocalOperator;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(session::configure)
            .configure(users::configure)
            // Before `repos`: its `/repositories/{name}` would take `.../-/tags` for a name.
            .configure(tags::configure)
            .configure(community::configure)
            .configure(images::configure)
            .configure(browse::configure)
            .configure(webhooks::configure)
            .configure(repos::configure)
            .configure(gc::configure)
            .configure(backup::configure)
            .configure(tokens::configure)
            .configure(usage::configure)
            .configure(audit::configure)
            .default_service(web::to(no_route)),
    );
}

async fn no_route() -> AppResult<HttpResponse> {
    Err(AppError::not_found("No such management API route"))
}

/// Who calls the management API: the operator on the local socket, or an account.
pub struct ApiCaller(pub Actor);

impl FromRequest for ApiCaller {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match viewer(&req).await? {
                Viewer::Actor(actor) => Ok(ApiCaller(actor)),
                Viewer::Anonymous => Err(AppError::unauthorized(
                    "Sign in: the management API takes an account's name and password (HTTP Basic) or a web UI session",
                )),
            }
        })
    }
}

/// Who reads through the management API: like [`ApiCaller`], but a visitor who has not signed
/// in is let through as [`Viewer::Anonymous`], for the routes that show what anyone may read.
pub struct ApiViewer(pub Viewer);

impl FromRequest for ApiViewer {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { viewer(&req).await.map(ApiViewer) })
    }
}

async fn viewer(req: &HttpRequest) -> AppResult<Viewer> {
    if req.conn_data::<LocalOperator>().is_some() {
        return Ok(Viewer::Actor(Actor::Operator));
    }
    let state = crate::http::access::state(req)?;
    if session::changes(req) {
        session::same_origin(&state, req)?;
    }
    if req.headers().get(actix_web::http::header::AUTHORIZATION).is_none() {
        if let Some(p) = session::from_cookie(&state, req).await? {
            return Ok(Viewer::Actor(Actor::User(p)));
        }
    }
    match state.gate.identify(req).await? {
        Identity::User(p) => Ok(Viewer::Actor(Actor::User(p))),
        Identity::Anonymous => Ok(Viewer::Anonymous),
        _ => Err(AppError::unauthorized(
            "The management API takes an account's name and password (HTTP Basic), not a token",
        )),
    }
}

/// A JSON request body, with a message that says what is wrong with it.
fn body<T: DeserializeOwned>(raw: &[u8]) -> AppResult<T> {
    serde_json::from_slice(raw).map_err(|e| AppError::bad_request(format!("Invalid JSON body: {e}")))
}

fn reply<T: Serialize>(status: StatusCode, value: &T) -> AppResult<HttpResponse> {
    Ok(HttpResponse::build(status).json(value))
}

fn ok<T: Serialize>(value: &T) -> AppResult<HttpResponse> {
    reply(StatusCode::OK, value)
}

fn index(state: &AppState) -> AppResult<&crate::index::Index> {
    crate::manage::repos::index(state)
}
