//! `/api/v1/repositories...`. A repository's own routes follow `/-/` (no name component can
//! be `-`), so no repository name can be mistaken for one.

use super::{body, ok, ApiCaller};
use crate::audit::{self, Action, Target};
use crate::error::AppResult;
use crate::manage::repos;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

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
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    repos::delete(&state, &actor, &name).await?;
    audit::by_actor(
        &state,
        Some(&req),
        &actor,
        Action::RepositoryDelete,
        Target::named(&*name).in_repo(&name),
    );
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct Visibility {
    private: bool,
}

async fn visibility(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Visibility { private } = body(&raw)?;
    let view = repos::set_private(&state, &actor, &name, private).await?;
    let target = Target::named(&*name)
        .in_repo(&name)
        .detail(json!({ "private": private }));
    audit::by_actor(&state, Some(&req), &actor, Action::RepositoryVisibility, target);
    ok(&view)
}

#[derive(Deserialize)]
struct Description {
    description: String,
}

async fn description(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    name: web::Path<String>,
    raw: web::Bytes,
) -> AppResult<HttpResponse> {
    let Description { description } = body(&raw)?;
    let view = repos::set_description(&state, &actor, &name, description).await?;
    let target = Target::named(&*name)
        .in_repo(&name)
        .detail(json!({ "description": view.description }));
    audit::by_actor(&state, Some(&req), &actor, Action::RepositoryDescription, target);
    ok(&view)
}

async fn add_collaborator(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    collaborator(&state, &req, &actor, path.into_inner(), true).await
}

async fn remove_collaborator(
    state: web::Data<AppState>,
    req: HttpRequest,
    ApiCaller(actor): ApiCaller,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    collaborator(&state, &req, &actor, path.into_inner(), false).await
}

async fn collaborator(
    state: &AppState,
    req: &HttpRequest,
    actor: &crate::manage::Actor,
    (name, user): (String, String),
    add: bool,
) -> AppResult<HttpResponse> {
    let view = repos::set_collaborator(state, actor, &name, &user, add).await?;
    let target = Target::named(&name)
        .in_repo(&name)
        .detail(json!({ "user": user, "added": add }));
    audit::by_actor(state, Some(req), actor, Action::RepositoryCollaborator, target);
    ok(&view)
}
