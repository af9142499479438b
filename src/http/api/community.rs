//! A repository's stars and comments: `PUT|DELETE .../-/star`, `GET|POST .../-/comments`,
//! `PUT|DELETE .../-/comments/{id}`.

use super::{body, ok, reply, ApiCaller, ApiViewer};
use crate::audit::{self, Action, Target};
use crate::error::AppResult;
use crate::manage::community;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/repositories/{name:.+}/-/star")
            .route(web::put().to(star))
            .route(web::delete().to(unstar)),
    )
    .service(
        web::resource("/repositories/{name:.+}/-/comments")
            .route(web::get().to(list))
            .route(web::post().to(add)),
    )
    .service(
        web::resource("/repositories/{name:.+}/-/comments/{id}")
            .route(web::put().to(edit))
            .route(web::delete().to(delete)),
    );
}

async fn star(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&community::star(&state, &actor, &name, true).await?)
}

async fn unstar(
    state: web::Data<AppState>,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&community::star(&state, &actor, &name, false).await?)
}

#[derive(Deserialize)]
struct ListQuery {
    n: Option<String>,
    after: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    ApiViewer(viewer): ApiViewer,
    name: web::Path<String>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let page = community::list(&state, &viewer, &name, query.n.as_deref(), query.after.as_deref()).await?;
    ok(&page)
}

#[derive(Deserialize)]
struct Body {
    body: String,
}

async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Body { body: text } = body(&raw)?;
    let comment = community::add(&state, &actor, &name, &text).await?;
    let target = Target::named(&*name)
        .in_repo(&name)
        .detail(json!({ "comment": comment.id }));
    audit::by_actor(&state, Some(&req), &actor, Action::CommentCreate, target);
    reply(StatusCode::CREATED, &comment)
}

async fn edit(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let Body { body: text } = body(&raw)?;
    let comment = community::edit(&state, &actor, &name, &id, &text).await?;
    let target = Target::named(&name)
        .in_repo(&name)
        .detail(json!({ "comment": comment.id }));
    audit::by_actor(&state, Some(&req), &actor, Action::CommentEdit, target);
    ok(&comment)
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let removed = community::delete(&state, &actor, &name, &id).await?;
    let target = Target::named(&name)
        .in_repo(&name)
        .detail(json!({ "comment": removed.id, "author": removed.author }));
    audit::by_actor(&state, Some(&req), &actor, Action::CommentDelete, target);
    Ok(HttpResponse::NoContent().finish())
}
