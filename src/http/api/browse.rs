//! `/api/v1/browse` (the repositories a viewer may read, searched, sorted and paged),
//! `/api/v1/browse/{name}` (one repository's page) and `/api/v1/stars` (the caller's stars).

use super::{ok, ApiCaller, ApiViewer};
use crate::error::AppResult;
use crate::manage::browse::{self, BrowseQuery};
use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/browse", web::get().to(list))
        .route("/browse/{name:.+}", web::get().to(detail))
        .route("/stars", web::get().to(stars));
}

async fn list(
    state: web::Data<AppState>,
    ApiViewer(viewer): ApiViewer,
    query: web::Query<BrowseQuery>,
) -> AppResult<HttpResponse> {
    ok(&browse::list(&state, &viewer, &query).await?)
}

async fn detail(
    state: web::Data<AppState>,
    ApiViewer(viewer): ApiViewer,
    name: web::Path<String>,
) -> AppResult<HttpResponse> {
    ok(&browse::detail(&state, &viewer, &name).await?)
}

async fn stars(state: web::Data<AppState>, ApiCaller(actor): ApiCaller) -> AppResult<HttpResponse> {
    ok(&serde_json::json!({ "results": browse::stars(&state, &actor).await? }))
}
