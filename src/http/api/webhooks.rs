//! `/api/v1/repositories/{name}/-/webhooks...` (a repository's webhooks, for whoever manages
//! it) and `/api/v1/webhooks...` (the global hooks of `registry.toml`, for admins). See
//! `manage::webhooks`.

use super::{body, ok, reply, ApiCaller};
use crate::error::AppResult;
use crate::manage::webhooks::{self, HookChange};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/repositories/{name:.+}/-/webhooks")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/repositories/{name:.+}/-/webhooks/{id}")
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
    )
    .route(
        "/repositories/{name:.+}/-/webhooks/{id}/deliveries",
        web::get().to(deliveries),
    )
    .route(
        "/repositories/{name:.+}/-/webhooks/{id}/deliveries/{delivery}/redeliver",
        web::post().to(redeliver),
    )
    .route("/webhooks", web::get().to(globals))
    .route("/webhooks/{id}/deliveries", web::get().to(global_deliveries));
}

async fn list(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&json!({ "webhooks": webhooks::list(&state, &actor, &name).await? }))
}

async fn create(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let change: HookChange = body(&raw)?;
    reply(
        StatusCode::CREATED,
        &webhooks::create(&state, &actor, &name, change).await?,
    )
}

async fn update(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, u64)>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let change: HookChange = body(&raw)?;
    ok(&webhooks::update(&state, &actor, &name, id, change).await?)
}

async fn delete(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, u64)>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    webhooks::delete(&state, &actor, &name, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn deliveries(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, u64)>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    ok(&json!({ "deliveries": webhooks::deliveries(&state, &actor, &name, id).await? }))
}

async fn redeliver(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, u64, u64)>,
) -> AppResult<HttpResponse> {
    let (name, id, delivery) = path.into_inner();
    let new = webhooks::redeliver(&state, &actor, &name, id, delivery).await?;
    reply(StatusCode::ACCEPTED, &json!({ "id": new }))
}

async fn globals(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&json!({ "webhooks": webhooks::globals(&state, &actor)? }))
}

async fn global_deliveries(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    id: web::Path<u64>,
) -> AppResult<HttpResponse> {
    ok(&json!({ "deliveries": webhooks::global_deliveries(&state, &actor, *id).await? }))
}
